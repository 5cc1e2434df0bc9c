"""End-to-end crawls against the real emulator and a real Mongo-protocol server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from decimal import Decimal

import pytest
import pytest_twisted
from bson.decimal128 import Decimal128
from scrapy.settings import Settings
from scrapy.spiderloader import get_spider_loader

from ali1688spider import settings as project_settings
from ali1688spider.aop import TokenClient
from ali1688spider.demo.services import free_port, gateway_emulator
from ali1688spider.gateway.middlewares import GatewayAuthMiddleware
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN
from ali1688spider.sandbox.shapes import shape_of
from ali1688spider.spiders import SpiderLoader
from ali1688spider.spiders.product import ProductSpider

from .crawling import (
    CATALOGUE,
    ROOT,
    SEED,
    clean_env,
    crawl_env,
    crawl_settings,
    fresh_ids,
    fresh_missing,
    run_crawl,
    scrapy_crawl,
)


def assert_every_input_accounted(db, ids):
    fetched = {doc["_id"] for doc in db.products.find({}, {"_id": 1})}
    failed = {doc["_id"] for doc in db.failures.find({}, {"_id": 1})}
    assert not fetched & failed
    assert set(ids) == fetched | failed


@pytest_twisted.ensureDeferred
async def test_clean_run_writes_exact_products(emulator, database):
    uri, name, db = database
    ids = fresh_ids(40)
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(ids))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["ali1688/products"] == 40
    assert db.products.count_documents({}) == 40
    assert db.failures.count_documents({}) == 0
    doc = db.products.find_one({"_id": ids[0]})
    assert doc["source_api"] == "product.get"
    assert doc["fetched_at"].tzinfo is not None
    assert doc["raw"]["productInfo"]["productID"] == int(ids[0])
    assert doc["detail_url"] == f"https://detail.1688.com/offer/{ids[0]}.html"
    prices = [tier["price"] for tier in doc["price_tiers"]] + [doc["min_price"], doc["max_price"]]
    assert prices and all(isinstance(price, Decimal128) for price in prices)
    # exact: the stored price is the catalogue's price in cents, to the cent
    offer = CATALOGUE.offer(ids[0])
    assert doc["price_tiers"][0]["price"].to_decimal() == Decimal(offer.tiers[0].price_cents) / 100
    assert all(isinstance(sku["price"], Decimal128) for sku in doc["skus"] if sku["price"] is not None)
    seen = emulator.stats()
    assert seen["signature_failures"] == 0


@pytest.mark.parametrize("api", ["product.get", "crossborder", "fenxiao"])
@pytest_twisted.ensureDeferred
async def test_all_three_apis_give_the_same_product(emulator, database, api):
    uri, name, db = database
    ids = fresh_ids(8)
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(ids), api=api, country="ja")
    assert crawler.stats.get_value("ali1688/products") == 8
    for offer_id in ids:
        doc = db.products.find_one({"_id": offer_id})
        offer = CATALOGUE.offer(offer_id)
        assert doc["source_api"] == api
        assert doc["subject"] == offer.subject
        private = shape_of(SEED, int(offer_id)).reference_only and api != "crossborder"  # referencePrice only
        expected = [] if private else [Decimal(t.price_cents) / 100 for t in offer.tiers]
        assert [t["price"].to_decimal() for t in doc["price_tiers"]] == expected
        assert len(doc["skus"]) == len(offer.skus)
        assert all(image.startswith("https://") for image in doc["images"])
        if api == "crossborder":
            assert doc["language"] == "ja"
            assert doc["subject_trans"]


@pytest.mark.e2e  # starts its own emulator
@pytest_twisted.ensureDeferred
async def test_faults_expiring_tokens_and_quota(database):
    uri, name, db = database
    ids = fresh_ids(150)
    # Random throttles are left out: the adaptive quota reads every throttle as "over the quota"
    # and cuts the rate, so a gateway that throttles one call in ten at any rate slows the crawl to
    # a crawl (a known limit of the rule, see its module). Throttles and retries: test_faults.py.
    with gateway_emulator("--seed", str(SEED), "--token-ttl", "2", "--qps", "20", "--fault-5xx", "0.1",
                          "--fault-isp", "0.1", "--fault-malformed", "0.1") as service:
        crawler = await run_crawl(crawl_settings(service.url, uri, name, ALI1688_QPS=20), ids=",".join(ids))
        seen = service.stats()
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert_every_input_accounted(db, ids)
    assert seen["signature_failures"] == 0
    assert seen["max_per_second"] <= 20
    assert stats["ali1688/retry/count"] > 0
    assert stats["ali1688/token/refresh"] >= 3  # ~8 s of crawling with 2-second tokens
    # with 6 retries and 30% faults, nearly everything heals
    assert db.products.count_documents({}) >= 145


@pytest_twisted.ensureDeferred
async def test_junk_duplicates_and_unknown_ids(emulator, database, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    uri, name, db = database
    ids = fresh_ids(10)
    missing = fresh_missing(2)
    junk = ["not-an-id", "12345", "https://example.com/offer/610784549587.html"]
    lines = ["# a comment", "", *ids, f"https://detail.1688.com/offer/{ids[0]}.html", ids[1] + "  # again",
             *junk, *missing]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = emulator.stats()["served"]
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids_file=str(path))
    stats = crawler.stats.get_stats()
    assert stats["ali1688/input/total"] == len(ids) + 2 + len(junk) + len(missing)
    assert emulator.stats()["served"] - before == len(ids) + len(missing)  # duplicates fetched once
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("summary:"))
    assert ", duplicates 2," in summary  # the id given again as a URL, and as itself
    assert_every_input_accounted(db, [*ids, *junk, *missing])
    for text in junk:
        assert db.failures.find_one({"_id": text})["reason"] == "invalid_reference"
    for offer_id in missing:
        failure = db.failures.find_one({"_id": offer_id})
        assert failure["reason"] == "business_failure"
        assert failure["error_code"] == "500_004"
        assert failure["attempts"] == 1
    assert stats["ali1688/input/duplicate"] == 2


@pytest_twisted.ensureDeferred
async def test_rerun_is_idempotent_and_clears_healed_failures(emulator, database):
    uri, name, db = database
    ids = fresh_ids(12)
    emulator.script([{"kind": "isp", "times": 3}])
    settings = crawl_settings(emulator.url, uri, name, ALI1688_RETRY_TIMES=0, CONCURRENT_REQUESTS=1)
    await run_crawl(settings, ids=",".join(ids))
    failed = {doc["_id"]: doc for doc in db.failures.find()}
    assert len(failed) == 3 and all(doc["reason"] == "gave_up" for doc in failed.values())
    assert all(doc["error_code"] == "gw.ISPInvokeError" or doc["error_code"].startswith("gw.ISP")
               for doc in failed.values())
    first_seen = {doc["_id"]: doc["first_seen_at"] for doc in db.products.find()}
    await run_crawl(settings, ids=",".join(ids))
    assert db.products.count_documents({}) == 12
    assert db.failures.count_documents({}) == 0
    for doc in db.products.find({"_id": {"$in": list(first_seen)}}):
        assert doc["first_seen_at"] == first_seen[doc["_id"]]


def assert_no_secret(output: str) -> None:
    for secret in (DEMO_APP_SECRET, DEMO_REFRESH_TOKEN, "wrong-secret-value"):
        assert secret not in output


@pytest.mark.e2e  # runs scrapy crawl
@pytest.mark.parametrize("with_access_token", [False, True], ids=["at-token-endpoint", "at-api-call"])
def test_wrong_secret_stops_fast_with_a_clear_line(emulator, database, with_access_token):
    uri, name, db = database
    ids = fresh_ids(200)
    overrides = {"ALI1688_APP_SECRET": "wrong-secret-value"}
    if with_access_token:  # a valid token: the wrong secret shows only in the signature
        token = TokenClient(emulator.url, DEMO_APP_KEY, DEMO_APP_SECRET).refresh(DEMO_REFRESH_TOKEN)
        overrides["ALI1688_ACCESS_TOKEN"] = token.access_token
    before = emulator.stats()
    done = scrapy_crawl(crawl_env(emulator.url, uri, name, **overrides), "-a", "ids=" + ",".join(ids))
    output = done.stdout + done.stderr
    after = emulator.stats()
    assert done.returncode == 2, output[-3000:]
    assert output.count("stopping the crawl") == 1
    line = next(line for line in output.splitlines() if "stopping the crawl" in line)
    assert "ALI1688_APP_SECRET" in line
    assert "Traceback" not in output
    assert_no_secret(output)
    if with_access_token:
        assert token.access_token not in output
        refused = after["signature_failures"] - before["signature_failures"]
        assert 1 <= refused <= 40  # stopped at once, not after 200 calls
        assert "gw.SignatureInvalid" in line
    else:
        assert "invalid_client" in line
    assert after["served"] == before["served"]
    assert db.products.count_documents({}) == 0


@pytest.mark.e2e  # runs scrapy crawl
def test_missing_credentials(emulator, database):
    uri, name, _ = database
    done = scrapy_crawl(crawl_env(emulator.url, uri, name, ALI1688_APP_SECRET="", ALI1688_REFRESH_TOKEN=""),
                        "-a", "ids=610784549587")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "missing credentials: set ALI1688_APP_SECRET, ALI1688_REFRESH_TOKEN" in output
    assert "Traceback" not in output


@pytest.mark.e2e  # runs scrapy crawl
def test_gateway_that_does_not_answer(database):
    uri, name, _ = database
    closed = f"http://127.0.0.1:{free_port()}/openapi"
    done = scrapy_crawl(crawl_env(closed, uri, name), "-a", "ids=610784549587")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"cannot get an access token from {closed}" in output
    assert "Traceback" not in output
    assert_no_secret(output)


@pytest.mark.e2e  # runs scrapy crawl
def test_mongo_unreachable_stops_before_any_call(emulator):
    closed = f"mongodb://127.0.0.1:{free_port()}"
    before = emulator.stats()["served"]
    done = scrapy_crawl(crawl_env(emulator.url, closed, "x"), "-a", "ids=" + ",".join(fresh_ids(5)))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"MongoDB at {closed} cannot be reached" in output
    assert "Traceback" not in output
    assert emulator.stats()["served"] == before


# `scrapy crawl product …` (Scrapy's own entry point), then the names of the unwanted modules it loaded
CRAWL_THEN_LIST_MODULES = """
import atexit, sys
UNWANTED = ("redis", "scrapy_redis", "aiohttp", "numpy", "matplotlib")
atexit.register(lambda: print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in UNWANTED)))
from scrapy.cmdline import execute
execute(["scrapy", "crawl", "product", *sys.argv[1:]])
"""


@pytest.mark.e2e  # runs scrapy crawl
def test_a_crawl_loads_only_what_it_uses(emulator, database):
    """Memory: a crawl that shares no state through Redis imports neither redis nor scrapy_redis
    (the product_redis spider, the cluster package), nor aiohttp (Scrapy's RemoteControl), nor
    numpy and matplotlib (the report's: 22 MB for numpy alone)."""
    uri, name, db = database
    ids = fresh_ids(3)
    done = subprocess.run([sys.executable, "-c", CRAWL_THEN_LIST_MODULES, "-a", "ids=" + ",".join(ids)],
                          cwd=ROOT, env=clean_env(**crawl_env(emulator.url, uri, name)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert db.products.count_documents({"_id": {"$in": ids}}) == 3
    assert "loaded: []" in done.stdout.splitlines(), done.stdout[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]  # e.g. spidermon's use of Spider.log()


# Hold 400 MiB, then run `scrapy crawl product …` as a child; print what wait4 says the child used
CRAWL_FROM_A_LARGE_PARENT = """
import os, subprocess, sys
held = bytearray(400 * 2**20)
held[::4096] = b"x" * len(range(0, len(held), 4096))  # touched: resident
child = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "product", *sys.argv[1:]])
_, status, usage = os.wait4(child.pid, 0)
print("exit", os.waitstatus_to_exitcode(status), "ru_maxrss_mib", usage.ru_maxrss // 1024)
"""


@pytest.mark.e2e  # runs scrapy crawl
def test_memory_stats_measure_the_crawl_not_its_parent(emulator, database, tmp_path):
    """``memusage/*`` is the crawl's own peak (VmHWM). ``ru_maxrss``, which Scrapy's extension and
    wait4 read, keeps the resident size of the process that started the crawl: here 400 MiB."""
    uri, name, _ = database
    stats_file = tmp_path / "stats.json"
    done = subprocess.run([sys.executable, "-c", CRAWL_FROM_A_LARGE_PARENT, "-a", "ids=" + ",".join(fresh_ids(3)),
                           "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "MEMUSAGE_CHECK_INTERVAL_SECONDS=0.5"],
                          cwd=ROOT, env=clean_env(**crawl_env(emulator.url, uri, name)), capture_output=True,
                          text=True, timeout=120)
    words = done.stdout.split()
    assert words[:2] == ["exit", "0"], done.stderr[-3000:]
    assert int(words[3]) >= 400  # what Scrapy's MemoryUsage would have reported
    stats = json.loads(stats_file.read_text())
    assert stats["ali1688/products"] == 3
    for key in ("memusage/startup", "memusage/max"):
        assert 30 * 2**20 < stats[key] < 300 * 2**20, (key, stats[key])


def test_spider_loader_imports_one_spider_and_still_lists_all():
    settings = Settings()
    settings.setmodule(project_settings)
    loader = get_spider_loader(settings)
    assert isinstance(loader, SpiderLoader)
    assert loader.load("product") is ProductSpider
    assert loader.list() == ["follow", "image", "messages", "product", "product_redis", "search", "shop"]
    assert loader.load("product_redis").name == "product_redis"
    for name in ("calls", "nope", "../product", "product.x", ""):
        with pytest.raises(KeyError):
            loader.load(name)


@pytest_twisted.ensureDeferred
async def test_http_cache_keeps_no_secret_and_hits_cost_no_calls(emulator, database, tmp_path):
    uri, name, _ = database
    ids = fresh_ids(10)
    cache = tmp_path / "httpcache"
    settings = crawl_settings(emulator.url, uri, name, HTTPCACHE_ENABLED=True, HTTPCACHE_DIR=str(cache))
    crawler = await run_crawl(settings, ids=",".join(ids))
    token = crawler.get_downloader_middleware(GatewayAuthMiddleware).tokens.token.access_token
    stored = b"".join(path.read_bytes() for path in cache.rglob("*") if path.is_file())
    assert stored and b"productID" in stored
    for secret in (token.encode(), b"_aop_signature", b"access_token", DEMO_APP_SECRET.encode()):
        assert secret not in stored
    before = emulator.stats()["requests"]
    again = await run_crawl(settings, ids=",".join(ids))
    assert emulator.stats()["requests"] - before <= 1  # at most the token grant, no API call
    assert again.stats.get_value("ali1688/products") == 10
    assert again.stats.get_value("ali1688/request/sent") is None
    assert again.stats.get_value("httpcache/hit") == 10


@pytest_twisted.ensureDeferred
async def test_many_401s_at_once_cause_one_refresh(emulator, database):
    uri, name, db = database
    ids = fresh_ids(40)
    emulator.reset()
    # a stale token given by hand: every call of the first wave meets a 401 at about the same time
    settings = crawl_settings(emulator.url, uri, name, CONCURRENT_REQUESTS=32,
                              ALI1688_ACCESS_TOKEN="stale-token-from-yesterday")
    crawler = await run_crawl(settings, ids=",".join(ids))
    stats = crawler.stats.get_stats()
    assert stats["ali1688/response/token"] >= 2
    assert stats["ali1688/retry/reason_count/token"] == stats["ali1688/response/token"]
    assert db.products.count_documents({}) == 40
    assert emulator.stats()["token_grants"] == stats["ali1688/token/refresh"] == 1


@pytest_twisted.ensureDeferred
async def test_unknown_error_codes_are_recorded_not_retried(emulator, database):
    uri, name, db = database
    ids = fresh_ids(3)
    emulator.script([{"kind": "isp", "code": "gw.SomethingNew", "status": 400, "times": 1}])
    await run_crawl(crawl_settings(emulator.url, uri, name, CONCURRENT_REQUESTS=1), ids=",".join(ids))
    (failure,) = list(db.failures.find())
    assert failure["reason"] == "unknown_error"
    assert failure["error_code"] == "gw.SomethingNew"
    assert failure["attempts"] == 1
    assert db.products.count_documents({}) == 2


@pytest.mark.e2e  # starts its own emulator
@pytest_twisted.ensureDeferred
async def test_quota_used_up_stops_and_keeps_what_was_fetched(database, caplog):
    caplog.set_level(logging.INFO)
    uri, name, db = database
    ids = fresh_ids(60)
    with gateway_emulator("--seed", str(SEED), "--usage-limit", "10") as service:
        crawler = await run_crawl(crawl_settings(service.url, uri, name), ids=",".join(ids))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "ali1688_fatal"
    assert stats["ali1688/fatal"] == "gw.NoUsageLeftError"
    assert stats["ali1688/products"] == 10
    assert db.products.count_documents({}) == 10  # nothing fetched is lost
    stops = [r for r in caplog.records if "stopping the crawl" in r.getMessage()]
    assert len(stops) == 1 and "quota is used up" in stops[0].getMessage()
    assert any(r.getMessage().startswith("summary: fetched 10") for r in caplog.records)
