"""The adaptive quota against emulated quotas nobody told the crawl (``ALI1688_QPS`` unset).

    python bench/quota_bench.py                      # Q = 5, 20, 60 for 1 and 3 workers, and the drop: ~8 min
    python bench/quota_bench.py --only drop --png bench/quota-drop.png

Each run: a fresh emulator (``--qps Q --latency-ms 50``), Mongo-protocol server (and Redis for
three ``product_redis`` workers), more ids than 40 s can take, every crawl stopped after 40 s
(``CLOSESPIDER_TIMEOUT``). From the emulator's count of admitted and throttled calls in each
calendar second (``GET /_sandbox/quota``), over the 38 whole seconds from the first call:

- converged after: seconds until the first 5-second stretch at ≥ 85 % of Q with no throttle;
- utilisation and throttled share after that;
- throttled share over the whole run;
- the rate the crawl learned (MongoDB ``quotas``).

``drop``: one process, Q = 20 falling to 10 twenty seconds after the first call; the same
figures counted from the drop, and a chart of calls and throttles per second (``--png``).
Results are recorded by hand in bench/RESULTS.md, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from crawl_bench import DATABASE, ROOT, crawl_env  # bench/ is sys.path[0] when run as a script
from pymongo import MongoClient

from ali1688spider.demo.services import GatewayEmulator, gateway_emulator, mongo_server, redis_server
from ali1688spider.sandbox.catalogue import Catalogue
from ali1688spider.sandbox.config import DEMO_APP_KEY

RUN_SECONDS = 40
JUDGED_SECONDS = 38  # whole seconds from the first call (the last may be cut short by the stop)
LATENCY_MS = 50


def converged_after(rows: dict[int, tuple[int, int]], start: int, end: int, quota: float) -> int | None:
    for first in range(start, end - 4):
        stretch = [rows.get(second, (0, 0)) for second in range(first, first + 5)]
        if all(throttled == 0 for _, throttled in stretch) and sum(a for a, _ in stretch) >= 0.85 * quota * 5:
            return first - start
    return None


def figures(rows: dict[int, tuple[int, int]], start: int, end: int, quota: float) -> dict[str, Any]:
    after = converged_after(rows, start, end, quota)
    seconds = range(start + (after or 0), end)
    admitted = sum(rows.get(s, (0, 0))[0] for s in seconds)
    throttled = sum(rows.get(s, (0, 0))[1] for s in seconds)
    all_admitted = sum(rows.get(s, (0, 0))[0] for s in range(start, end))
    all_throttled = sum(rows.get(s, (0, 0))[1] for s in range(start, end))
    return {
        "converged_after_s": after,
        "utilisation_after": round(admitted / (quota * len(seconds)), 3) if after is not None else None,
        "throttled_after": round(throttled / max(1, admitted + throttled), 4) if after is not None else None,
        "throttled_overall": round(all_throttled / max(1, all_admitted + all_throttled), 4),
        "calls": all_admitted + all_throttled,
    }


def run(quota: int, workers: int, drop_to: int | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ali1688-quota-bench-"))
    ids = Catalogue(1688).offer_ids(quota * (RUN_SECONDS + 10) + 200)
    ids_file = work / "ids.txt"
    ids_file.write_text("\n".join(str(i) for i in ids) + "\n")
    flags = ["--qps", str(quota), "--latency-ms", str(LATENCY_MS)]
    timeout = ["-s", f"CLOSESPIDER_TIMEOUT={RUN_SECONDS}", "-s", "LOG_LEVEL=WARNING"]
    with gateway_emulator(*flags) as gateway, mongo_server(work / "mongo") as mongo:
        env = crawl_env(gateway.url, mongo.url, 0)
        del env["ALI1688_QPS"]  # nobody tells the crawl
        if drop_to is not None:
            threading.Thread(target=_drop, args=(gateway, drop_to), daemon=True).start()
        if workers == 1:
            subprocess.run([sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={ids_file}",
                            *timeout], cwd=ROOT, env=env, check=True)
        else:
            with redis_server(work / "redis") as queue:
                env.update(REDIS_URL=queue.url, MAX_IDLE_TIME_BEFORE_CLOSE="2", ALI1688_QUEUE_POLL_SECONDS="0.2")
                subprocess.run([sys.executable, "-m", "scrapy", "enqueue", str(ids_file)], cwd=ROOT, env=env,
                               check=True, capture_output=True, timeout=300)
                processes = [subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "product_redis", *timeout],
                                              cwd=ROOT, env=env) for _ in range(workers)]
                for process in processes:
                    process.wait(timeout=RUN_SECONDS * 3)
        seconds = gateway.quota_seconds()
        with MongoClient(mongo.url) as client:
            learned = client[DATABASE].quotas.find_one({"_id": DEMO_APP_KEY}) or {}
    rows = {second: (admitted, throttled) for second, admitted, throttled in seconds}
    start = min(rows)
    result: dict[str, Any] = {"quota": quota, "workers": workers, "latency_ms": LATENCY_MS,
                              "learned": learned.get("rate"), "found": learned.get("found")}
    if drop_to is None:
        result.update(figures(rows, start, start + JUDGED_SECONDS, quota))
    else:
        dropped = start + 20
        result.update({"drop_to": drop_to, **figures(rows, dropped, start + JUDGED_SECONDS, drop_to),
                       "before_drop": figures(rows, start, dropped, quota)})
    result["per_second"] = [[second - start, *rows[second]] for second in sorted(rows)]
    return result


def _drop(gateway: GatewayEmulator, to: int) -> None:
    """Twenty seconds after the emulator saw its first call, lower its quota."""
    while not gateway.quota_seconds():
        time.sleep(0.05)
    first = min(row[0] for row in gateway.quota_seconds())
    time.sleep(max(0.0, first + 20 - time.time()))
    gateway.set_quota(to)


def chart(result: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    points = [row for row in result["per_second"] if row[0] < JUDGED_SECONDS]
    x = [row[0] for row in points]
    admitted = [row[1] for row in points]
    axes.bar(x, admitted, width=1, align="edge", color="#5d8aa8", label="admitted")
    axes.bar(x, [row[2] for row in points], width=1, align="edge", bottom=admitted, color="#c0392b",
             label="throttled")
    axes.step([0, 20, 20, JUDGED_SECONDS], [result["quota"], result["quota"], result["drop_to"], result["drop_to"]],
              where="post", color="#2c3e50", linestyle="--", label="the emulator's quota")
    axes.set_xlabel("seconds since the first call")
    axes.set_ylabel("calls per second")
    axes.set_title(f"Quota {result['quota']} → {result['drop_to']} calls/s at 20 s, ALI1688_QPS unset", fontsize=11)
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(True, axis="y", alpha=0.3)
    figure.savefig(path, format="png", metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["quotas", "drop"], help="only one part")
    parser.add_argument("--quotas", type=int, nargs="+", default=[5, 20, 60])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "quota-drop.png", help="the drop's chart")
    args = parser.parse_args()
    results = []
    if args.only != "drop":
        for quota in args.quotas:
            for workers in args.workers:
                results.append(run(quota, workers))
                print(json.dumps({k: v for k, v in results[-1].items() if k != "per_second"}), flush=True)
    if args.only != "quotas":
        results.append(run(20, 1, drop_to=10))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "per_second"}), flush=True)
        chart(results[-1], args.png)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("\n| quota | workers | converged after | utilisation after | throttled after | throttled overall | "
          "calls | learned |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        quota = f"{r['quota']} → {r['drop_to']} (from the drop)" if "drop_to" in r else str(r["quota"])
        after = "—" if r["converged_after_s"] is None else f"{r['converged_after_s']} s"
        util = "—" if r["utilisation_after"] is None else f"{r['utilisation_after']:.1%}"
        thr = "—" if r["throttled_after"] is None else f"{r['throttled_after']:.2%}"
        print(f"| {quota} | {r['workers']} | {after} | {util} | {thr} | {r['throttled_overall']:.2%} | "
              f"{r['calls']} | {r['learned']} |")


if __name__ == "__main__":
    main()
