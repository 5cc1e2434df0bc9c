"""The adaptive quota end to end: real crawls against the emulator with ALI1688_QPS unset (or a
ceiling), the learned rate in MongoDB, a quota dropped mid-crawl, and three workers on one rate."""

from __future__ import annotations

import threading
import time
import uuid

import pytest_twisted

from ali1688spider.demo.services import gateway_emulator
from ali1688spider.sandbox.config import DEMO_APP_KEY

from .crawling import crawl_settings, fresh_ids, run_crawl


def auto(emulator_url: str, uri: str, name: str, **extra: object) -> dict[str, object]:
    return crawl_settings(emulator_url, uri, name, ALI1688_QPS="auto", ALI1688_PROGRESS_INTERVAL=1, **extra)


def found(rate: float, quota: int) -> bool:
    """The rule found the quota: exactly, or one above when the cut's count included a call the
    gateway counted in the next second (a loaded machine); the next throttle corrects that."""
    return quota <= rate <= quota + 1


def throttled_share(seconds: list[list[int]], since: float = 0) -> float:
    admitted = sum(row[1] for row in seconds if row[0] >= since)
    throttled = sum(row[2] for row in seconds if row[0] >= since)
    return throttled / max(1, admitted + throttled)


@pytest_twisted.ensureDeferred
async def test_the_quota_is_found_remembered_and_the_next_run_starts_there(emulator_factory, database):
    uri, name, db = database
    emulator = emulator_factory(qps=8, latency_ms=20)
    crawler = await run_crawl(auto(emulator.url, uri, name), ids=",".join(fresh_ids(80)))
    stats = crawler.stats.get_stats()
    assert db.products.count_documents({}) == 80
    assert stats["ali1688/quota/mode"] == "auto" and stats["ali1688/quota/start_rate"] == 4
    assert found(stats["ali1688/quota/learned"], 8) and stats["ali1688/quota/found"] == 1
    seconds = emulator.quota_seconds()
    assert max(row[1] for row in seconds) <= 8 and 0 < throttled_share(seconds) <= 0.08
    remembered = db.quotas.find_one({"_id": DEMO_APP_KEY})
    assert remembered["rate"] == stats["ali1688/quota/learned"] and remembered["found"] is True
    run = db.runs.find_one({})
    assert run["quota"]["learned"] == remembered["rate"] and run["quota"]["cuts"] >= 1
    charted = run["quota"]["series"]
    assert sum(point[2] for point in charted) == stats["ali1688/request/sent"]
    assert sum(point[3] for point in charted) == stats.get("ali1688/response/throttle", 0) > 0

    # the next run (any process with the same database) starts at the learned rate: no search
    emulator.reset()
    crawler = await run_crawl(auto(emulator.url, uri, name), ids=",".join(fresh_ids(40)))
    assert crawler.stats.get_value("ali1688/quota/start_rate") == remembered["rate"]
    seconds = emulator.quota_seconds()
    assert max(row[1] + row[2] for row in seconds) <= 9  # at most one probe's extra call a second
    assert throttled_share(seconds) <= 0.03


@pytest_twisted.ensureDeferred
async def test_a_quota_dropped_mid_crawl_is_followed(emulator_factory, database):
    uri, name, db = database
    emulator = emulator_factory(qps=12, latency_ms=20)
    dropped_at: list[float] = []

    def drop() -> None:
        time.sleep(6)
        emulator.set_quota(6)
        dropped_at.append(time.time())

    dropper = threading.Thread(target=drop)
    dropper.start()
    crawler = await run_crawl(auto(emulator.url, uri, name), ids=",".join(fresh_ids(130)))
    dropper.join()
    assert db.products.count_documents({}) == 130
    assert found(crawler.stats.get_value("ali1688/quota/learned"), 6)
    seconds = emulator.quota_seconds()
    settled = [row for row in seconds if row[0] >= dropped_at[0] + 4]
    assert settled and max(row[1] + row[2] for row in settled) <= 7  # 6, and a probe's one more
    assert throttled_share(seconds, dropped_at[0] + 4) <= 0.05


@pytest_twisted.ensureDeferred
async def test_a_ceiling_is_never_exceeded_and_a_lower_quota_still_cuts(emulator_factory, database):
    uri, name, _ = database
    roomy = emulator_factory(qps=30)
    crawler = await run_crawl(crawl_settings(roomy.url, uri, name, ALI1688_QPS=6), ids=",".join(fresh_ids(30)))
    assert crawler.stats.get_value("ali1688/quota/mode") == "ceiling"
    assert crawler.stats.get_value("ali1688/quota/start_rate") == 6
    assert roomy.stats()["max_per_second"] <= 6 and roomy.stats()["throttled"] == 0
    tight = emulator_factory(qps=3)
    crawler = await run_crawl(crawl_settings(tight.url, uri, f"{name}_b", ALI1688_QPS=6),
                              ids=",".join(fresh_ids(30)))
    assert crawler.stats.get_value("ali1688/quota/rate") == 3
    assert tight.stats()["max_per_second"] <= 6
    assert crawler.stats.get_value("ali1688/products") == 30


@pytest_twisted.ensureDeferred
async def test_without_mongodb_the_quota_starts_from_the_start_rate(emulator_factory, database):
    """The learned rate is a bonus: an unreachable database does not stop the quota (the store
    then stops the crawl with its own line)."""
    _, name, _ = database
    emulator = emulator_factory(qps=20)
    settings = auto(emulator.url, "mongodb://127.0.0.1:9", name, MONGO_ENABLED=False, MONGO_TIMEOUT_MS=300)
    started = time.monotonic()
    crawler = await run_crawl(settings, ids=",".join(fresh_ids(10)))
    assert time.monotonic() - started < 10
    assert crawler.stats.get_value("ali1688/quota/start_rate") == 4
    assert crawler.stats.get_value("ali1688/request/sent") >= 10


def test_three_workers_share_one_rate(mongo, redis_url, tmp_path):
    """One rule for the app, not one per worker: three product_redis workers find the quota
    together (the state in Redis), and the gateway sees the app at the quota, not three times it."""
    import redis

    from ali1688spider.sandbox.catalogue import Catalogue

    from .test_distributed import Workers, enqueue, worker_env

    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    ids = [str(i) for i in Catalogue(1688).offer_ids(150, start=640_000_000_000)]
    with gateway_emulator("--qps", "12", "--latency-ms", "20") as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_QPS="auto")
        enqueue(env, ids, tmp_path)
        workers = Workers(env, tmp_path, 3)
        codes = workers.wait()
        seconds = gateway.quota_seconds()
    assert codes == [0, 0, 0], workers.output()[-3000:]
    db = client[database]
    assert db.products.count_documents({}) == 150
    assert max(row[1] for row in seconds) <= 12
    assert throttled_share(seconds) <= 0.08  # three rules of their own would each find 12: ~2/3 throttled
    state = redis.Redis.from_url(redis_url).hgetall(f"ali1688:quota:{DEMO_APP_KEY}")
    assert found(float(state[b"learned"]), 12) and float(state[b"found"]) == 1
    assert found(db.quotas.find_one({"_id": DEMO_APP_KEY})["rate"], 12)
    runs = list(db.runs.find({}))
    assert len(runs) == 3 and all(found(run["quota"]["learned"], 12) for run in runs)


@pytest_twisted.ensureDeferred
async def test_the_found_rate_never_spends_past_the_days_budget(emulator_factory, database, tmp_path):
    """However fast the rule may go, the gateway sees the day's remaining calls and not one more,
    throttled calls included; and callers waiting for a permit hold no part of the budget (they
    did: 32 waiting callers took 31 of 40 calls, and the crawl stopped after 9)."""
    uri, name, db = database
    emulator = emulator_factory(qps=8, latency_ms=20)
    settings = auto(emulator.url, uri, name, ALI1688_CALLS_PER_DAY=40,
                    ALI1688_USAGE_FILE=str(tmp_path / "usage.json"))
    crawler = await run_crawl(settings, ids=",".join(fresh_ids(100)))
    seen = emulator.stats()
    assert crawler.stats.get_value("finish_reason") == "calls_per_day"
    assert seen["arrivals"] == 40 == crawler.stats.get_value("ali1688/request/sent")
    assert seen["throttled"] >= 1  # the rule found the quota on the way
    assert db.products.count_documents({}) == 40 - seen["throttled"]
    assert found(db.quotas.find_one({"_id": DEMO_APP_KEY})["rate"], 8)
