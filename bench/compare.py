"""Our crawler against the usual blog-post client (bench/baseline_client.py), side by side.

    python bench/compare.py                        # everything: ~10 minutes on 2 cores
    python bench/compare.py --only be              # only the unthrottled comparisons: ~2 minutes
    python bench/compare.py --serial               # the memory run alone, not beside (a)'s paused baseline

Every run gets a fresh gateway emulator and a fresh Mongo-protocol server (ali1688spider.demo.services),
the same emulator flags and the same catalogue ids for every client of a scenario:

(a) quota Q = 20, 50 ms latency, 600 ids: ``scrapy crawl product`` (ALI1688_QPS = 20, default
    settings) vs the baseline (5 threads, batches of 5, 1 s pause) vs the baseline without the
    pause and with 16 threads;
(b) no quota, no latency, 3,000 ids: our crawler (default 32 concurrent requests, and 16 for
    equal concurrency) vs the baseline without pause, 16 threads — plus, for reference, a tuned
    baseline (16 threads, a keep-alive session per thread, no batches);
(c) 1 and 3 ``product_redis`` workers sharing Q = 60 (50 ms latency, 1,500 ids), with
    bench/workers_bench.py;
(d) memory: ``scrapy crawl product -a ids_file=…`` over ``--memory-ids`` ids (100,000), no
    quota, no latency, into Mongo; peak RSS of the crawl process, and its RSS every second;
(e) equal concurrency under a network's latency: no quota, replies held 50 ms plus a random
    extra of mean 50 ms (``--latency-jitter-ms``, exponential: most replies quick, a few slow, as
    over a real network), 2,000 ids: our crawler with 16 concurrent requests vs the no-pause
    baseline with 16 threads, and the tuned baseline.

Each client is a child process reaped with ``os.wait4``, which gives that process's own CPU time
and peak RSS. To stay under 10 minutes, (a)'s paused baseline — which sleeps 95 % of its time —
runs while (d) runs (``--serial`` runs them apart; marked † in the table). "Foreign cores" is the CPU the machine spent
outside the client and its two servers during a run, divided by the wall time: other work on the
machine that competed with the run. Writes bench/compare.json and bench/compare.png and prints a
markdown table; the numbers are copied by hand into bench/RESULTS.md, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import workers_bench  # bench/ is sys.path[0] when run as a script
from crawl_bench import DATABASE, ROOT, crawl_env
from pymongo import MongoClient
from sandbox_rps import CLOCK_TICKS, process_cpu_seconds

from ali1688spider.demo.services import Service, gateway_emulator, mongo_server
from ali1688spider.sandbox.catalogue import Catalogue

BENCH = Path(__file__).resolve().parent
JITTER_MS = 50  # (e): mean of the emulator's random extra delay per reply
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float] | None:
    """A process's resident size and its peak so far (``VmRSS``, ``VmHWM``), in MiB."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, IndexError, ValueError):
        return None


def write_ids(work: Path, count: int) -> Path:
    path = work / f"ids-{count}.txt"
    if not path.exists():  # in slices: this process's size is part of every child's ru_maxrss
        catalogue, start, left = Catalogue(1688), None, count
        with path.open("w") as handle:
            while left:
                ids = catalogue.offer_ids(min(left, 50_000), *([start] if start else []))
                handle.write("".join(f"{i}\n" for i in ids))
                start, left = ids[-1] + 1, left - len(ids)
    return path


def run_child(command: list[str], env: dict[str, str], log: Path, *, sample_rss: bool = False) -> dict[str, Any]:
    """Run one client to its end: its wall time, its own CPU time (``wait4``) and its peak RSS.

    The peak is the kernel's high-water mark of the child (``VmHWM``), read every 0.2 s until it
    exits. Not ``wait4``'s ``ru_maxrss``: Linux keeps in it the resident size of this process at
    the fork, so a benchmark holding 190 MB made every child look 190 MB large."""
    samples: list[tuple[float, float]] = []
    peak = [0.0]
    done = threading.Event()
    started = time.monotonic()
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def sample() -> None:
        next_sample = 0.0
        while not done.wait(0.2):
            if (memory := memory_mb(process.pid)) is None:
                continue
            rss, peak[0] = memory[0], max(peak[0], memory[1])
            if sample_rss and (at := time.monotonic() - started) >= next_sample:
                samples.append((round(at, 1), round(rss, 1)))
                next_sample = at + 1.0

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    done.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}… exited {process.returncode}\n{log.read_text()[-3000:]}")
    return {"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": peak[0], "rss_samples": samples}


def measured(scenario: str, client: str, ids: int, qps: int, latency_ms: int, work: Path,
             start: Callable[[Service, Service, Path], tuple[list[str], Callable[[Path], dict[str, Any]]]],
             *, sample_rss: bool = False) -> dict[str, Any]:
    """Fresh emulator + Mongo server, one client run, and what the client and the emulator saw."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    flags = [*(["--qps", str(qps)] if qps else []), *(["--latency-ms", str(latency_ms)] if latency_ms else []),
             *(["--latency-jitter-ms", str(JITTER_MS)] if scenario == "e" else [])]
    with gateway_emulator(*flags) as gateway, mongo_server(run_dir / "mongo") as mongo:
        command, read = start(gateway, mongo, run_dir)
        servers = {"emulator": gateway, "mongo": mongo}
        servers_before = {name: process_cpu_seconds(s.process.pid) for name, s in servers.items()}
        busy_before = machine_busy_seconds()
        child = run_child(command, crawl_env(gateway.url, mongo.url, qps), run_dir / "client.log",
                          sample_rss=sample_rss)
        busy = machine_busy_seconds() - busy_before
        servers_cpu = {name: process_cpu_seconds(s.process.pid) - servers_before[name] for name, s in servers.items()}
        seen = gateway.stats()
        own = read(run_dir)
        if own.pop("count_mongo", False):
            with MongoClient(mongo.url) as db:
                own["stored"] = db[DATABASE].products.estimated_document_count()  # a full count: 10 s per 20,000
                own["failures_stored"] = db[DATABASE].failures.count_documents({})
    products, wall = own["products"], child["wall_seconds"]
    calls, span = own["calls"], own["call_span_seconds"]
    foreign = busy - child["cpu_seconds"] - sum(servers_cpu.values())
    return {
        "scenario": scenario, "client": client, "ids": ids, "qps": qps, "latency_ms": latency_ms, **own,
        "emulator_throttle_errors": sum(v for k, v in seen["by_outcome"].items() if k.startswith("gw.Qos")),
        "emulator_by_outcome": seen["by_outcome"], "max_per_second": seen.get("max_per_second"),
        "max_per_sliding_second": seen.get("max_per_sliding_second"),
        "signature_failures": seen["signature_failures"],
        "wall_seconds": round(wall, 2), "products_per_second": round(products / wall, 1),
        "products_per_second_span": round(products / span, 1) if span > 0 else None,
        "call_rate": round((calls - 1) / span, 2) if span > 0 else None,
        "utilisation": round((calls - 1) / span / qps, 3) if qps and span > 0 else None,
        "cpu_seconds": round(child["cpu_seconds"], 2),
        "cpu_seconds_per_1000_products": round(1000 * child["cpu_seconds"] / max(products, 1), 2),
        "peak_rss_mb": round(child["peak_rss_mb"], 1), "rss_samples": child["rss_samples"],
        "servers_cpu_seconds": {k: round(v, 2) for k, v in servers_cpu.items()},
        "foreign_cores": round(max(foreign, 0.0) / wall, 2),
    }


def ours(scenario: str, client: str, ids: int, qps: int, latency_ms: int, work: Path, extra: list[str],
         *, sample_rss: bool = False) -> dict[str, Any]:
    ids_file = write_ids(work, ids)

    def start(_gateway: Service, _mongo: Service, run_dir: Path) -> tuple[list[str], Callable[[Path], dict]]:
        stats_file = run_dir / "stats.json"
        command = [sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={ids_file}",
                   "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "LOG_LEVEL=WARNING", *extra]

        def read(_: Path) -> dict[str, Any]:
            stats = json.loads(stats_file.read_text())
            failed = {k.rsplit("/", 1)[1]: v for k, v in stats.items() if k.startswith("ali1688/failed/")}
            return {
                "products": stats.get("ali1688/products", 0), "errors": failed,
                "client_throttle_errors": sum(v for k, v in stats.items() if k.startswith("ali1688/error/gw.Qos")),
                "calls": stats.get("ali1688/request/sent", 0),
                "call_span_seconds": stats["ali1688/request/last_at"] - stats["ali1688/request/first_at"],
                "count_mongo": True,
            }
        return command, read

    return measured(scenario, client, ids, qps, latency_ms, work, start, sample_rss=sample_rss)


def baseline(scenario: str, client: str, ids: int, qps: int, latency_ms: int, work: Path,
             flags: list[str]) -> dict[str, Any]:
    ids_file = write_ids(work, ids)

    def start(gateway: Service, _mongo: Service, run_dir: Path) -> tuple[list[str], Callable[[Path], dict]]:
        out = run_dir / "baseline.json"
        command = [sys.executable, str(BENCH / "baseline_client.py"), "--gateway", gateway.url,
                   "--ids-file", str(ids_file), "--out", str(out), *flags]

        def read(_: Path) -> dict[str, Any]:
            summary = json.loads(out.read_text())
            return {"products": summary["products"], "errors": summary["errors"],
                    "client_throttle_errors": summary["throttle_errors"], "calls": summary["calls"],
                    "call_span_seconds": summary["call_span_seconds"], "work_seconds": summary["work_seconds"]}
        return command, read

    return measured(scenario, client, ids, qps, latency_ms, work, start)


def redis_workers(count: int, ids: int, qps: int, latency_ms: int, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    tempfile.tempdir = str(work)  # workers_bench keeps its folders: put them where main() removes them
    try:
        r = workers_bench.run(count, ids, qps, latency_ms, "product.get", [], timeout=300)
    finally:
        tempfile.tempdir = None
    wall = time.monotonic() - started  # servers and the enqueue included: not the client's wall
    return {
        "scenario": "c", "client": f"ours: {count} product_redis worker{'s' if count > 1 else ''}", "ids": ids,
        "qps": qps, "latency_ms": latency_ms, "products": r["products"],
        "errors": {"failures": r["failures"]} if r["failures"] else {}, "client_throttle_errors": None,
        "calls": r["calls_sent"], "call_span_seconds": r["call_span_seconds"],
        "emulator_throttle_errors": r["throttle_errors"], "max_per_second": r["max_per_second"],
        "max_per_sliding_second": r["max_per_sliding_second"], "signature_failures": r["signature_failures"],
        "wall_seconds": r["wall_seconds"], "products_per_second": round(r["products"] / r["wall_seconds"], 1),
        "products_per_second_span": r["products_per_second"], "call_rate": r["call_rate"],
        "utilisation": r["utilisation"], "cpu_seconds": r["workers_cpu_seconds"],
        "cpu_seconds_per_1000_products": r["cpu_seconds_per_1000_products"], "peak_rss_mb": None,
        "servers_cpu_seconds": r["servers_cpu_seconds"], "foreign_cores": None, "run_seconds": round(wall, 1),
    }


SCENARIOS = {
    "a": "(a) Q = 20, 50 ms, 600 ids",
    "b": "(b) no quota, 3,000 ids",
    "c": "(c) Q = 60, 50 ms, 1,500 ids",
    "d": "(d) memory, no quota",
    "e": "(e) no quota, 50 ms + jitter of mean 50 ms, 2,000 ids",
}


def table(results: list[dict[str, Any]]) -> str:
    def num(value: Any, fmt: str = "{}") -> str:
        return "—" if value is None else fmt.format(value)

    rows = [
        "| scenario | client | products / ids | errors | throttle errors (emulator / client) "
        "| max per second | wall | products/s | products/s, call span | call rate / Q | CPU s / 1,000 products "
        "| peak RSS | foreign cores |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        scenario = SCENARIOS[r["scenario"]] + (f", {r['ids']:,} ids" if r["scenario"] == "d" else "")
        rows.append(
            f"| {scenario} | {r['client']}{' †' if r.get('beside') else ''} | {r['products']:,} / {r['ids']:,} "
            f"| {sum(r['errors'].values()):,} "
            f"| {r['emulator_throttle_errors']:,} / {num(r['client_throttle_errors'], '{:,}')} "
            f"| {r['max_per_second']} | {r['wall_seconds']} s | **{r['products_per_second']}** "
            f"| {num(r['products_per_second_span'])} | {num(r['utilisation'])} "
            f"| {r['cpu_seconds_per_1000_products']} | {num(r['peak_rss_mb'], '{} MB')} "
            f"| {num(r['foreign_cores'])} |")
    return "\n".join(rows)


def ratios(results: list[dict[str, Any]]) -> dict[str, float | None]:
    by = {(r["scenario"], r["client"]): r for r in results}

    def ratio(a: tuple[str, str], b: tuple[str, str], key: str = "products_per_second") -> float | None:
        if a not in by or b not in by or not by[b][key]:
            return None
        return round(by[a][key] / by[b][key], 2)

    out: dict[str, float | None] = {}
    for key, suffix in (("products_per_second", ""), ("products_per_second_span", " (call span)")):
        out["quota: ours / baseline paused, 5 threads" + suffix] = ratio(("a", OURS), ("a", PAUSED), key)
        out["quota: ours / baseline no pause, 16 threads" + suffix] = ratio(("a", OURS), ("a", NO_PAUSE), key)
        out["no quota: ours (32) / baseline no pause, 16 threads" + suffix] = ratio(("b", OURS), ("b", NO_PAUSE), key)
        out["equal concurrency: ours (16) / baseline no pause, 16 threads" + suffix] = ratio(
            ("b", OURS_16), ("b", NO_PAUSE), key)
        out["equal concurrency: ours (16) / tuned baseline, 16 threads" + suffix] = ratio(
            ("b", OURS_16), ("b", TUNED), key)
        out["equal concurrency, latency with jitter: ours (16) / baseline no pause, 16 threads" + suffix] = ratio(
            ("e", OURS_16), ("e", NO_PAUSE), key)
        out["equal concurrency, latency with jitter: ours (16) / tuned baseline, 16 threads" + suffix] = ratio(
            ("e", OURS_16), ("e", TUNED), key)
    return out


OURS = "ours: scrapy crawl product"
OURS_16 = "ours, 16 concurrent requests"
PAUSED = "baseline: 5 threads, batches of 5, 1 s pause"
NO_PAUSE = "baseline: 16 threads, no pause"
TUNED = "tuned baseline: 16 threads, keep-alive, no batches"


def chart(results: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(18, 8.5), layout="constrained")
    axes = figure.subplots(2, 3)
    colours = {"ours": "#1f77b4", "baseline": "#ff7f0e", "tuned": "#bbbbbb"}
    for axis, scenario in zip(axes.flat[:4], "abec", strict=True):
        rows = [r for r in results if r["scenario"] == scenario]
        if not rows:
            axis.set_visible(False)
            continue
        names = [r["client"].replace(": ", ":\n", 1).replace(", ", ",\n") for r in rows]
        values = [r["products_per_second"] for r in rows]
        bars = axis.bar(range(len(rows)), values, color=[colours[r["client"].split(":")[0].split(",")[0].split()[0]]
                                                           for r in rows])
        for bar, r in zip(bars, rows, strict=True):
            lost = sum(r["errors"].values())
            note = f"{r['products_per_second']}/s\n{r['products']:,}/{r['ids']:,} stored"
            if lost:
                note += f"\n{lost:,} lost"
            axis.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                          fontsize=8, xytext=(0, 2), textcoords="offset points")
            if r["utilisation"] is not None and r["qps"]:
                axis.annotate(f"calls/s ÷ Q = {r['utilisation']}", (bar.get_x() + bar.get_width() / 2, 0),
                              ha="center", va="bottom", fontsize=8, color="white", xytext=(0, 4),
                              textcoords="offset points")
        if rows[0]["qps"]:
            axis.axhline(rows[0]["qps"], color="#2ca02c", linestyle="--", linewidth=1,
                         label=f"quota Q = {rows[0]['qps']}")
            axis.legend(loc="upper left", fontsize=8)
        axis.set_xticks(range(len(rows)), names, fontsize=7.5)
        axis.set_ylabel("products/s (wall time of the client)")
        axis.set_ylim(0, max(values) * 1.45)
        axis.set_title(SCENARIOS[scenario], fontsize=10)
    memory = next((r for r in results if r["scenario"] == "d"), None)
    axes.flat[5].set_visible(False)
    axis = axes.flat[4]
    if memory and memory["rss_samples"]:
        times, sizes = zip(*memory["rss_samples"], strict=True)
        axis.plot(times, sizes, color=colours["ours"])
        axis.axhline(150, color="#d62728", linestyle="--", linewidth=1)
        axis.annotate("target 150 MB", (times[-1], 150), ha="right", va="top", fontsize=8, color="#d62728",
                      xytext=(0, -3), textcoords="offset points")
        axis.set_ylim(0, max(170.0, memory["peak_rss_mb"] * 1.15))
        axis.set_xlabel("seconds")
        axis.set_ylabel("RSS, MB")
        axis.set_title(f"(d) RSS of scrapy crawl over {memory['ids']:,} ids: peak {memory['peak_rss_mb']} MB, "
                       f"{memory['products_per_second']} products/s", fontsize=10)
    else:
        axis.set_visible(False)
    figure.suptitle("bench/compare.py: our crawler vs the usual client (requests + thread pool)", fontsize=11)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-ids", type=int, default=100_000, help="ids of the memory run (d)")
    parser.add_argument("--serial", action="store_true", help="run (d) alone, after everything else")
    parser.add_argument("--only", default="abcde", help="scenarios to run, e.g. 'ab'")
    parser.add_argument("--json", default=str(BENCH / "compare.json"))
    parser.add_argument("--png", default=str(BENCH / "compare.png"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ali1688-compare-"))
    try:
        run_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the Mongo data of (d) alone is ~2.7 GB


def run_all(args: argparse.Namespace, work: Path) -> None:
    began = time.monotonic()
    results: list[dict[str, Any]] = []

    def step(result: dict[str, Any]) -> None:
        results.append(result)
        brief = {k: result.get(k) for k in ("scenario", "client", "products", "wall_seconds", "products_per_second",
                                             "cpu_seconds_per_1000_products", "emulator_throttle_errors",
                                             "peak_rss_mb", "foreign_cores")}
        print(f"[{time.monotonic() - began:5.0f} s] {json.dumps(brief)}", flush=True)

    if "b" in args.only:  # first: the CPU-bound runs, least disturbed
        equal = ["-s", "CONCURRENT_REQUESTS=16", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16"]
        step(ours("b", OURS, 3000, 0, 0, work, []))
        step(ours("b", OURS_16, 3000, 0, 0, work, equal))
        step(baseline("b", NO_PAUSE, 3000, 0, 0, work, ["--threads", "16", "--pause", "0"]))
        step(baseline("b", TUNED, 3000, 0, 0, work, ["--threads", "16", "--pause", "0", "--keep-alive",
                                                        "--no-batches"]))
    if "e" in args.only:
        equal = ["-s", "CONCURRENT_REQUESTS=16", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16"]
        step(ours("e", OURS_16, 2000, 0, 50, work, equal))
        step(baseline("e", NO_PAUSE, 2000, 0, 50, work, ["--threads", "16", "--pause", "0"]))
        step(baseline("e", TUNED, 2000, 0, 50, work, ["--threads", "16", "--pause", "0", "--keep-alive",
                                                         "--no-batches"]))
    if "c" in args.only:
        for count in (1, 3):
            step(redis_workers(count, 1500, 60, 50, work))
    if "a" in args.only:
        step(ours("a", OURS, 600, 20, 50, work, []))
        step(baseline("a", NO_PAUSE, 600, 20, 50, work, ["--threads", "16", "--pause", "0"]))

    def paused() -> dict[str, Any]:
        return baseline("a", PAUSED, 600, 20, 50, work, ["--threads", "5", "--pause", "1"])

    if "d" in args.only:
        memory: dict[str, Any] = {}
        errors: list[BaseException] = []

        def run_memory() -> None:
            try:
                memory.update(ours("d", OURS, args.memory_ids, 0, 0, work, [], sample_rss=True))
            except BaseException as exc:  # reported below, from the main thread
                errors.append(exc)

        background = threading.Thread(target=run_memory)
        background.start()
        if "a" in args.only and not args.serial:
            result = paused()
            result["beside"] = "d"
            step(result)
        background.join()
        if errors:
            raise errors[0]
        if "a" in args.only and not args.serial:
            memory["beside"] = "a, paused baseline"
        step(memory)
        if "a" in args.only and args.serial:
            step(paused())
    elif "a" in args.only:
        step(paused())

    order = {(s, c): i for i, (s, c) in enumerate(
        [("a", OURS), ("a", PAUSED), ("a", NO_PAUSE), ("b", OURS), ("b", OURS_16), ("b", NO_PAUSE), ("b", TUNED),
         ("e", OURS_16), ("e", NO_PAUSE), ("e", TUNED)])}
    results.sort(key=lambda r: (r["scenario"], order.get((r["scenario"], r["client"]), 99), r["client"]))
    total = time.monotonic() - began
    summary = {"seconds": round(total, 1), "cpus": os.cpu_count(), "ratios": ratios(results), "results": results}
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    chart(results, Path(args.png))
    print(f"\n{os.cpu_count()} CPUs; every client shares them with its emulator and its Mongo-protocol server.\n")
    print(table(results))
    print()
    for name, value in summary["ratios"].items():
        print(f"- {name}: {value if value is not None else '—'}")
    print(f"\ntotal {total:.0f} s; wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
