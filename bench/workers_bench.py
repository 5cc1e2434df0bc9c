"""Distributed crawl benchmark: N ``scrapy crawl product_redis`` workers over one Redis queue.

    python bench/workers_bench.py quota --workers 1 2 4 --qps 60 --latency-ms 50 --ids 3000
    python bench/workers_bench.py unthrottled --workers 1 2 4 --ids 6000

For each worker count: a fresh emulator (``--qps Q --latency-ms L``, or no flags when
unthrottled), a fresh Mongo-protocol server and a fresh redis-server; the catalogue ids are pushed
with ``scrapy enqueue``, then N workers run until the queue has been drained for
MAX_IDLE_TIME_BEFORE_CLOSE (2 s). Reported per run: the aggregate call rate (calls sent by all
workers, from the first call any worker sent to the last), rate / Q, throttle errors and the
emulator's highest count in one calendar second and in any sliding second, signature failures,
token grants, products stored in Mongo, wall time, products per second of the call span, the
workers' CPU seconds (user + system, all workers) per 1,000 products, and the CPU seconds the
emulator, the Mongo-protocol server and redis-server used meanwhile (from ``/proc``). One JSON
object per run, then a markdown table. Results are recorded by hand in bench/RESULTS.md, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crawl_bench import DATABASE, ROOT, crawl_env  # bench/ is sys.path[0] when run as a script
from pymongo import MongoClient
from redis import Redis
from sandbox_rps import process_cpu_seconds

from ali1688spider.demo.services import gateway_emulator, mongo_server, redis_server
from ali1688spider.sandbox.catalogue import Catalogue

QUEUE = "product_redis:start_urls"


def cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run(workers: int, ids: int, qps: int, latency_ms: int, api: str, extra: list[str], timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ali1688-workers-bench-"))
    ids_file = work / "ids.txt"
    ids_file.write_text("\n".join(str(i) for i in Catalogue(1688).offer_ids(ids)) + "\n")
    flags = ["--qps", str(qps), "--latency-ms", str(latency_ms)] if qps else []
    stats_files = [work / f"stats-{n}.json" for n in range(workers)]
    logs = [work / f"worker-{n}.log" for n in range(workers)]
    with gateway_emulator(*flags) as gateway, mongo_server(work / "mongo") as mongo, \
            redis_server(work / "redis") as queue_server:
        env = crawl_env(gateway.url, mongo.url, qps, REDIS_URL=queue_server.url, MAX_IDLE_TIME_BEFORE_CLOSE="2",
                        ALI1688_QUEUE_POLL_SECONDS="0.2")
        subprocess.run([sys.executable, "-m", "scrapy", "enqueue", str(ids_file)], cwd=ROOT, env=env,
                       check=True, capture_output=True, text=True, timeout=120)
        servers = {"emulator": gateway, "mongo": mongo, "redis": queue_server}
        servers_before = {name: process_cpu_seconds(service.process.pid) for name, service in servers.items()}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        processes = []
        for stats_file, log in zip(stats_files, logs, strict=True):
            with log.open("w") as handle:  # the child keeps its own copy of the descriptor
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "scrapy", "crawl", "product_redis", "-a", f"api={api}",
                     "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "LOG_LEVEL=WARNING", *extra],
                    cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT))
        deadline = started + timeout
        codes = []
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers_cpu = {name: round(process_cpu_seconds(service.process.pid) - servers_before[name], 2)
                       for name, service in servers.items()}
        seen = gateway.stats()
        client: MongoClient = MongoClient(mongo.url)
        stored = client[DATABASE].products.count_documents({})
        failures = client[DATABASE].failures.count_documents({})
        client.close()
        queue = Redis.from_url(queue_server.url)
        left = queue.llen(QUEUE) + queue.zcard(QUEUE + ":leased")
        queue.close()
    if any(codes):
        tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
        raise RuntimeError(f"worker exit statuses {codes}\n{tails}")
    stats = [json.loads(path.read_text()) for path in stats_files]
    calls = [s.get("ali1688/request/sent", 0) for s in stats]
    sent = sum(calls)
    active = [s for s in stats if "ali1688/request/first_at" in s]
    span = max(s["ali1688/request/last_at"] for s in active) - min(s["ali1688/request/first_at"] for s in active)
    rate = (sent - 1) / span if span > 0 else None  # n calls are n - 1 intervals, as in crawl_bench
    cpu = cpu_seconds(after) - cpu_seconds(before)
    throttle_codes = {k: v for k, v in seen["by_outcome"].items() if k.startswith("gw.Qos")}
    return {
        "mode": "quota" if qps else "unthrottled", "workers": workers, "ids": ids, "api": api, "qps": qps,
        "latency_ms": latency_ms if qps else 0, "products": stored, "failures": failures, "queue_left": left,
        "calls_sent": sent, "calls_by_worker": calls,
        "products_by_worker": [s.get("ali1688/products", 0) for s in stats],
        "call_span_seconds": round(span, 2), "call_rate": round(rate, 2) if rate else None,
        "utilisation": round(rate / qps, 3) if qps and rate else None,
        "throttle_errors": sum(throttle_codes.values()),
        "max_per_second": seen.get("max_per_second"), "max_per_sliding_second": seen.get("max_per_sliding_second"),
        "signature_failures": seen["signature_failures"], "token_grants": seen.get("token_grants"),
        "wall_seconds": round(wall, 2), "products_per_second": round(stored / span, 1) if span > 0 else None,
        "workers_cpu_seconds": round(cpu, 2), "cpu_seconds_per_1000_products": round(1000 * cpu / max(stored, 1), 2),
        "servers_cpu_seconds": servers_cpu,
        "cores_busy": round((cpu + sum(servers_cpu.values())) / wall, 2),  # workers + servers, over the wall time
    }


def table(results: list[dict]) -> str:
    rows = [
        "| mode | workers | products | calls | call rate | rate / Q | throttle errors | max per second "
        "| sliding max | signature failures | token grants | wall | products/s | CPU s / 1,000 products "
        "| server CPU s (emulator / Mongo / Redis) | cores busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mode = f"Q = {r['qps']}, {r['latency_ms']} ms, {r['ids']:,} ids" if r["qps"] else f"no quota, {r['ids']:,} ids"
        rows.append(
            f"| {mode} | {r['workers']} | {r['products']:,} | {r['calls_sent']:,} | {r['call_rate']}/s "
            f"| {r['utilisation'] if r['utilisation'] is not None else '—'} | {r['throttle_errors']} "
            f"| {r['max_per_second']} | {r['max_per_sliding_second']} | {r['signature_failures']} "
            f"| {r['token_grants']} | {r['wall_seconds']} s | {r['products_per_second']} "
            f"| {r['cpu_seconds_per_1000_products']} "
            f"| {' / '.join(str(v) for v in r['servers_cpu_seconds'].values())} | {r['cores_busy']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["quota", "unthrottled"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--ids", type=int, default=3000)
    parser.add_argument("--qps", type=int, default=60)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--api", default="product.get")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the workers of one run")
    parser.add_argument("extra", nargs="*", help="scrapy crawl arguments after --, e.g. -- -s CONCURRENT_REQUESTS=64")
    args = parser.parse_args()
    qps, latency = (0, 0) if args.mode == "unthrottled" else (args.qps, args.latency_ms)
    results = []
    for count in args.workers:
        result = run(count, args.ids, qps, latency, args.api, args.extra, args.timeout)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"\n{os.cpu_count()} CPUs; workers, emulator, Mongo-protocol server and redis-server share them.\n")
    print(table(results))


if __name__ == "__main__":
    main()
