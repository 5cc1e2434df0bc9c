"""Freshness (issue 16): how late a price change reaches MongoDB, polling against change messages.

    python bench/freshness.py                   # 20,000 offers, 10 calls/s, 10 minutes: ~15 min in all
    python bench/freshness.py --offers 2000 --minutes 3  # a quicker look

Two arms run side by side on this machine, each against its own emulator (same seed, same
catalogue, ``--drift-share 0.01``: ~1 % of the offers change at each epoch) with a quota of
``--qps`` calls per second, its own database, and the same clock:

- **polling**, the best one can do without messages: ``scrapy crawl product
  -a refresh_older_than=1s`` in a loop (each run re-fetches every stored product once, oldest
  first), ``ALI1688_QPS`` = the quota;
- **messages**: the emulator pushes signed messages for every followed offer that changes (with
  delays, reordering, duplicates and failed deliveries: the flags below) to
  ``python -m ali1688spider listen``, which queues the offers; one ``product_redis`` worker, with
  the same ``ALI1688_QPS``, fetches them.

Setup: the offers are followed (the emulator's ``/_sandbox/follows`` control: the follow spider's
calls are not what is measured) and fetched once into the polling arm's database without a quota,
then copied into the messages arm's. Each arm has its own Mongo-protocol server (it answers one
request at a time, and polling's scans of the products would stall the other arm), and products
are stored without their raw payload (``ALI1688_STORE_RAW=false``), so the scans take seconds.
Then, every minute from t = 0, both emulators move to the next epoch at once; the bench notes the
time. A change is an (offer, epoch) with
``Catalogue.drifted_ids``; it is *detected* by the first ``product_history`` document of that offer
written by a fetch (not the stock a message writes at once) at or after the epoch's time. Its delay
is that document's ``at`` minus the epoch's time. A change not detected when the window ends counts
with the time it had waited so far, and the percentiles that include such a change are lower bounds
(shown with ≥). Calls are the emulator's count of product calls (and follow/replay calls, none here).

Writes ``--json`` (bench/freshness.json) and ``--chart`` (bench/freshness.png); the numbers are
copied by hand into bench/RESULTS.md, never asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawl_bench import ROOT, crawl_env  # bench/ is sys.path[0] when run as a script
from pymongo import MongoClient

from ali1688spider.demo.services import gateway_emulator, message_listener, mongo_server, redis_server
from ali1688spider.report.data import nearest_rank
from ali1688spider.sandbox.catalogue import Catalogue
from ali1688spider.store.mongo import MongoStore

SEED = 1688
FIRST_ID = 610_000_000_000
PRODUCT_API = "alibaba.product.get"
PUSH_FLAGS = ("--push-delay-ms", "500", "--push-jitter-ms", "1000", "--push-duplicate", "0.05",
              "--push-fail", "0.05", "--push-retry-seconds", "5")


def _stop(process: subprocess.Popen[Any], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class Polling:
    """``scrapy crawl product -a refresh_older_than=1s`` again and again until stopped."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.runs = env, log, 0
        self.process: subprocess.Popen[Any] | None = None

    def tick(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.runs += 1
            with self.log.open("a") as handle:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "scrapy", "crawl", "product", "-a", "refresh_older_than=1s"],
                    cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def preload(env: dict[str, str], ids: list[int], work: Path) -> float:
    ids_file = work / "ids.txt"
    ids_file.write_text("".join(f"{offer_id}\n" for offer_id in ids))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={ids_file}"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def detections(db: Any, changes: dict[tuple[int, int], float], epoch_times: dict[int, float],
               end: float) -> list[tuple[float, bool]]:
    """``(delay in seconds, detected)`` of each change."""
    fetched: dict[str, list[float]] = {}
    for doc in db.product_history.find({"source_api": {"$ne": "message"}}, {"product_id": 1, "at": 1}):
        fetched.setdefault(doc["product_id"], []).append(doc["at"].timestamp())
    for times in fetched.values():
        times.sort()
    result = []
    for (offer_id, epoch), _ in sorted(changes.items()):
        changed_at = epoch_times[epoch]
        seen = next((at for at in fetched.get(str(offer_id), []) if at >= changed_at), None)
        result.append((seen - changed_at, True) if seen is not None and seen <= end else (end - changed_at, False))
    return result


def summary(delays: list[tuple[float, bool]], calls: int) -> dict[str, Any]:
    values = [delay for delay, _ in delays]
    detected = sum(1 for _, seen in delays if seen)
    ordered = sorted(delays)

    def figure(share: float) -> dict[str, Any]:
        value = nearest_rank(sorted(values), share)
        # a lower bound when a change not yet detected sits at or below this rank
        bound = any(not seen for delay, seen in ordered if delay <= value)
        return {"seconds": round(value, 1), "lower_bound": bound}

    return {"changes": len(delays), "detected": detected, "undetected": len(delays) - detected,
            "p50": figure(0.50), "p95": figure(0.95), "max": figure(1.0), "product_calls": calls,
            "calls_per_detected_change": round(calls / detected, 2) if detected else None,
            "delays": [[round(delay, 2), seen] for delay, seen in delays]}


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:  # loopback
        return json.loads(reply.read())


def run(offers: int, qps: int, minutes: int, polling_arm: bool = True) -> dict[str, Any]:
    catalogue = Catalogue(SEED, drift_share=0.01)
    ids = catalogue.offer_ids(offers, start=FIRST_ID)
    work = Path(tempfile.mkdtemp(prefix="ali1688-freshness-"))
    with contextlib.ExitStack() as stack:
        # one Mongo-protocol server per arm: it serves one request at a time, and a full scan of
        # 20,000 products (polling's count of stale products) would stall the other arm's writes
        poll_mongo = stack.enter_context(mongo_server(work / "mongo-poll"))
        push_mongo = stack.enter_context(mongo_server(work / "mongo-push"))
        redis = stack.enter_context(redis_server(work / "redis"))
        common = {"ALI1688_STORE_RAW": "false", "MONGO_TIMEOUT_MS": "30000", "MONGO_DATABASE": "bench"}
        poll_env = crawl_env("", poll_mongo.url, qps) | common | {"ALI1688_TOKEN_FILE": str(work / "t1.json")}
        push_env = crawl_env("", push_mongo.url, qps) | common | {"REDIS_URL": redis.url,
                                                                 "ALI1688_TOKEN_FILE": str(work / "t2.json"),
                                                                 "ALI1688_QUEUE_POLL_SECONDS": "0.2"}
        listener = stack.enter_context(message_listener(push_env, log_path=work / "listener.log"))
        flags = ("--seed", str(SEED), "--drift-share", "0.01")
        polled = stack.enter_context(gateway_emulator(*flags, log_path=work / "emulator-poll.log"))
        pushed = stack.enter_context(gateway_emulator(*flags, "--callback-url", listener.url, *PUSH_FLAGS,
                                                      log_path=work / "emulator-push.log"))
        poll_env["ALI1688_GATEWAY_URL"], push_env["ALI1688_GATEWAY_URL"] = polled.url, pushed.url
        pushed.post("/_sandbox/follows", {"offer_ids": ids})
        print(f"preloading {offers} offers ...", flush=True)
        preload_seconds = preload(poll_env | {"ALI1688_QPS": "0"}, ids, work)
        poll_db = MongoClient(poll_mongo.url, tz_aware=True)["bench"]
        push_db = MongoClient(push_mongo.url, tz_aware=True)["bench"]
        store = MongoStore(push_mongo.url, "bench")
        store.open()  # the same indexes, made while the collection is empty
        store.close()
        batch: list[dict[str, Any]] = []
        for doc in poll_db.products.find():
            batch.append(doc)
            if len(batch) >= 1000:
                push_db.products.insert_many(batch, ordered=False)
                batch = []
        if batch:
            push_db.products.insert_many(batch, ordered=False)
        print(f"preloaded in {preload_seconds:.0f} s; {minutes} minutes of changes start", flush=True)
        for emulator in (polled, pushed):
            emulator.set_quota(qps)
            emulator.reset()
        stack.enter_context(_worker(push_env, work / "worker.log"))
        polling = Polling(poll_env, work / "polling.log")
        epoch_times: dict[int, float] = {}
        start = time.time()
        end = start + 60 * minutes
        epoch = 0
        while time.time() < end:
            due = start + 60 * epoch
            if epoch < minutes and time.time() >= due:
                epoch += 1
                epoch_times[epoch] = time.time()
                for emulator in (polled, pushed):
                    emulator.post("/_sandbox/epoch", {"epoch": epoch})
                print(f"epoch {epoch} at t = {epoch_times[epoch] - start:.1f} s", flush=True)
            if polling_arm:
                polling.tick()
            time.sleep(0.2)
        polling.stop()
        changes = {(offer_id, e): epoch_times[e] for e in epoch_times for offer_id in catalogue.drifted_ids(ids, e)}
        poll_stats, push_stats = polled.stats(), pushed.stats()
        push_counts = pushed.get("/_sandbox/push")
        health = _json(listener.url + "health")
        result = {
            "offers": offers, "qps": qps, "minutes": minutes, "epochs": len(epoch_times),
            "changes_per_epoch": round(len(changes) / max(1, len(epoch_times)), 1),
            "preload_seconds": round(preload_seconds, 1), "push_flags": list(PUSH_FLAGS),
            "started": datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
            "polling": summary(detections(poll_db, changes, epoch_times, end),
                               poll_stats["by_api"].get(PRODUCT_API, 0)) | {"runs": polling.runs},
            "messages": summary(detections(push_db, changes, epoch_times, end),
                                push_stats["by_api"].get(PRODUCT_API, 0))
            | {"push": push_counts, "listener": health["counts"],
               "stored_messages": push_db.messages.count_documents({})},
            "calls_by_api": {"polling": poll_stats["by_api"], "messages": push_stats["by_api"]},
        }
        poll_db.client.close()
        push_db.client.close()
        return result


@contextlib.contextmanager
def _worker(env: dict[str, str], log: Path) -> Any:
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "product_redis"], cwd=ROOT,
                                   env={**env, "MAX_IDLE_TIME_BEFORE_CLOSE": "0"}, stdout=handle,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        _stop(process)


def chart(result: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.8), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for arm, color in (("messages", "#2e86c1"), ("polling", "#c0392b")):
        delays = sorted(delay for delay, _ in result[arm]["delays"])
        if not delays:
            continue
        shares = [(index + 1) / len(delays) for index in range(len(delays))]
        p95 = result[arm]["p95"]
        label = (f"{arm}: p95 {'≥ ' if p95['lower_bound'] else ''}{p95['seconds']:.0f} s, "
                 f"{result[arm]['undetected']} of {result[arm]['changes']} not seen by the end (drawn at their wait)")
        axes.step(delays, shares, where="post", color=color, label=label)
    axes.axvline(60, color="#555555", linestyle=":", linewidth=1)
    axes.set_xscale("symlog", linthresh=10)
    axes.set_xlim(left=0)
    axes.set_xlabel("seconds from a change to its stored product (log scale past 10 s)")
    axes.set_ylabel("share of changes")
    axes.set_title(f"{result['offers']:,} offers, {result['qps']} calls/s, {result['changes_per_epoch']:.0f} "
                   f"changes a minute for {result['minutes']} minutes", fontsize=11)
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(True, alpha=0.3)
    figure.savefig(path, format="png", metadata={"Software": None})


def as_json(result: dict[str, Any]) -> str:
    """The result indented, except each arm's list of delays: one line (2,014 pairs would be
    8,000 lines each)."""
    arms = ("polling", "messages")
    shown = {**result, **{arm: {**result[arm], "delays": f"@delays:{arm}@"} for arm in arms}}
    text = json.dumps(shown, indent=1)
    for arm in arms:
        text = text.replace(f'"@delays:{arm}@"', json.dumps(result[arm]["delays"], separators=(",", ":")))
    return text + "\n"


def print_table(result: dict[str, Any]) -> None:
    def shown(figure: dict[str, Any]) -> str:
        return f"{'≥ ' if figure['lower_bound'] else ''}{figure['seconds']:.1f} s"

    print("| arm | changes | detected | p50 | p95 | max | product calls | calls per detected change |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm in ("polling", "messages"):
        row = result[arm]
        print(f"| {arm} | {row['changes']} | {row['detected']} | {shown(row['p50'])} | {shown(row['p95'])} | "
              f"{shown(row['max'])} | {row['product_calls']} | {row['calls_per_detected_change']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offers", type=int, default=20_000)
    parser.add_argument("--qps", type=int, default=10)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--no-polling", action="store_true",
                        help="run the messages arm alone (the polling arm's crawl does not run)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "freshness.json")
    parser.add_argument("--chart", type=Path, default=ROOT / "bench" / "freshness.png")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = run(args.offers, args.qps, args.minutes, polling_arm=not args.no_polling)
    args.json.write_text(as_json(result))
    chart(result, args.chart)
    print_table(result)


if __name__ == "__main__":
    main()
