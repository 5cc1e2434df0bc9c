"""Secrets audit: after a ``scrapy crawl``, a ``product_redis`` worker and a scrapyd job, nothing
any of them left behind holds the app secret, the refresh token, the Fernet key or an access
token the gateway issued — except the token stores, which hold them as they should: a file of
mode 0600 without a key, Fernet-encrypted with one.

The emulator gets distinctive credentials; a :class:`~tests.test_faults.GatewayProxy` in front of
it notes every access token the token endpoint hands out (short-lived tokens: several per run).
Searched: logs (``LOG_FILE``, stdout/stderr, scrapyd's and its jobs'), stats files, the HTTP
cache, every file under the runs' folders, every document of every MongoDB collection (as
``bson.json_util``), every Redis key and value. And no crawl serves a remote-control endpoint.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from bson import json_util
from cryptography.fernet import Fernet
from pymongo import MongoClient

from ali1688spider.demo.services import gateway_emulator, mongo_server, redis_server
from ali1688spider.sandbox.config import DEMO_APP_KEY

from .crawling import CATALOGUE, ROOT, clean_env
from .deploying import PROJECT, ScrapydProcess, project_copy, scrapyd_deploy, start_scrapyd
from .test_faults import GatewayProxy, gateway_proxy

pytestmark = pytest.mark.e2e  # the runs audited are real crawls, a worker and a scrapyd job
APP_SECRET = "SECRET-zq81x7Kp4Lw9Tg"
REFRESH_TOKEN = "REFRESH-zq81x3Rt6Nv2Hs"
SECRET_KEY = Fernet.generate_key().decode()
TOKEN_KEY = f"ali1688:token:{DEMO_APP_KEY}"
#: Input lines that hold a configured secret (a pasted config line, an environment dump given as
#: input): each becomes a failure, and the secret is masked wherever the input is shown (issue 12).
SECRET_LINES = {
    "crawl": [APP_SECRET, f"ALI1688_REFRESH_TOKEN={REFRESH_TOKEN}"],
    "worker": [SECRET_KEY, f"app secret {APP_SECRET}", json.dumps({"id": REFRESH_TOKEN, "api": "fenxiao"})],
}


@dataclass
class Runs:
    """What the three runs left, and the tokens the gateway issued meanwhile."""

    folder: Path
    proxy: GatewayProxy
    mongo: MongoClient[dict[str, Any]]
    redis: redis.Redis
    scrapyd: ScrapydProcess
    crawl_token_file: Path
    scrapyd_token_file: Path
    results: dict[str, int] = field(default_factory=dict)
    job: str = ""

    def secrets(self) -> dict[str, str]:
        found = {"app secret": APP_SECRET, "refresh token": REFRESH_TOKEN, "Fernet key": SECRET_KEY}
        for n, token in enumerate(sorted(self.proxy.access_tokens | self.proxy.refresh_tokens)):
            found[f"issued token {n}"] = token
        return found


def credentials(gateway: str, mongo_uri: str, database: str) -> dict[str, str]:
    return {
        "ALI1688_GATEWAY_URL": gateway, "ALI1688_APP_KEY": DEMO_APP_KEY, "ALI1688_APP_SECRET": APP_SECRET,
        "ALI1688_REFRESH_TOKEN": REFRESH_TOKEN, "MONGO_URI": mongo_uri, "MONGO_DATABASE": database,
    }


def ids(n: int, start: int) -> list[str]:
    return [str(i) for i in CATALOGUE.offer_ids(n, start=start)]


def scrapy_crawl(folder: Path, env: dict[str, str], spider: str, *args: str) -> int:
    """``scrapy crawl SPIDER`` at Q = 12 with a DEBUG log, its stats, stdout and stderr in
    ``folder`` (all searched by the audit); returns its exit code."""
    done = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", spider, *args, "-s", "ALI1688_QPS=12", "-s", "LOG_LEVEL=DEBUG",
         "-s", f"ALI1688_STATS_FILE={folder / 'stats.json'}", "-s", "ALI1688_BACKOFF_BASE=0.05",
         "-s", "ALI1688_BACKOFF_MAX=0.5", "-s", "MONGO_FLUSH_SECONDS=0.5",
         "-s", f"REMOTE_CONTROL_JOBS_DIR={folder / 'remote-control'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    (folder / "stdout.txt").write_text(done.stdout)
    (folder / "stderr.txt").write_text(done.stderr)
    return done.returncode


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("secrets")
    flags = ["--app-secret", APP_SECRET, "--refresh-token", REFRESH_TOKEN, "--token-ttl", "3",
             "--fault-isp", "0.1", "--fault-throttle200", "0.05", "--qps", "30"]
    with (mongo_server(folder / "mongo") as mongo, redis_server(folder / "redis") as redis_service,
          gateway_emulator(*flags) as gateway, gateway_proxy(gateway.url) as proxy):
        client: MongoClient[dict[str, Any]] = MongoClient(mongo.url, tz_aware=True)
        queue = redis.Redis.from_url(redis_service.url)
        crawl_dir, worker_dir, scrapyd_home = folder / "crawl", folder / "worker", folder / "scrapyd"
        for path in (crawl_dir, worker_dir):
            path.mkdir()
        scrapyd = start_scrapyd(scrapyd_home, {
            **credentials(proxy.url, mongo.url, "audit_scrapyd"),
            "ALI1688_TOKEN_FILE": str(scrapyd_home / "token.json"), "ALI1688_SECRET_KEY": SECRET_KEY,
            "ALI1688_BACKOFF_BASE": "0.05", "ALI1688_BACKOFF_MAX": "0.5",
        })
        audit = Runs(folder, proxy, client, queue, scrapyd, crawl_dir / "token.json", scrapyd_home / "token.json")
        try:
            # 1. scrapy crawl product: a token file without a key, the HTTP cache, stats, a DEBUG log file;
            # the secret as a -s setting (README: every setting is -s or the environment)
            crawl_ids = [*ids(45, 611_000_000_000), "not-an-id", "700000000001", *SECRET_LINES["crawl"]]
            env = clean_env(**credentials(proxy.url, mongo.url, "audit_crawl"))
            del env["ALI1688_APP_SECRET"]
            env["ALI1688_TOKEN_FILE"] = str(audit.crawl_token_file)
            audit.results["crawl"] = scrapy_crawl(
                crawl_dir, env, "product", "-a", "ids=" + ",".join(crawl_ids),
                "-s", f"ALI1688_APP_SECRET={APP_SECRET}", "-s", "HTTPCACHE_ENABLED=True",
                "-s", f"HTTPCACHE_DIR={crawl_dir / 'httpcache'}", "-s", f"LOG_FILE={crawl_dir / 'crawl.log'}",
                "-s", f"ALI1688_UNSAVED_DIR={crawl_dir / 'unsaved'}")

            # 2. a product_redis worker with ALI1688_SECRET_KEY: the token lives encrypted in Redis
            queue.rpush("product_redis:start_urls", *ids(45, 612_000_000_000), "not-an-id", *SECRET_LINES["worker"])
            env = clean_env(**credentials(proxy.url, mongo.url, "audit_worker"), REDIS_URL=redis_service.url,
                           ALI1688_SECRET_KEY=SECRET_KEY, MAX_IDLE_TIME_BEFORE_CLOSE="2",
                           ALI1688_QUEUE_POLL_SECONDS="0.2")
            audit.results["worker"] = scrapy_crawl(
                worker_dir, env, "product_redis", "-s", f"LOG_FILE={worker_dir / 'worker.log'}")

            # 3. a scrapyd job (credentials and an encrypted token file in scrapyd's environment)
            checkout = project_copy(folder / "checkout", scrapyd.url)
            deployed = scrapyd_deploy(checkout, "local", "-p", PROJECT, home=checkout)
            assert deployed.returncode == 0, deployed.stderr
            audit.job = scrapyd.schedule("product", settings={"ALI1688_QPS": "12", "LOG_LEVEL": "DEBUG"},
                                         ids=",".join(ids(40, 613_000_000_000)))
            scrapyd.wait_for_job(audit.job, timeout=120)
            audit.results["scrapyd"] = 0 if scrapyd.job_exit(audit.job) == "finished" else 1
            time.sleep(0.5)  # scrapyd writes its last lines
            yield audit
        finally:
            scrapyd.stop()
            queue.close()
            client.close()


def find_secrets(data: bytes, secrets: dict[str, str]) -> list[str]:
    return [name for name, secret in secrets.items() if secret.encode() in data]


def test_the_runs_ran(runs: Runs) -> None:
    """The audit searches real output: three successful runs, tokens renewed several times."""
    assert runs.results == {"crawl": 0, "worker": 0, "scrapyd": 0}, (runs.folder, runs.scrapyd.tail())
    assert len(runs.proxy.access_tokens) >= 3
    for database in ("audit_crawl", "audit_worker", "audit_scrapyd"):
        assert runs.mongo[database].products.count_documents({}) >= 40, database
    assert (runs.folder / "crawl" / "crawl.log").stat().st_size > 10_000
    assert json.loads((runs.folder / "crawl" / "stats.json").read_text())["finish_reason"] == "finished"
    assert json.loads((runs.folder / "worker" / "stats.json").read_text())["finish_reason"] == "finished"
    assert any(path.is_file() for path in (runs.folder / "crawl" / "httpcache").rglob("*"))
    assert runs.redis.exists(TOKEN_KEY)
    assert "summary:" in runs.scrapyd.job_log(runs.job, "product")


def test_no_file_left_holds_a_secret(runs: Runs) -> None:
    """Every file under the runs' folders: logs, stats, HTTP cache, scrapyd's logs, dbs and
    eggs, the Mongo-protocol server's files, the checkout; the two token stores aside."""
    secrets = runs.secrets()
    allowed = {runs.crawl_token_file, runs.scrapyd_token_file}
    hits: dict[str, list[str]] = {}
    searched = 0
    for path in sorted(runs.folder.rglob("*")):
        if not path.is_file() or path in allowed:
            continue
        searched += 1
        found = find_secrets(path.read_bytes(), secrets)
        if found:
            hits[str(path.relative_to(runs.folder))] = found
    assert searched > 20
    assert not hits, hits


def test_no_code_execution_endpoint_is_served(runs: Runs) -> None:
    """Scrapy's RemoteControl extension (on by default) would serve an HTTP endpoint that runs
    code sent to it inside the crawl, which holds the secrets, and announce it with a job file
    holding its bearer token. Neither crawl served it."""
    for run in ("crawl", "worker"):
        assert not (runs.folder / run / "remote-control").exists(), run
        log = (runs.folder / run / f"{run}.log").read_text()
        assert "Remote control" not in log and "RemoteControl" not in log, run


def test_http_cache_holds_unsigned_requests_only(runs: Runs) -> None:
    stored = b"".join(path.read_bytes() for path in (runs.folder / "crawl" / "httpcache").rglob("*") if path.is_file())
    assert b"productID" in stored
    for name in (b"access_token", b"_aop_signature", b"_aop_timestamp"):
        assert name not in stored


def test_no_mongo_document_holds_a_secret(runs: Runs) -> None:
    secrets = runs.secrets()
    hits: list[tuple[str, str, list[str]]] = []
    documents = 0
    for database in runs.mongo.list_database_names():
        if database in ("admin", "local", "config"):
            continue
        for collection in runs.mongo[database].list_collection_names():
            for document in runs.mongo[database][collection].find():
                documents += 1
                found = find_secrets(json_util.dumps(document).encode(), secrets)
                if found:
                    hits.append((database, collection, found))
    assert documents >= 130
    assert not hits, hits[:10]


def test_inputs_that_hold_a_secret_are_failures_with_it_masked(runs: Runs) -> None:
    crawl = {doc["_id"]: doc for doc in runs.mongo["audit_crawl"].failures.find()}
    assert crawl["***"]["reason"] == "invalid_reference" and "***" in crawl["***"]["message"]
    assert crawl["ALI1688_REFRESH_TOKEN=***"]["reason"] == "invalid_reference"
    worker = {doc["_id"]: doc["reason"] for doc in runs.mongo["audit_worker"].failures.find()}
    assert {"***", "app secret ***", '{"id": "***", "api": "fenxiao"}'} <= set(worker), worker
    assert not runs.redis.llen("product_redis:start_urls") and not runs.redis.zcard("product_redis:start_urls:leased")


def _redis_values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key)
    if kind == b"string":
        return [client.get(key) or b""]
    if kind == b"list":
        return list(client.lrange(key, 0, -1))
    if kind == b"zset":
        return [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
    if kind == b"hash":
        return [part for pair in client.hgetall(key).items() for part in pair]
    if kind == b"set":
        return list(client.smembers(key))
    return [repr(kind).encode()]


def test_no_redis_key_or_value_holds_a_secret(runs: Runs) -> None:
    secrets = runs.secrets()
    keys = list(runs.redis.scan_iter(count=1000))
    assert TOKEN_KEY.encode() in keys
    hits = {}
    for key in keys:
        found = find_secrets(key + b"\n".join(_redis_values(runs.redis, key)), secrets)
        if found:
            hits[key] = found
    assert not hits, hits


def test_redis_token_is_encrypted(runs: Runs) -> None:
    sealed = runs.redis.get(TOKEN_KEY)
    assert sealed is not None
    token = json.loads(Fernet(SECRET_KEY.encode()).decrypt(sealed))
    assert token["access_token"] in runs.proxy.access_tokens
    assert token["refresh_token"] == REFRESH_TOKEN  # kept, but only inside the ciphertext


def test_token_file_without_a_key_is_private(runs: Runs) -> None:
    path = runs.crawl_token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = json.loads(path.read_bytes())
    assert token["access_token"] in runs.proxy.access_tokens
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".token-")]  # no temporary copies left


def test_token_file_with_a_key_is_encrypted(runs: Runs) -> None:
    path = runs.scrapyd_token_file
    data = path.read_bytes()
    assert not find_secrets(data, runs.secrets())
    token = json.loads(Fernet(SECRET_KEY.encode()).decrypt(data))
    assert token["access_token"] in runs.proxy.access_tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
