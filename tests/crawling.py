"""Helpers for end-to-end crawls: in-process (stats at hand) and as ``scrapy crawl`` (exit status)."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

from ali1688spider import settings as project_settings
from ali1688spider.sandbox.catalogue import Catalogue
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN
from ali1688spider.spiders.product import ProductSpider

ROOT = Path(__file__).resolve().parent.parent
#: The catalogue seed of every emulator the tests start (the fixtures pass it; the emulator's
#: default, ``sandbox.config.DEFAULT_SEED``, is the same).
SEED = 1688
CATALOGUE = Catalogue(SEED)
_blocks = itertools.count()


def fresh_ids(n: int) -> list[str]:
    """``n`` ids of existing offers that no other test of the session uses (so the emulator's
    counts and the database's contents stay each test's own)."""
    return [str(i) for i in CATALOGUE.offer_ids(n, start=900_000_000_000 + next(_blocks) * 100_000)]


def fresh_missing(n: int) -> list[str]:
    """``n`` well-formed ids the catalogue does not have (a business failure)."""
    return [str(i) for i in CATALOGUE.missing_ids(n, start=900_000_000_000 + next(_blocks) * 100_000)]


def crawl_settings(gateway_url: str, mongo_uri: str, database: str, **extra: Any) -> dict[str, Any]:
    settings = {key: value for key, value in vars(project_settings).items() if key.isupper()}
    settings.update({
        "ALI1688_GATEWAY_URL": gateway_url, "ALI1688_APP_KEY": DEMO_APP_KEY,
        "ALI1688_APP_SECRET": DEMO_APP_SECRET, "ALI1688_REFRESH_TOKEN": DEMO_REFRESH_TOKEN,
        "MONGO_URI": mongo_uri, "MONGO_DATABASE": database, "LOG_LEVEL": "INFO",
        "ALI1688_BACKOFF_BASE": 0.05, "ALI1688_BACKOFF_MAX": 0.5, "MONGO_FLUSH_SECONDS": 0.5,
        "ALI1688_QPS": 0,  # no pacing unless a test asks: the quota tests set it
    })
    settings.update(extra)
    return settings


def run_crawl(settings: dict[str, Any], spider: type[Any] = ProductSpider, **spider_args: Any) -> Deferred[Any]:
    """Run a spider (the product spider unless told) in this process; the result is the crawler
    (stats, close reason).

    A Deferred driven on the asyncio loop, so ``await`` it from a ``pytest_twisted`` test.
    """

    async def crawl() -> Any:
        crawler = get_crawler(spider, settings)
        await crawler.crawl_async(**spider_args)
        return crawler

    return deferred_from_coro(crawl())


def crawl_env(gateway_url: str, mongo_uri: str, database: str, **overrides: str) -> dict[str, str]:
    """The environment of a ``scrapy crawl`` subprocess; an override of "" removes the variable."""
    env = {
        "ALI1688_GATEWAY_URL": gateway_url, "ALI1688_APP_KEY": DEMO_APP_KEY,
        "ALI1688_APP_SECRET": DEMO_APP_SECRET, "ALI1688_REFRESH_TOKEN": DEMO_REFRESH_TOKEN,
        "MONGO_URI": mongo_uri, "MONGO_DATABASE": database, "MONGO_TIMEOUT_MS": "1500",
        "ALI1688_QPS": "0",  # no pacing unless a test asks ("" removes it: the quota is found)
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ALI1688_/MONGO_/REDIS_ variable, plus ``extra``:
    a subprocess sees only the settings its test gives it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ALI1688_", "MONGO_", "REDIS_"))}
    env.update(extra)
    return env


def scrapy_crawl(env_extra: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl product ARGS`` in a subprocess, with only the given ALI1688_/MONGO_ variables."""
    env = clean_env(**env_extra)
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "product", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )



@contextlib.contextmanager
def loopback_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 in a thread, answering with ``handler``: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
