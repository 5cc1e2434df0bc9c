"""Issue 12: ALI1688_CALLS_PER_DAY, a daily call budget counted per calendar day in
ALI1688_QUOTA_TZ and shared by every crawl of the app key (a local file, or Redis). When it is
spent the crawl stops cleanly with one line, exit 0, its queue leases given back, and the next
run continues."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
import redis
from scrapy.utils.defer import deferred_from_coro

from ali1688spider.cluster.budget import RedisLedger
from ali1688spider.gateway.budget import DailyBudget, FileLedger, day_of

from .crawling import CATALOGUE, crawl_env, fresh_ids, scrapy_crawl
from .test_distributed import QUEUE, Workers, enqueue, worker_env

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_days_are_counted_in_china_time():
    before = datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC).timestamp()  # 23:59:59 in Shanghai
    assert day_of(before, SHANGHAI) == "2026-11-30"
    assert day_of(before + 1, SHANGHAI) == "2026-12-01"
    assert day_of(before + 1, ZoneInfo("UTC")) == "2026-11-30"


@pytest_twisted.ensureDeferred
async def test_a_file_ledger_never_lets_a_day_go_over(tmp_path):
    async def scenario():
        path = tmp_path / "usage.json"
        now = [datetime(2026, 11, 30, 3, 0, tzinfo=UTC).timestamp()]
        one = DailyBudget(FileLedger(path), 7, SHANGHAI, clock=lambda: now[0])
        two = DailyBudget(FileLedger(path), 7, SHANGHAI, clock=lambda: now[0])
        taken = [await one.take(), await two.take(), await one.take()]
        assert taken == [True, True, True]
        assert FileLedger(path).used("2026-11-30") == 3  # blocks of one below 100 calls a day
        while await two.take():
            pass
        assert not await one.take() and FileLedger(path).used("2026-11-30") == 7
        now[0] += 86400  # the next day in Shanghai: a new budget
        assert await one.take() and FileLedger(path).used("2026-12-01") == 1
        big = DailyBudget(FileLedger(path), 10_000, SHANGHAI, clock=lambda: now[0])
        assert await big.take() and FileLedger(path).used("2026-12-01") == 1 + 50  # a block reserved
        await big.close()  # the unused part given back
        assert FileLedger(path).used("2026-12-01") == 2
        path.write_bytes(b"\xff not json")  # a damaged file: counted again from zero, never a crash
        assert await big.take() and json.loads(path.read_text()) == {"2026-12-01": 50}

    await deferred_from_coro(scenario())


@pytest.mark.e2e  # a redis-server
@pytest_twisted.ensureDeferred
async def test_workers_share_one_budget_in_redis(redis_url):
    async def scenario():
        import redis.asyncio as aioredis

        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        budgets = [DailyBudget(RedisLedger(client, "app"), 500, SHANGHAI) for client in clients]

        async def spend(budget: DailyBudget) -> int:
            sent = 0
            while await budget.take():
                sent += 1
                await asyncio.sleep(0)
            return sent

        spent = await asyncio.gather(*(spend(budget) for budget in budgets))
        assert sum(spent) == 500 and all(spent)
        key = RedisLedger(clients[0], "app").key(budgets[0].day)
        assert int(await clients[0].get(key)) == 500 and 0 < await clients[0].ttl(key) <= 259200
        for client in clients:
            await client.aclose()

    await deferred_from_coro(scenario())


@pytest.mark.e2e  # scrapy crawl subprocesses
def test_a_spent_budget_stops_the_crawl_cleanly_and_the_next_run_continues(emulator, database, tmp_path):
    uri, name, db = database
    ids = fresh_ids(60)
    usage = tmp_path / "usage.json"
    env = crawl_env(emulator.url, uri, name, ALI1688_CALLS_PER_DAY="25", ALI1688_USAGE_FILE=str(usage),
                    ALI1688_FRESH_FOR="1h", CONCURRENT_REQUESTS="4")
    served = emulator.stats()["served"]
    done = scrapy_crawl(env, "-a", f"ids={','.join(ids)}")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "budget of 25 calls (ALI1688_CALLS_PER_DAY) is spent" in line]
    assert len(lines) == 1 and "Asia/Shanghai" in lines[0] and "the next run continues" in lines[0]
    assert emulator.stats()["served"] - served == 25
    assert db.products.count_documents({}) == 25 and db.failures.count_documents({}) == 0
    (used,) = json.loads(usage.read_text()).values()
    assert used == 25
    assert "left for the next run (stopped: calls_per_day)" in done.stderr
    run = db.runs.find_one()
    assert run["finish_reason"] == "calls_per_day"

    again = scrapy_crawl(env, "-a", f"ids={','.join(ids)}")  # the same day: nothing left
    assert again.returncode == 0 and emulator.stats()["served"] - served == 25

    more = {**env, "ALI1688_CALLS_PER_DAY": "100"}  # a larger budget: the fresh 25 are skipped
    last = scrapy_crawl(more, "-a", f"ids={','.join(ids)}")
    assert last.returncode == 0, last.stderr[-3000:]
    assert emulator.stats()["served"] - served == 60
    assert db.products.count_documents({}) == 60
    (used,) = json.loads(usage.read_text()).values()
    assert used == 60


@pytest.mark.e2e  # workers, a redis-server
def test_a_worker_out_of_budget_gives_its_leases_back(emulator, mongo, redis_url, tmp_path):
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    ids = [str(i) for i in CATALOGUE.offer_ids(50, start=639_000_000_000)]
    env = worker_env(emulator.url, uri, database, redis_url, ALI1688_CALLS_PER_DAY="20", CONCURRENT_REQUESTS="4")
    enqueue(env, ids, tmp_path)
    workers = Workers(env, tmp_path, 1)
    assert workers.wait() == [0], workers.output()[-3000:]
    db = client[database]
    r = redis.Redis.from_url(redis_url)
    stored = db.products.count_documents({})
    assert stored == 20 and db.failures.count_documents({}) == 0
    assert r.zcard(QUEUE + ":leased") == 0 and r.llen(QUEUE) == 50 - stored  # the rest is queued again
    (key,) = r.keys("ali1688:calls:*")
    assert int(r.get(key)) == 20
