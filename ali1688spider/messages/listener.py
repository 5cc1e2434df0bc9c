"""``python -m ali1688spider listen``: the app's HTTP callback for 1688's change messages.

1688 POSTs each message as a form, ``message=<JSON>&_aop_signature=<HMAC-SHA1>`` (docs/PROTOCOL.md,
"Change messages"). For each POST, in this order:

1. a body over ``--max-body`` bytes: 413; a body that is no form, or not UTF-8: 400;
2. a missing or wrong signature (app secret over ``"message" + message``): 401, nothing stored;
3. a message that is not JSON or has no ``msgId``: 400;
4. the message goes through the inbox (:mod:`.inbox`): stored in ``messages``, applied, its offers
   queued for the ``product_redis`` workers; MongoDB or Redis failing: 503, and 1688 delivers
   again later;
5. ``200 success`` (any 2xx is a delivery for 1688).

One log line per POST; ``GET /health`` gives the counters and whether MongoDB and Redis answer
(never a secret). Stateless: several listeners can serve one URL. SIGTERM or SIGINT: stop taking
connections, finish what is in flight, close.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .. import config
from ..aop.messages import MalformedMessage, push_signature_matches, read_message
from ..aop.signing import SIGNATURE_PARAM
from ..aop.text import storable_text
from ..cluster import async_redis
from ..cluster.leases import LeaseQueue
from ..inputs import queue_key
from ..store.messages import MessageStore
from ..store.mongo import StorageError
from .inbox import Inbox

logger = logging.getLogger("ali1688spider.listen")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY = 256 * 1024  # a message names a few ids; 1688 sends nothing near this
FORM = "application/x-www-form-urlencoded"
INBOX: web.AppKey[Inbox] = web.AppKey("inbox", Inbox)
SECRET: web.AppKey[str] = web.AppKey("secret", str)
COUNTS: web.AppKey[Counter[str]] = web.AppKey("counts", Counter)
STARTED: web.AppKey[float] = web.AppKey("started", float)

DESCRIPTION = """Receive 1688's change messages (HTTP push) and queue the offers they name.
Reads ALI1688_APP_SECRET (required), MONGO_URI, MONGO_DATABASE, REDIS_URL and REDIS_START_URLS_KEY
from the environment. Binds 127.0.0.1 unless told otherwise: put it behind an HTTPS proxy (README)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                        help="refuse a POST body larger than this many bytes (default %(default)s)")


async def receive(request: web.Request) -> web.Response:
    counts = request.app[COUNTS]
    counts["requests"] += 1
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _refuse(counts, "too_large", 413, "the body is too large")
    if request.content_type not in (FORM, "text/plain", "application/octet-stream", ""):
        return _refuse(counts, "malformed", 400, f"expected a form ({FORM})")
    try:
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return _refuse(counts, "malformed", 400, "the body is not a UTF-8 form")
    if not params.get(SIGNATURE_PARAM):
        return _refuse(counts, "unsigned", 401, "no _aop_signature")
    if not push_signature_matches(params, request.app[SECRET]):
        return _refuse(counts, "bad_signature", 401, "the signature does not match the app secret")
    try:
        message = read_message(params.get("message", ""))
    except MalformedMessage as exc:
        return _refuse(counts, "malformed", 400, str(exc))
    try:
        receipt = await request.app[INBOX].accept(message, via="push")
    except Exception as exc:  # MongoDB or Redis failing (any error): 1688 delivers it again
        counts["failed"] += 1
        logger.error("message %s %s NOT stored (%s: %s): answered 503, 1688 delivers it again",
                     message.msg_id, message.topic, type(exc).__name__, storable_text(str(exc))[:300])
        return web.Response(status=503, text="try again later")
    counts["duplicates" if receipt.duplicate else "accepted"] += 1
    counts["queued"] += len(receipt.queued)
    counts[f"topic:{message.topic}"] += 1
    logger.info("message %s %s: %s", message.msg_id, receipt.meaning.reason.removeprefix("message:"),
                receipt.summary())
    return web.Response(status=200, text="success")


def _refuse(counts: Counter[str], kind: str, status: int, why: str) -> web.Response:
    counts[kind] += 1
    logger.warning("refused a push (%d): %s", status, why)
    return web.Response(status=status, text=why)


async def health(request: web.Request) -> web.Response:
    app = request.app
    inbox = app[INBOX]
    mongo = await inbox.store.ping()
    try:
        redis = bool(await asyncio.wait_for(inbox.queue.redis.ping(), timeout=2))
    except Exception:  # any Redis error means "not reachable" here
        redis = False
    counts = app[COUNTS]
    return web.json_response({
        "status": "ok" if mongo and redis else "degraded", "mongo": mongo, "redis": redis,
        "uptime_seconds": round(time.monotonic() - app[STARTED], 1),
        "counts": {key: value for key, value in sorted(counts.items()) if not key.startswith("topic:")},
        "topics": {key[6:]: value for key, value in sorted(counts.items()) if key.startswith("topic:")},
    })


def create_app(inbox: Inbox, secret: str, *, max_body: int = DEFAULT_MAX_BODY) -> web.Application:
    app = web.Application(client_max_size=max_body)
    app[INBOX] = inbox
    app[SECRET] = secret
    app[COUNTS] = Counter()
    app[STARTED] = time.monotonic()
    app.router.add_get("/health", health)
    app.router.add_post("/{tail:.*}", receive)
    return app


async def serve(host: str, port: int, max_body: int, settings: Any = None) -> None:
    secret = config.APP_SECRET.get(settings)
    store = MessageStore.from_settings(settings)
    redis = async_redis(settings)
    queue = LeaseQueue(redis, queue_key(config.REDIS_START_URLS_KEY.get(settings)))
    try:
        await store.open()  # a MongoDB that is not there now is said at once, not at the first push
        app = create_app(Inbox(store, queue), secret, max_body=max_body)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, shutdown_timeout=5.0)
            await site.start()
            bound = runner.addresses[0][1]
            shown = f"[{host}]" if ":" in host else host  # an IPv6 address
            print(f"ali1688 listener on http://{shown}:{bound}/ (health: /health), "
                  f"storing to {store.where}, queueing to {queue.urgent_key}", flush=True)
            logger.info("listening since %s", datetime.now(UTC).isoformat(timespec="seconds"))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            logger.info("stopping: %s", dict(app[COUNTS]))
        finally:
            await runner.cleanup()
    finally:
        await store.close()
        await redis.aclose()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config.check(None)
        if not config.APP_SECRET.get():
            print(f"error: {config.APP_SECRET.name} is not set: pushes cannot be verified without the app secret",
                  file=sys.stderr)
            return 2
    except config.SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535 or args.max_body < 1024:
        print("error: --port must be within 0..65535 and --max-body at least 1024", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args.host, args.port, args.max_body))
    except StorageError as exc:
        print(f"error: {exc} (set MONGO_URI)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
