"""``python -m ali1688spider.sandbox``: run the gateway emulator until SIGTERM or SIGINT.

The first line on stdout is ``… http://HOST:PORT/openapi …`` with the port actually bound
(``--port 0`` picks a free one); nothing else is ever written to stdout. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from .catalogue import DEFAULT_DRIFT_SHARE
from .config import (
    DEFAULT_HOST,
    DEFAULT_PUSH_ATTEMPTS,
    DEFAULT_PUSH_RETRY_SECONDS,
    DEFAULT_REFRESH_TTL,
    DEFAULT_SEED,
    DEFAULT_SLOW_MS,
    DEFAULT_TOKEN_TTL,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_REFRESH_TOKEN,
    SandboxConfig,
)
from .quota import WINDOWS as QUOTA_WINDOWS
from .server import AccessLogger, access_logger, create_app

log = logging.getLogger("ali1688spider.sandbox")


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate must be within [0, 1], got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _attempts(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ali1688spider.sandbox",
        description="Emulate the 1688 Open Platform gateway (PROTOCOL.md) on loopback.",
    )
    add = parser.add_argument
    add("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    add("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    add("--app-key", default=DEMO_APP_KEY, help="the one app key accepted (default %(default)s)")
    add("--app-secret", default=DEMO_APP_SECRET, help="its app secret (default: the demo secret)")
    add("--refresh-token", default=DEMO_REFRESH_TOKEN, help="a refresh token valid from the start")
    add("--token-ttl", type=float, default=DEFAULT_TOKEN_TTL, help="access token lifetime, s (default 36000)")
    add("--refresh-ttl", type=float, default=DEFAULT_REFRESH_TTL, help="refresh token lifetime, s (180 days)")
    add("--qps", type=_count, default=0, help="API calls per app key per second; 0 = no quota (change it "
        "while running: POST /_sandbox/quota)")
    add("--quota-window", choices=QUOTA_WINDOWS, default="second",
        help="count the quota per calendar second (default) or over a sliding 1-second window")
    add("--latency-ms", type=_seconds, default=0.0, help="delay added to every /openapi reply")
    add("--latency-jitter-ms", type=_seconds, default=0.0,
        help="mean of a random extra delay per reply, exponentially distributed like a network's long tail")
    add("--seed", type=int, default=DEFAULT_SEED, help="catalogue and fault seed (default %(default)s)")
    add("--epoch", type=_count, default=0,
        help="catalogue epoch at start: at N > 0 prices and stock of some offers have drifted (default 0)")
    add("--drift-share", type=_rate, default=DEFAULT_DRIFT_SHARE,
        help="share of the offers whose prices and stock drift at each epoch, 0..1 (default %(default)s)")
    add("--fault-5xx", type=_rate, default=0.0, help="rate of HTTP 502/503 without JSON")
    add("--fault-isp", type=_rate, default=0.0, help="rate of gw.ISP* errors (HTTP 500, sometimes 200)")
    add("--fault-throttle", type=_rate, default=0.0, help="rate of gw.Qos* errors with HTTP 400")
    add("--fault-throttle200", type=_rate, default=0.0, help="rate of gw.Qos* errors with HTTP 200")
    add("--fault-malformed", type=_rate, default=0.0, help="rate of HTTP 200 with broken JSON")
    add("--fault-slow", type=_rate, default=0.0, help="rate of replies delayed by --slow-ms")
    add("--slow-ms", type=_seconds, default=DEFAULT_SLOW_MS, help="delay of a slow reply")
    add("--usage-limit", type=_count, default=0,
        help="API calls served before gw.NoUsageLeftError; 0 = unlimited")
    add("--deny-api", action="append", default=[], metavar="NAME",
        help="answer gw.APIACLDecline for this API name (or namespace:name); repeatable")
    add("--max-timestamp-skew", type=_seconds, default=0.0,
        help="reject an _aop_timestamp further than this many seconds off the clock; 0 = no check")
    add("--access-log", action="store_true", help="log one line per request to stderr")
    add("--callback-url", default="",
        help="push messages about followed offers to this http(s) URL (change it while running: "
             "POST /_sandbox/push); without one they wait in the replay APIs")
    add("--push-delay-ms", type=_seconds, default=0.0, help="delay from a change to its message's first push")
    add("--push-jitter-ms", type=_seconds, default=0.0,
        help="mean of a random extra delay per push, exponentially distributed: reorders messages")
    add("--push-duplicate", type=_rate, default=0.0, help="rate of delivered messages pushed a second time")
    add("--push-fail", type=_rate, default=0.0, help="rate of push attempts failed on purpose, nothing sent")
    add("--push-retry-seconds", type=_seconds, default=DEFAULT_PUSH_RETRY_SECONDS,
        help="retry a failed push after this many seconds, doubling each time (default %(default)s)")
    add("--push-attempts", type=_attempts, default=DEFAULT_PUSH_ATTEMPTS,
        help="failed push attempts before a message is left to the replay APIs (default %(default)s)")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        host=args.host, port=args.port, app_key=args.app_key, app_secret=args.app_secret,
        refresh_token=args.refresh_token, token_ttl=args.token_ttl, refresh_ttl=args.refresh_ttl,
        qps=args.qps, quota_window=args.quota_window, latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms, seed=args.seed, epoch=args.epoch, fault_5xx=args.fault_5xx,
        fault_isp=args.fault_isp, fault_throttle=args.fault_throttle,
        fault_throttle200=args.fault_throttle200, fault_malformed=args.fault_malformed,
        fault_slow=args.fault_slow, slow_ms=args.slow_ms, usage_limit=args.usage_limit,
        deny_apis=tuple(args.deny_api), max_timestamp_skew=args.max_timestamp_skew,
        access_log=args.access_log, drift_share=args.drift_share, callback_url=args.callback_url,
        push_delay_ms=args.push_delay_ms, push_jitter_ms=args.push_jitter_ms,
        push_duplicate=args.push_duplicate, push_fail=args.push_fail,
        push_retry_seconds=args.push_retry_seconds, push_attempts=args.push_attempts,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(config: SandboxConfig) -> None:
    """Bind, print the address, serve until SIGTERM/SIGINT, then close the connections."""
    app = create_app(config)
    runner = web.AppRunner(
        app, access_log_class=AccessLogger, access_log=access_logger if config.access_log else None,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=1024, shutdown_timeout=1.0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"ali1688 sandbox listening on http://{_url_host(config.host)}:{port}/openapi "
              f"(app key {config.app_key})", flush=True)
        summary = {k: v for k, v in config.public_summary().items() if v not in (0, 0.0, (), [], False)}
        log.info("sandbox settings: %s", summary)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("sandbox stopping")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"sandbox: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
