"""Every failure of PROTOCOL.md §4 the emulator can inject, one crawl of a few hundred ids each.

For each fault: every id ends in ``products`` or ``failures`` exactly once, no duplicate
document, the crawl ends by itself (``finish_reason`` ``finished``, or ``scrapy crawl`` exit 0)
and the emulator saw no bad signature.

- random faults at 20 % of the product calls: 5xx without JSON, ``gw.ISP*``, ``gw.Qos*`` with
  HTTP 400 and with HTTP 200, broken JSON;
- access tokens that expire every 2 seconds, over a crawl of several expiries;
- replies slower than ``DOWNLOAD_TIMEOUT``;
- the Mongo-protocol server killed (SIGKILL) and restarted mid-crawl on the same port and storage;
- replies that are valid JSON of the wrong shape (the emulator cannot send a body of our choice:
  a :class:`GatewayProxy` in front of it rewrites some replies), a reply about another offer, and
  a price that MongoDB's ``Decimal128`` cannot hold.

Not repeated here (tests/test_distributed.py has them): Redis restarted mid-crawl
(``test_redis_restarted_mid_crawl_loses_nothing``) and a worker killed with SIGKILL
(``test_a_killed_worker_loses_nothing``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import pytest_twisted
from pymongo import MongoClient

from ali1688spider.demo.services import free_port, gateway_emulator, mongo_server

from .crawling import ROOT, SEED, clean_env, crawl_settings, fresh_ids, loopback_server, run_crawl, scrapy_crawl
from .crawling import crawl_env as shared_crawl_env

pytestmark = pytest.mark.e2e  # every test starts its own emulator, Mongo-protocol server or crawl


def assert_accounted(db: Any, ids: list[str]) -> tuple[list[str], list[str]]:
    """Every id in products or failures, exactly once; nothing else in either. Returns both."""
    products = [doc["_id"] for doc in db.products.find({}, {"_id": 1})]
    failures = [doc["_id"] for doc in db.failures.find({}, {"_id": 1})]
    assert len(products) == len(set(products)), "duplicate product documents"
    assert len(failures) == len(set(failures)), "duplicate failure documents"
    both = set(products) & set(failures)
    assert not both, f"{len(both)} ids in products and failures, e.g. {sorted(both)[:3]}"
    missing = set(ids) - set(products) - set(failures)
    extra = (set(products) | set(failures)) - set(ids)
    assert not missing, f"{len(missing)} ids in neither collection, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} documents for ids never asked for, e.g. {sorted(extra)[:5]}"
    return products, failures


# -- random faults at 20 % ----------------------------------------------------------------------

RATE_FAULTS = {
    "5xx": "--fault-5xx",
    "isp": "--fault-isp",
    "throttle": "--fault-throttle",
    "throttle200": "--fault-throttle200",
    "malformed": "--fault-malformed",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(RATE_FAULTS))
@pytest_twisted.ensureDeferred
async def test_random_fault_at_20_percent(database: tuple[str, str, Any], kind: str) -> None:
    uri, name, db = database
    ids = fresh_ids(300)
    with gateway_emulator("--seed", str(SEED), RATE_FAULTS[kind], "0.2") as gateway:
        crawler = await run_crawl(crawl_settings(gateway.url, uri, name), ids=",".join(ids))
        seen = gateway.stats()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert "ali1688/fatal" not in stats
    products, _ = assert_accounted(db, ids)
    assert seen["signature_failures"] == 0
    assert seen["faults"].get(kind, 0) >= 30  # ~60 of ~375 calls: the fault really was injected
    gave_up = len(ids) - len(products)
    assert stats["ali1688/retry/count"] >= seen["faults"][kind] - gave_up  # every fault retried, but a last one
    # 6 retries at 20 %: a failure needs 7 faults in a row (p ≈ 1e-5 per id)
    assert len(products) >= len(ids) - 2


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_tokens_expiring_every_2_seconds(database: tuple[str, str, Any]) -> None:
    uri, name, db = database
    ids = fresh_ids(240)  # 6 s at 40 calls/s: three expiries or more
    with gateway_emulator("--seed", str(SEED), "--token-ttl", "2", "--qps", "40") as gateway:
        crawler = await run_crawl(crawl_settings(gateway.url, uri, name, ALI1688_QPS=40), ids=",".join(ids))
        seen = gateway.stats()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    _, failures = assert_accounted(db, ids)
    assert not failures
    assert seen["signature_failures"] == 0
    assert seen["max_per_second"] <= 40
    assert stats["ali1688/token/refresh"] >= 3
    assert seen["token_grants"] == stats["ali1688/token/refresh"]  # one grant per refresh, no storm


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_replies_slower_than_the_download_timeout(database: tuple[str, str, Any]) -> None:
    uri, name, db = database
    ids = fresh_ids(200)
    with gateway_emulator("--seed", str(SEED), "--fault-slow", "0.2", "--slow-ms", "1500") as gateway:
        settings = crawl_settings(gateway.url, uri, name, DOWNLOAD_TIMEOUT=1)
        crawler = await run_crawl(settings, ids=",".join(ids))
        seen = gateway.stats()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    products, _ = assert_accounted(db, ids)
    assert seen["signature_failures"] == 0
    assert seen["faults"].get("slow", 0) >= 20
    timeouts = sum(value for key, value in stats.items() if key.startswith("ali1688/error/") and "Timeout" in key)
    assert timeouts >= 20  # the slow replies were given up on and retried
    assert len(products) >= len(ids) - 2


# -- the Mongo-protocol server killed and restarted ---------------------------------------------

def start_secantus(port: int, storage: Path, log: Path, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """``python -m secantus`` on a given port (services.mongo_server always picks a free one),
    with ``--sync-on-commit``: without it the server loses writes it acknowledged just before a
    SIGKILL, as a MongoDB would on power loss, and the test would measure the server, not us."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
             "--storage-path", str(storage), "--sync-on-commit"], stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"secantus exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"secantus does not listen on {port}; see {log}")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def crawl_env(gateway_url: str, mongo_uri: str, database: str, **extra: str) -> dict[str, str]:
    """crawling.crawl_env with quick retries and flushes, in a clean copy of this environment."""
    quick = {"MONGO_TIMEOUT_MS": "", "ALI1688_BACKOFF_BASE": "0.05", "ALI1688_BACKOFF_MAX": "0.5",
             "MONGO_FLUSH_SECONDS": "0.5"}
    return clean_env(**shared_crawl_env(gateway_url, mongo_uri, database, **{**quick, **extra}))


@pytest.mark.timeout(150)
def test_mongo_killed_and_restarted_mid_crawl(tmp_path: Path) -> None:
    port = free_port()
    storage = tmp_path / "mongo-data"
    storage.mkdir()
    mongo_log = tmp_path / "secantus.log"
    server = start_secantus(port, storage, mongo_log)
    uri = f"mongodb://127.0.0.1:{port}"
    name = "killed"
    ids = fresh_ids(360)  # 6 s at 60 calls/s
    stats_file = tmp_path / "stats.json"
    unsaved = tmp_path / "unsaved"
    output = tmp_path / "crawl.log"
    crawl: subprocess.Popen[bytes] | None = None
    code: int | None = None  # stays None when the test fails before the crawl ends: said, not masked
    try:
        with gateway_emulator("--seed", str(SEED), "--qps", "60") as gateway:
            env = crawl_env(gateway.url, uri, name, ALI1688_QPS="60", MONGO_TIMEOUT_MS="1000",
                            ALI1688_UNSAVED_DIR=str(unsaved))
            with output.open("wb") as handle:
                command = [sys.executable, "-m", "scrapy", "crawl", "product", "-a", "ids=" + ",".join(ids),
                           "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "MONGO_FLUSH_SECONDS=0.5",
                           "-s", "MONGO_BATCH_SIZE=20",
                           "-s", "ALI1688_BACKOFF_BASE=0.05", "-s", "ALI1688_BACKOFF_MAX=0.5"]
                crawl = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
            watcher: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=1000)
            deadline = time.monotonic() + 60
            written = 0
            while time.monotonic() < deadline and crawl.poll() is None:
                with contextlib.suppress(Exception):
                    written = watcher[name].products.count_documents({})
                if written >= 30:
                    break
                time.sleep(0.1)
            watcher.close()
            assert 30 <= written < len(ids), f"the crawl did not get going ({written} written)"
            server.send_signal(signal.SIGKILL)
            server.wait()
            time.sleep(2.5)  # MongoDB is away: the pipeline keeps what it has and retries
            server = start_secantus(port, storage, mongo_log)
            code = crawl.wait(timeout=100)
            seen = gateway.stats()
    finally:
        if crawl is not None and crawl.poll() is None:
            crawl.kill()
            crawl.wait()
        text = output.read_text(errors="replace") if output.exists() else ""
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
        try:
            db = client[name]
            assert code == 0, text[-3000:]
            stats = json.loads(stats_file.read_text())
            assert stats["finish_reason"] == "finished", text[-3000:]
            assert stats.get("ali1688/mongo/write_retries", 0) >= 1, "MongoDB was never found away"
            assert "MongoDB is back" in text
            # while it was away, at 4 batches of 20 buffered the crawl waited instead of piling up products
            assert stats["ali1688/mongo/items_waited"] >= 1 and stats["ali1688/mongo/max_buffered"] <= 80
            _, failures = assert_accounted(db, ids)
            assert not failures
            assert not unsaved.exists() or not any(unsaved.iterdir())
            assert seen["signature_failures"] == 0
        finally:
            client.close()
            stop(server)


class SlowRelay:
    """A TCP relay to ``port`` that holds every reply chunk ``delay`` seconds: a slow MongoDB."""

    def __init__(self, port: int, delay: float) -> None:
        self.target = port
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(delay)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_the_crawl_ends_after_its_last_write(database: tuple[str, str, Any]) -> None:
    """With a slow MongoDB a periodic flush is usually writing when the spider closes: the crawl
    must not report ``finished`` before that write is done (and counted, and acknowledged)."""
    uri, name, db = database
    ids = fresh_ids(120)
    relay = SlowRelay(int(uri.rsplit(":", 1)[1]), 0.2)
    try:
        with gateway_emulator("--seed", str(SEED), "--qps", "60") as gateway:
            settings = crawl_settings(gateway.url, f"mongodb://127.0.0.1:{relay.port}/?directConnection=true", name,
                                      ALI1688_QPS=60, MONGO_FLUSH_SECONDS=0.02)
            crawler = await run_crawl(settings, ids=",".join(ids))
        stats = crawler.stats.get_stats()
        stored = db.products.count_documents({})  # at once: the crawl said it was done
    finally:
        relay.close()
    assert stats["finish_reason"] == "finished"
    assert stats["ali1688/products"] == len(ids)
    assert stored == len(ids), "products written after the crawl said it was finished"
    assert stats.get("ali1688/mongo/products_written") == len(ids), "the stats miss a write still in flight"


def test_tuning_settings_from_the_environment(tmp_path: Path) -> None:
    """README: each setting is ``-s NAME=value`` or the environment variable of the same name.
    The fault tests lean on that for ``ALI1688_STATS_FILE`` and the retry settings."""
    stats_file = tmp_path / "stats.json"
    offer_id = fresh_ids(1)[0]
    with mongo_server(tmp_path / "mongo") as mongo, gateway_emulator("--seed", str(SEED)) as gateway:
        gateway.script([{"kind": "isp", "times": 1}])
        env = crawl_env(gateway.url, mongo.url, "env", ALI1688_STATS_FILE=str(stats_file), ALI1688_RETRY_TIMES="0")
        done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids={offer_id}"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        client: MongoClient[dict[str, Any]] = MongoClient(mongo.url)
        failure = client["env"].failures.find_one({"_id": offer_id})
        client.close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert stats_file.exists(), "ALI1688_STATS_FILE from the environment was ignored"
    assert failure is not None and failure["attempts"] == 1, "ALI1688_RETRY_TIMES=0 from the environment was ignored"


# -- replies of the wrong shape (through a rewriting proxy) -------------------------------------

Rewrite = Callable[[str, int, bytes], bytes | None]


class GatewayProxy:
    """A loopback HTTP server that forwards every request to ``upstream`` unchanged (so the
    emulator still checks signatures, tokens and the quota) and answers with its reply, unless
    ``rewrite(offer_id, status, body)`` returns another body for a product call (sent with HTTP
    200). It notes every access and refresh token the token endpoint hands out."""

    def __init__(self, upstream: str, rewrite: Rewrite | None = None) -> None:
        self.upstream = upstream.rstrip("/").rsplit("/openapi", 1)[0]
        self.rewrite = rewrite
        self.rewritten: list[str] = []
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy._forward(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/openapi"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {"Content-Type": handler.headers.get("Content-Type") or "application/x-www-form-urlencoded"}
        request = urllib.request.Request(self.upstream + handler.path, data=body if handler.command == "POST" else None,
                                         method=handler.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, data, kind = reply.status, reply.read(), reply.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, data, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        if "/getToken/" in handler.path and status == 200:
            with contextlib.suppress(ValueError, AttributeError):
                grant = json.loads(data)
                with self._lock:
                    if grant.get("access_token"):
                        self.access_tokens.add(str(grant["access_token"]))
                    if grant.get("refresh_token"):
                        self.refresh_tokens.add(str(grant["refresh_token"]))
        offer_id = dict(parse_qsl(body.decode("utf-8", "replace"))).get("productID")
        if self.rewrite is not None and offer_id and "alibaba.product.get" in handler.path:
            new = self.rewrite(offer_id, status, data)
            if new is not None:
                with self._lock:
                    self.rewritten.append(offer_id)
                status, data, kind = 200, new, "application/json;charset=UTF-8"
        handler.send_response(status)
        handler.send_header("Content-Type", kind or "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def gateway_proxy(upstream: str, rewrite: Rewrite | None = None) -> Iterator[GatewayProxy]:
    proxy = GatewayProxy(upstream, rewrite)
    try:
        yield proxy
    finally:
        proxy.close()


def _valid_info(body: bytes) -> dict[str, Any]:
    return dict(json.loads(body)["productInfo"])


#: JSON of the wrong shape for one product.get call: (name, body from (offer id, real body)).
WRONG_SHAPES: list[tuple[str, Callable[[str, bytes], Any]]] = [
    ("a list", lambda oid, body: []),
    ("a string", lambda oid, body: "productInfo"),
    ("a number", lambda oid, body: 1688),
    ("null", lambda oid, body: None),
    ("an empty object", lambda oid, body: {}),
    ("productInfo a list", lambda oid, body: {"productInfo": [_valid_info(body)]}),
    ("productInfo a string", lambda oid, body: {"productInfo": "oops"}),
    ("the crossborder shape", lambda oid, body: {"result": {"success": True, "result": _valid_info(body)}}),
    ("productID not a number", lambda oid, body: {"productInfo": {**_valid_info(body), "productID": "n/a"}}),
    ("saleInfo a list", lambda oid, body: {"productInfo": {**_valid_info(body), "saleInfo": [1, 2]}}),
    ("skuInfos an object", lambda oid, body: {"productInfo": {**_valid_info(body), "skuInfos": {"0": {}}}}),
    ("attributes of numbers", lambda oid, body: {"productInfo": {**_valid_info(body), "attributes": [1, 2]}}),
    ("images a string", lambda oid, body: {"productInfo": {**_valid_info(body), "image": {"images": "a.jpg"}}}),
    ("price an object", lambda oid, body: {"productInfo": {
        **_valid_info(body), "saleInfo": {"priceRanges": [{"startQuantity": 1, "price": {"value": 1}}]}}}),
    ("no price at all", lambda oid, body: {"productInfo": {  # (the emulator may send a referencePrice too)
        **_valid_info(body), "saleInfo": {}, "skuInfos": [], "referencePrice": ""}}),
]


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_replies_of_the_wrong_shape(database: tuple[str, str, Any]) -> None:
    uri, name, db = database
    ids = fresh_ids(200)
    chosen = {offer_id: WRONG_SHAPES[n % len(WRONG_SHAPES)] for n, offer_id in enumerate(ids[::5])}

    def rewrite(offer_id: str, status: int, body: bytes) -> bytes | None:
        if offer_id not in chosen or status != 200:
            return None
        return json.dumps(chosen[offer_id][1](offer_id, body)).encode()

    with gateway_emulator("--seed", str(SEED)) as gateway, gateway_proxy(gateway.url, rewrite) as proxy:
        crawler = await run_crawl(crawl_settings(proxy.url, uri, name), ids=",".join(ids))
        seen = gateway.stats()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    products, failures = assert_accounted(db, ids)
    assert seen["signature_failures"] == 0
    assert set(proxy.rewritten) == set(chosen)
    assert set(failures) == set(chosen), {chosen[i][0] for i in set(chosen) ^ set(failures)}
    reasons = {doc["_id"]: doc["reason"] for doc in db.failures.find()}
    allowed = {"business_failure", "unreadable_product", "invalid_item", "gave_up"}
    assert set(reasons.values()) <= allowed, reasons
    assert len(products) == len(ids) - len(chosen)


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_reply_about_another_offer(database: tuple[str, str, Any]) -> None:
    """The gateway answers a call with another offer's product (productID differs from the
    one asked): the asked id must still end in one collection, and nothing is stored for an id
    nobody asked for."""
    uri, name, db = database
    ids = fresh_ids(40)
    swapped = set(ids[::10])
    other = fresh_ids(1)[0]

    def rewrite(offer_id: str, status: int, body: bytes) -> bytes | None:
        if offer_id not in swapped or status != 200:
            return None
        data = json.loads(body)
        data["productInfo"]["productID"] = int(other)
        return json.dumps(data).encode()

    with gateway_emulator("--seed", str(SEED)) as gateway, gateway_proxy(gateway.url, rewrite) as proxy:
        crawler = await run_crawl(crawl_settings(proxy.url, uri, name), ids=",".join(ids))
    assert sorted(proxy.rewritten) == sorted(swapped)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert_accounted(db, ids)


async def crawl_with_one_reply_changed(database: tuple[str, str, Any], change: Callable[[dict[str, Any]], None],
                                       ) -> tuple[Any, list[str], str]:
    """Crawl 60 ids through a proxy that applies ``change`` to one reply's ``productInfo``:
    ``(db, ids, the changed id)``, once the crawl finished normally."""
    uri, name, db = database
    ids = fresh_ids(60)
    odd = ids[7]

    def rewrite(offer_id: str, status: int, body: bytes) -> bytes | None:
        if offer_id != odd or status != 200:
            return None
        data = json.loads(body)
        change(data["productInfo"])
        return json.dumps(data).encode()

    with gateway_emulator("--seed", str(SEED)) as gateway, gateway_proxy(gateway.url, rewrite) as proxy:
        crawler = await run_crawl(crawl_settings(proxy.url, uri, name), ids=",".join(ids))
    assert proxy.rewritten == [odd]
    assert crawler.stats.get_value("finish_reason") == "finished"
    return db, ids, odd


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_reply_with_a_price_decimal128_cannot_hold(database: tuple[str, str, Any]) -> None:
    """A price of 40 significant digits is a valid number (and passes validation) but has no
    exact ``Decimal128``: that one id must become a failure, and every other product of the
    same bulk write must still be stored."""
    def change(info: dict[str, Any]) -> None:
        info["saleInfo"]["priceRanges"] = [{"startQuantity": 1, "price": "1.000000000000000000000000000000000000001"}]
        info["skuInfos"] = []

    db, ids, odd = await crawl_with_one_reply_changed(database, change)
    _, failures = assert_accounted(db, ids)
    assert failures == [odd]


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_raw_payload_bson_cannot_hold_as_received(database: tuple[str, str, Any]) -> None:
    """An integer beyond 64 bits and a NUL byte in a key, in fields the normaliser never reads:
    the product is valid, so it is stored — its raw payload in storable form (the number as
    text, the NUL replaced) — and so is every other product of the same bulk write."""
    def change(info: dict[str, Any]) -> None:
        info["bigCounter"] = 2**70
        info["extra"] = {"a\x00b": 1}

    db, ids, odd = await crawl_with_one_reply_changed(database, change)
    products, failures = assert_accounted(db, ids)
    assert failures == [] and len(products) == len(ids)
    info = db.products.find_one({"_id": odd})["raw"]["productInfo"]
    assert info["bigCounter"] == str(2**70)
    assert info["extra"] == {"a\ufffdb": 1}
    other = ids[8]
    assert db.products.find_one({"_id": other})["raw"]["productInfo"]["productID"] == int(other)


async def crawl_with_one_body(database: tuple[str, str, Any], body: Callable[[bytes], bytes],
                              ) -> tuple[Any, list[str], str, Any]:
    """Crawl 60 ids through a proxy that answers ``body(reply)`` (HTTP 200) for one of them:
    ``(db, ids, that id, the crawler)``."""
    uri, name, db = database
    ids = fresh_ids(60)
    odd = ids[7]

    def rewrite(offer_id: str, status: int, reply: bytes) -> bytes | None:
        return body(reply) if offer_id == odd and status == 200 else None

    with gateway_emulator("--seed", str(SEED)) as gateway, gateway_proxy(gateway.url, rewrite) as proxy:
        crawler = await run_crawl(crawl_settings(proxy.url, uri, name), ids=",".join(ids))
    assert proxy.rewritten == [odd]
    return db, ids, odd, crawler


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_lone_surrogates_in_a_reply_are_stored_escaped(database: tuple[str, str, Any]) -> None:
    """Issue 12, case 1: a JSON reply may carry ``\\ud83d`` escapes, which Python decodes into lone
    surrogates that BSON cannot encode. The product is stored with them escaped, and so is the rest
    of its batch."""
    def change(reply: bytes) -> bytes:
        data = json.loads(reply)
        data["productInfo"]["subject"] = "保温杯 \ud83d"
        data["productInfo"]["note\udc80"] = "\udfff"
        return json.dumps(data).encode()  # ASCII: the surrogates travel as \\u escapes

    db, ids, odd, crawler = await crawl_with_one_body(database, change)
    assert crawler.stats.get_value("finish_reason") == "finished"
    products, failures = assert_accounted(db, ids)
    assert failures == [] and len(products) == len(ids)
    stored = db.products.find_one({"_id": odd})
    assert stored["subject"] == "保温杯 \\ud83d"
    assert stored["raw"]["productInfo"].get("note\\udc80") == "\\udfff", sorted(stored["raw"]["productInfo"])


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_a_failure_message_with_lone_surrogates_is_stored(database: tuple[str, str, Any]) -> None:
    """Issue 12, case 1: the gateway says no with a message BSON cannot hold; the failure is
    stored with the message escaped, and no other failure or product of the batch is lost."""
    db, ids, odd, crawler = await crawl_with_one_body(
        database, lambda _: b'{"success": false, "errorCode": "500_004\\ud800", "errMsg": "\\ud83d gone"}')
    assert crawler.stats.get_value("finish_reason") == "finished"
    products, failures = assert_accounted(db, ids)
    assert failures == [odd] and len(products) == len(ids) - 1
    failure = db.failures.find_one({"_id": odd})
    assert failure["reason"] == "business_failure"
    assert failure["message"] == "\\ud83d gone" and failure["error_code"] == "500_004\\ud800"


@pytest.mark.timeout(180)
@pytest_twisted.ensureDeferred
async def test_a_reply_over_the_document_size_limit(database: tuple[str, str, Any]) -> None:
    """Issue 12: a product document over MongoDB's 16 MiB is stored without its raw payload
    (``raw_dropped`` says why); the rest of its batch is written."""
    def change(reply: bytes) -> bytes:
        data = json.loads(reply)
        data["productInfo"]["padding"] = "x" * 17_000_000  # a field the normaliser never reads
        return json.dumps(data).encode()

    db, ids, odd, crawler = await crawl_with_one_body(database, change)
    assert crawler.stats.get_value("finish_reason") == "finished"
    products, failures = assert_accounted(db, ids)
    assert failures == [] and len(products) == len(ids)
    stored = db.products.find_one({"_id": odd})
    assert stored["raw"] is None and "bytes" in stored["raw_dropped"] and stored["subject"]
    assert db.products.find_one({"_id": ids[8]})["raw"]["productInfo"]["productID"] == int(ids[8])


@contextlib.contextmanager
def web_server(status: int, body: bytes, content_type: str = "text/html") -> Iterator[str]:
    """An HTTP server on loopback that answers every request with the same page: its ``…/openapi`` URL."""
    class Page(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_server(Page) as base:
        yield f"{base}/openapi"


@pytest.mark.parametrize(("status", "body", "kind"), [
    (403, b"<html><body><h1>403 Forbidden</h1></body></html>", "text/html"),
    (200, b"<!doctype html><title>Welcome to nginx!</title>", "text/html"),
    (404, b"", "text/plain"),
    (200, b'{"hello": "world"}', "application/json"),
], ids=["html-403", "html-200", "empty-404", "json-of-no-gateway-shape"])
def test_a_gateway_url_that_is_not_the_gateway_stops_the_crawl(database: tuple[str, str, Any], status: int,
                                                                 body: bytes, kind: str) -> None:
    """Issue 12, case 3: with a token already known, a URL that answers pages, not gateway replies,
    used to turn every id into an unknown_error failure, exit 0. Now the crawl stops at once with
    one line and exit 2, and records no failure: a rerun against the right URL fetches every id."""
    uri, name, db = database
    ids = fresh_ids(201)
    with web_server(status, body, kind) as url:
        env = shared_crawl_env(url, uri, name, ALI1688_ACCESS_TOKEN="a-token-known-already",
                               ALI1688_BACKOFF_BASE="0.05", ALI1688_BACKOFF_MAX="0.2")
        done = scrapy_crawl(env, "-a", "ids=" + ",".join(ids), timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"ALI1688_GATEWAY_URL ({url}) does not answer like the 1688 gateway" in output
    assert "Traceback" not in output
    assert db.failures.count_documents({}) == 0 and db.products.count_documents({}) == 0
