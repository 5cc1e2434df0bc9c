"""Deployment: the project as a scrapyd egg, deployed with ``scrapyd-deploy`` to a real scrapyd,
its ``product`` job scheduled over HTTP against the emulator and a Mongo-protocol server, and
``product_redis`` jobs draining a Redis queue filled with ``scrapy enqueue``.

Credentials reach the jobs through scrapyd's environment, as on a scrapyd host: never the egg,
never the schedule call.
"""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from bson.decimal128 import Decimal128
from pymongo import MongoClient

from ali1688spider.cluster.tokens import RedisTokenStore
from ali1688spider.demo.services import GatewayEmulator, gateway_emulator, mongo_server, redis_server
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

from .crawling import CATALOGUE, SEED
from .deploying import PROJECT, ROOT, ScrapydProcess, clean_environment, project_copy, scrapyd_deploy, start_scrapyd

DATABASE = "ali1688_scrapyd"
REDIS_DATABASE = "ali1688_scrapyd_redis"  # the product_redis jobs' own, so each test sees only its documents
QUEUE = "product_redis:start_urls"
QPS = 20
Mongo = tuple[str, MongoClient[dict[str, Any]]]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayEmulator]:
    """This module's own emulator, in place of the shared one: the quota at QPS."""
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with gateway_emulator("--seed", str(SEED), "--qps", str(QPS), log_path=log_path) as started:
        yield started


@pytest.fixture(scope="module")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mongo]:
    with mongo_server(tmp_path_factory.mktemp("mongo") / "data") as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.url, tz_aware=True)
        yield server.url, client
        client.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory, emulator: GatewayEmulator, mongo: Mongo,
            redis_url: str) -> Iterator[ScrapydProcess]:
    """A scrapyd whose environment holds what a scrapyd host's would: the credentials, MongoDB
    and Redis."""
    env = {
        "ALI1688_GATEWAY_URL": emulator.url, "ALI1688_APP_KEY": DEMO_APP_KEY,
        "ALI1688_APP_SECRET": DEMO_APP_SECRET, "ALI1688_REFRESH_TOKEN": DEMO_REFRESH_TOKEN,
        "MONGO_URI": mongo[0], "MONGO_DATABASE": DATABASE, "REDIS_URL": redis_url,
        "ALI1688_BACKOFF_BASE": "0.05", "ALI1688_BACKOFF_MAX": "0.5", "MONGO_FLUSH_SECONDS": "0.5",
    }
    process = start_scrapyd(tmp_path_factory.mktemp("scrapyd"), env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, scrapyd: ScrapydProcess) -> dict[str, object]:
    """``scrapyd-deploy local -p ali1688spider`` from a checkout whose ``[deploy:local]`` points
    at this scrapyd; the server's answer."""
    checkout = project_copy(tmp_path_factory.mktemp("checkout"), scrapyd.url)
    result = scrapyd_deploy(checkout, "local", "-p", PROJECT, home=checkout)
    assert result.returncode == 0, result.stderr
    reply: dict[str, object] = json.loads(result.stdout)
    assert reply["status"] == "ok", reply
    return reply


def test_scrapy_cfg_has_the_local_target() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "scrapy.cfg", encoding="utf-8")
    assert config["settings"]["default"] == "ali1688spider.settings"
    target = config["deploy:local"]
    assert target["url"] == "http://127.0.0.1:6800"  # no trailing slash: scrapyd-client joins paths to it
    assert target["project"] == PROJECT


def test_scheduled_job_crawls_into_mongo(scrapyd: ScrapydProcess, deployed: dict[str, object],
                                         emulator: GatewayEmulator, mongo: Mongo) -> None:
    assert deployed["project"] == PROJECT
    assert "product" in scrapyd.get("listspiders.json", project=PROJECT)["spiders"]
    ids = [str(i) for i in CATALOGUE.offer_ids(45, start=650_000_000_000)]  # > 2 s at QPS

    job = scrapyd.schedule("product", settings={"ALI1688_QPS": str(QPS)}, ids=",".join(ids))
    finished = scrapyd.wait_for_job(job, timeout=120)
    assert finished["spider"] == "product"
    assert scrapyd.job_exit(job) == "finished"

    db = mongo[1][DATABASE]
    assert {doc["_id"] for doc in db.products.find({}, {"_id": 1})} == set(ids)
    assert db.failures.count_documents({}) == 0
    for doc in db.products.find({"_id": {"$in": ids[:5]}}):
        prices = [tier["price"] for tier in doc["price_tiers"]] + [doc["min_price"], doc["max_price"]]
        assert prices and all(isinstance(price, Decimal128) for price in prices)
    seen = emulator.stats()
    assert seen["signature_failures"] == 0
    assert seen["max_per_second"] <= QPS  # the setting given to schedule.json reached the job:
    # without it the 45 calls would go out at once (CONCURRENT_REQUESTS 32)

    log = scrapyd.job_log(job, "product")
    assert "summary: fetched 45, failed 0 (none), duplicates 0, retried 0," in log
    assert "finish reason finished" in log
    for secret in (DEMO_APP_SECRET, DEMO_REFRESH_TOKEN):
        assert secret not in log
        assert secret not in scrapyd.log_path.read_text(encoding="utf-8")


def test_fatal_stop_is_a_failed_job(scrapyd: ScrapydProcess, deployed: dict[str, object],
                                    mongo: Mongo) -> None:
    """A crawl stopped by an error nothing will heal exits 2, which scrapyd reports as died."""
    offer_id = str(CATALOGUE.offer_ids(1, start=660_000_000_000)[0])
    job = scrapyd.schedule("product", settings={"ALI1688_APP_KEY": "9999999"}, ids=offer_id)
    scrapyd.wait_for_job(job, timeout=60)
    assert scrapyd.job_exit(job) == "died: exitstatus=2"
    log = scrapyd.job_log(job, "product")
    assert "finish reason ali1688_fatal" in log
    assert DEMO_APP_SECRET not in log and DEMO_REFRESH_TOKEN not in log
    assert mongo[1][DATABASE].products.find_one({"_id": offer_id}) is None


SUMMARY = re.compile(r"summary: fetched (\d+), failed (\d+) \(([^)]*)\)")


@pytest.mark.e2e  # runs scrapy enqueue
def test_redis_jobs_end_once_the_queue_is_drained(scrapyd: ScrapydProcess, deployed: dict[str, object],
                                                  emulator: GatewayEmulator, mongo: Mongo, redis_url: str,
                                                  tmp_path: Path) -> None:
    """Two ``product_redis`` jobs share a queue filled by ``scrapy enqueue`` and end by themselves
    (``MAX_IDLE_TIME_BEFORE_CLOSE``) once it is drained, exiting 0."""
    assert "product_redis" in scrapyd.get("listspiders.json", project=PROJECT)["spiders"]
    ids = [str(i) for i in CATALOGUE.offer_ids(60, start=670_000_000_000)]
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join([*ids, "not-an-id"]) + "\n", encoding="utf-8")
    enqueued = subprocess.run([sys.executable, "-m", "scrapy", "enqueue", str(listing)], cwd=ROOT,
                              env=clean_environment({"REDIS_URL": redis_url}, tmp_path),
                              capture_output=True, text=True, timeout=60)
    assert enqueued.returncode == 0, enqueued.stderr
    assert f"pushed 61 entries to {QUEUE}" in enqueued.stdout
    emulator.reset()  # count this test's calls only

    settings = {"MAX_IDLE_TIME_BEFORE_CLOSE": "2", "ALI1688_QUEUE_POLL_SECONDS": "0.2",
                "ALI1688_QPS": str(QPS), "MONGO_DATABASE": REDIS_DATABASE}
    jobs = [scrapyd.schedule("product_redis", settings=settings) for _ in range(2)]
    started = time.monotonic()
    for job in jobs:
        finished = scrapyd.wait_for_job(job, timeout=max(1.0, 90 - (time.monotonic() - started)))
        assert finished["spider"] == "product_redis"
    assert [scrapyd.job_exit(job) for job in jobs] == ["finished", "finished"], scrapyd.tail()

    db = mongo[1][REDIS_DATABASE]
    products = [doc["_id"] for doc in db.products.find({}, {"_id": 1})]
    assert sorted(products) == sorted(ids)  # each exactly once
    failures = list(db.failures.find({}))
    assert [(doc["_id"], doc["reason"]) for doc in failures] == [("not-an-id", "invalid_reference")]
    queue = redis.Redis.from_url(redis_url)
    assert queue.llen(QUEUE) == 0 and queue.zcard(QUEUE + ":leased") == 0
    seen = emulator.stats()
    assert seen["signature_failures"] == 0
    assert seen["max_per_second"] <= QPS  # the quota both jobs book in Redis

    logs = [scrapyd.job_log(job, "product_redis") for job in jobs]
    summaries = [SUMMARY.findall(log) for log in logs]
    assert all(len(found) == 1 for found in summaries), summaries
    # nothing fetched twice (one job may take the whole queue: it buffers 2 × CONCURRENT_REQUESTS;
    # the other then ends only once those leases are acked)
    assert sum(int(found[0][0]) for found in summaries) == len(ids)
    assert sum(int(found[0][1]) for found in summaries) == 1
    token = RedisTokenStore(queue, DEMO_APP_KEY).load()  # the access token both jobs used
    assert token is not None
    secrets = (DEMO_APP_SECRET, DEMO_REFRESH_TOKEN, token.access_token)
    for log in logs:
        assert "finish reason finished" in log
        assert f"the queue {QUEUE} is drained: closing" in log
    for text in [*logs, scrapyd.log_path.read_text(encoding="utf-8")]:
        assert not [secret for secret in secrets if secret in text]
    queue.close()


@pytest.mark.e2e  # runs scrapyd-deploy
def test_egg_needs_no_requirements_file(tmp_path: Path) -> None:
    """``scrapyd-deploy --build-egg`` from the package, setup.py and scrapy.cfg alone."""
    checkout = project_copy(tmp_path / "checkout", "http://127.0.0.1:6800")
    egg = tmp_path / "project.egg"
    result = scrapyd_deploy(checkout, "--build-egg", str(egg), home=tmp_path)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(egg) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
    assert "ali1688spider/settings.py" in names
    assert "ali1688spider/spiders/product.py" in names
    assert "settings = ali1688spider.settings" in entry_points
