"""Throughput of the gateway emulator: correctly signed product calls, as fast as they go.

Starts ``python -m ali1688spider.sandbox --port 0`` (no faults, no latency unless passed with
``--sandbox-flag``), obtains an access token, then runs ``--concurrency`` aiohttp tasks for
``--seconds`` seconds, each signing (with the client's :mod:`ali1688spider.aop.signing`) and
posting calls over a pool of ``--ids`` offer ids. Prints requests/s, the status counts and the
CPU used by the emulator process (from ``/proc``) and by this client.

    python bench/sandbox_rps.py                       # product.get, 32 tasks, 10 s, 1000 ids (cached)
    python bench/sandbox_rps.py --ids 200000 --no-warmup   # mostly uncached offers
    python bench/sandbox_rps.py --sandbox-flag=--latency-ms=20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ali1688spider.aop.apis import product_api  # noqa: E402
from ali1688spider.aop.signing import encode_params, sign  # noqa: E402
from ali1688spider.demo.services import gateway_emulator  # noqa: E402
from ali1688spider.sandbox.catalogue import Catalogue  # noqa: E402
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET  # noqa: E402

SEED = 1688
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/PID/stat`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def hammer(url: str, token: str, api_name: str, ids: list[int], concurrency: int,
                 seconds: float | None) -> tuple[Counter[int], int, float]:
    """Send signed calls with ``concurrency`` tasks: for ``seconds``, or each id once if ``None``."""
    api = product_api(api_name)
    path = api.url_path(DEMO_APP_KEY)
    target = f"{url}/{path}"
    statuses: Counter[int] = Counter()
    received = 0

    async def one(session: aiohttp.ClientSession, offer_id: int) -> None:
        nonlocal received
        sent = encode_params({**api.params_for(str(offer_id)), "access_token": token,
                              "_aop_timestamp": int(time.time() * 1000)})
        sent["_aop_signature"] = sign(path, sent, DEMO_APP_SECRET)
        async with session.post(target, data=sent) as response:
            received += len(await response.read())
            statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        deadline = started + (seconds or 0.0)
        sequence = iter(range(len(ids) if seconds is None else 10**12))

        async def worker() -> None:
            for index in sequence:
                if seconds is not None and time.monotonic() >= deadline:
                    return
                await one(session, ids[index % len(ids)])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return statuses, received, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ids", type=int, default=1000, help="distinct offer ids to rotate through")
    parser.add_argument("--api", default="product.get", choices=["product.get", "crossborder", "fenxiao"])
    parser.add_argument("--no-warmup", action="store_true", help="do not fetch every id once before measuring")
    parser.add_argument("--sandbox-flag", action="append", default=[], help="extra emulator flag, e.g. =--qps=0")
    args = parser.parse_args()

    ids = Catalogue(SEED).offer_ids(args.ids)
    with gateway_emulator("--seed", str(SEED), *args.sandbox_flag, log_path=os.devnull) as emulator:
        url, pid = emulator.url, emulator.process.pid
        token = emulator.access_token()
        if not args.no_warmup:  # every id once: the emulator's body cache is then warm
            asyncio.run(hammer(url, token, args.api, ids, args.concurrency, None))
        cpu_before = process_cpu_seconds(pid)
        client_before = time.process_time()
        statuses, received, elapsed = asyncio.run(
            hammer(url, token, args.api, ids, args.concurrency, args.seconds))
        server_cpu = process_cpu_seconds(pid) - cpu_before
        client_cpu = time.process_time() - client_before

    total = sum(statuses.values())
    rps = total / elapsed
    print(f"api={args.api} concurrency={args.concurrency} ids={args.ids} warmup={not args.no_warmup} "
          f"python={sys.version.split()[0]} cores={os.cpu_count()}")
    print(f"requests={total} in {elapsed:.1f} s -> {rps:,.0f} requests/s; statuses={dict(statuses)}; "
          f"{received / total / 1024:.1f} KiB/reply")
    print(f"emulator CPU: {server_cpu:.2f} s = {100 * server_cpu / elapsed:.0f}% of one core; "
          f"{1e6 * server_cpu / total:.0f} us/request -> ~{total / server_cpu:,.0f} requests/s per core")
    print(f"client CPU: {client_cpu:.2f} s = {100 * client_cpu / elapsed:.0f}% of one core")
    return 0 if set(statuses) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
