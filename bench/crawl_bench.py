"""Crawl benchmarks against the emulator, into a local Mongo-protocol server.

    python bench/crawl_bench.py quota --qps 20 --latency-ms 50 --ids 2000
    python bench/crawl_bench.py quota --qps 50 --latency-ms 50 --ids 2000
    python bench/crawl_bench.py unthrottled --ids 5000

quota: achieved call rate / Q (from the first to the last call sent), throttle errors the
emulator answered, and the highest count it saw in any one calendar second and any sliding
second. unthrottled: no quota, no latency; products/s and the crawl process's CPU seconds per
1,000 products. Results are recorded by hand in bench/RESULTS.md, never asserted in tests.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ali1688spider.demo.services import gateway_emulator, mongo_server  # noqa: E402
from ali1688spider.sandbox.catalogue import Catalogue  # noqa: E402
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN  # noqa: E402

DATABASE = "bench"  # the Mongo database of every benchmarked crawl


def crawl_env(gateway: str, mongo_uri: str, qps: int, **extra: str) -> dict[str, str]:
    """This environment without any ALI1688_/MONGO_/REDIS_ variable, plus the emulator's demo
    credentials, the quota and the Mongo database ``bench``: what every benchmarked crawl gets."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ALI1688_", "MONGO_", "REDIS_"))}
    env.update(ALI1688_GATEWAY_URL=gateway, ALI1688_APP_KEY=DEMO_APP_KEY, ALI1688_APP_SECRET=DEMO_APP_SECRET,
               ALI1688_REFRESH_TOKEN=DEMO_REFRESH_TOKEN, ALI1688_QPS=str(qps), MONGO_URI=mongo_uri,
               MONGO_DATABASE=DATABASE, **extra)
    return env


def run(ids: int, qps: int, latency_ms: int, api: str, extra: list[str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ali1688-bench-"))
    ids_file = work / "ids.txt"
    ids_file.write_text("\n".join(str(i) for i in Catalogue(1688).offer_ids(ids)) + "\n")
    stats_file = work / "stats.json"
    flags = ["--qps", str(qps), "--latency-ms", str(latency_ms)]
    with gateway_emulator(*flags) as gateway, mongo_server(work / "mongo") as mongo:
        env = crawl_env(gateway.url, mongo.url, qps)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={ids_file}", "-a", f"api={api}",
             "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "LOG_LEVEL=WARNING", *extra],
            cwd=ROOT, env=env, check=True,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seen = gateway.stats()
    stats = json.loads(stats_file.read_text())
    sent = stats.get("ali1688/request/sent", 0)
    span = stats["ali1688/request/last_at"] - stats["ali1688/request/first_at"]
    products = stats.get("ali1688/products", 0)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    throttle_codes = {k: v for k, v in seen["by_outcome"].items() if k.startswith("gw.Qos")}
    result = {
        "ids": ids, "api": api, "qps": qps, "latency_ms": latency_ms, "products": products,
        "calls_sent": sent, "call_rate": round((sent - 1) / span, 2) if span > 0 else None,
        "utilisation": round((sent - 1) / span / qps, 3) if qps and span > 0 else None,
        "throttle_errors": sum(throttle_codes.values()),
        "max_per_second": seen.get("max_per_second"), "max_per_sliding_second": seen.get("max_per_sliding_second"),
        "signature_failures": seen["signature_failures"], "wall_seconds": round(wall, 2),
        "products_per_second": round(products / wall, 1),
        "crawl_cpu_seconds": round(cpu, 2), "cpu_seconds_per_1000_products": round(1000 * cpu / max(products, 1), 2),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["quota", "unthrottled"])
    parser.add_argument("--ids", type=int, default=2000)
    parser.add_argument("--qps", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--api", default="product.get")
    parser.add_argument("extra", nargs="*", help="more scrapy crawl arguments, e.g. -s CONCURRENT_REQUESTS=64")
    args = parser.parse_args()
    if args.mode == "unthrottled":
        result = run(args.ids, 0, 0, args.api, args.extra)
    else:
        result = run(args.ids, args.qps, args.latency_ms, args.api, args.extra)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
