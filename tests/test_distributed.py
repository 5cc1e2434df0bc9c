"""Many workers over real Redis: one queue (leased, nothing lost), one token, one quota."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_twisted
import redis
from cryptography.fernet import Fernet
from scrapy.utils.defer import deferred_from_coro

from ali1688spider.aop import Token, TokenCipher, TokenError
from ali1688spider.cluster.leases import LeaseQueue
from ali1688spider.cluster.quota import RedisQuota
from ali1688spider.cluster.tokens import RedisTokenStore
from ali1688spider.demo.services import gateway_emulator, redis_server
from ali1688spider.gateway.quota import slot_after, whole
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

from .crawling import CATALOGUE, ROOT, clean_env

pytestmark = pytest.mark.e2e  # emulators, redis-servers and workers started here
QUEUE = "product_redis:start_urls"


def worker_env(gateway: str, mongo_uri: str, database: str, redis_url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        ALI1688_GATEWAY_URL=gateway, ALI1688_APP_KEY=DEMO_APP_KEY, ALI1688_APP_SECRET=DEMO_APP_SECRET,
        ALI1688_REFRESH_TOKEN=DEMO_REFRESH_TOKEN, MONGO_URI=mongo_uri, MONGO_DATABASE=database,
        REDIS_URL=redis_url, MAX_IDLE_TIME_BEFORE_CLOSE="2", ALI1688_QUEUE_POLL_SECONDS="0.2",
        MONGO_FLUSH_SECONDS="0.5", **{"ALI1688_QPS": "0", **extra},
    )


class Workers:
    def __init__(self, env: dict[str, str], folder: Path, count: int, *args: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.logs = [folder / f"worker-{n}.log" for n in range(count)]
        self.processes = []
        for log in self.logs:
            with log.open("w") as handle:  # the child keeps its own copy of the descriptor
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "scrapy", "crawl", "product_redis", *args], cwd=ROOT, env=env,
                    stdout=handle, stderr=subprocess.STDOUT))

    def wait(self, timeout: float = 120) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def output(self) -> str:
        return "\n".join(log.read_text() for log in self.logs)


def enqueue(env: dict[str, str], entries: list[str], folder: Path) -> str:
    path = folder / "ids.txt"
    path.write_text("\n".join(entries) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "scrapy", "enqueue", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def accounted(db, keys: list[str]) -> None:
    products = [doc["_id"] for doc in db.products.find({}, {"_id": 1})]
    failures = [doc["_id"] for doc in db.failures.find({}, {"_id": 1})]
    assert len(products) == len(set(products)) and not set(products) & set(failures)
    assert set(products) | set(failures) == set(keys)


def test_three_workers_share_queue_token_and_quota(mongo, redis_url, tmp_path):
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    # Q = 50: three workers, the emulator, MongoDB and Redis share 2 cores; at Q = 100 on a slow
    # machine, starved processes put a few calls into the next second (seen: 106 and 134 of 100)
    ids = [str(i) for i in CATALOGUE.offer_ids(500, start=610_000_000_000)]
    entries = [*ids, "not-an-id", '{"id": "626644646828x"}', json.dumps({"id": ids[0], "api": "fenxiao"})]
    with gateway_emulator("--qps", "50", "--token-ttl", "4") as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_QPS="50")
        assert "pushed 503 entries" in enqueue(env, entries, tmp_path)
        started = time.monotonic()
        workers = Workers(env, tmp_path, 3)
        codes = workers.wait()
        elapsed = time.monotonic() - started
        seen = gateway.stats()
    output = workers.output()
    assert codes == [0, 0, 0], output[-3000:]
    db = client[database]
    accounted(db, [*ids, "not-an-id", '{"id": "626644646828x"}'])
    assert seen["max_per_second"] <= 50
    assert seen["signature_failures"] == 0
    # one grant per expiry across the workers: ~elapsed / (4 s - margin), not 3 per expiry
    assert 2 <= seen["token_grants"] <= elapsed / 3.2 + 2
    assert sum(1 for line in output.splitlines() if "access token refreshed" in line) == seen["token_grants"]
    assert all(line.count("summary:") <= 1 for line in output.splitlines())
    r = redis.Redis.from_url(redis_url)
    assert r.llen(QUEUE) == 0 and r.zcard(QUEUE + ":leased") == 0
    # the token in Redis is the one the workers used, and never in the logs
    stored = RedisTokenStore(r, DEMO_APP_KEY).load()
    assert stored is not None and stored.access_token not in output
    assert DEMO_APP_SECRET not in output and DEMO_REFRESH_TOKEN not in output


def test_a_killed_worker_loses_nothing(mongo, redis_url, tmp_path):
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    db = client[database]
    ids = [str(i) for i in CATALOGUE.offer_ids(600, start=620_000_000_000)]
    with gateway_emulator("--qps", "60") as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_QPS="60", ALI1688_LEASE_SECONDS="3")
        enqueue(env, ids, tmp_path)
        doomed = Workers(env, tmp_path / "doomed", 1)
        wait_until(lambda: db.products.count_documents({}) >= 60)  # it is working: it holds leases
        others = Workers(env, tmp_path, 2)
        time.sleep(1)
        doomed.processes[0].send_signal(signal.SIGKILL)
        assert doomed.wait() == [-signal.SIGKILL]
        codes = others.wait()
    assert codes == [0, 0], others.output()[-3000:]
    accounted(db, ids)
    assert "took back" in others.output()


def test_an_entry_that_keeps_killing_workers_is_set_aside(mongo, redis_url, tmp_path):
    """An entry already taken back 3 times (ALI1688_QUEUE_MAX_RECLAIMS) whose lease ran out
    again: the next worker sets it aside in QUEUE:dead and records it as a worker_lost failure,
    and fetches the rest of the queue as usual."""
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    ids = [str(i) for i in CATALOGUE.offer_ids(12, start=637_000_000_000)]
    poison, survivor = ids[0], ids[1]
    r = redis.Redis.from_url(redis_url)
    r.zadd(QUEUE + ":leased", {poison: 1, survivor: 1})  # leases that ran out long ago
    r.hset(QUEUE + ":reclaims", mapping={poison: 3, survivor: 1})
    r.sadd(QUEUE + ":alone", poison)  # its worker died holding it alone, for the fourth time
    with gateway_emulator() as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_QUEUE_MAX_RECLAIMS="3")
        enqueue(env, ids[2:], tmp_path)
        workers = Workers(env, tmp_path, 1)
        assert workers.wait() == [0], workers.output()[-3000:]
    db = client[database]
    accounted(db, ids)
    failure = db.failures.find_one({"_id": poison})
    assert failure["reason"] == "worker_lost" and QUEUE + ":dead" in failure["message"]
    assert db.products.count_documents({}) == len(ids) - 1
    assert r.lrange(QUEUE + ":dead", 0, -1) == [poison.encode()]
    assert r.llen(QUEUE) == 0 and r.zcard(QUEUE + ":leased") == 0 and r.hlen(QUEUE + ":reclaims") == 0
    assert "Ids accounted/none of the ids taken is missing... OK" in workers.output()


def test_a_worker_killed_while_setting_an_entry_aside_loses_nothing(mongo, redis_url, tmp_path):
    """Issue 12: an entry set aside is durably recorded before it leaves the lease. The worker
    that sets it aside is killed while its worker_lost failure is still buffered: the entry stays
    leased (not yet in QUEUE:dead), and the next worker records it and then sets it aside."""
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    db = client[database]
    poison = str(CATALOGUE.offer_ids(1, start=638_000_000_000)[0])
    r = redis.Redis.from_url(redis_url)
    r.zadd(QUEUE + ":leased", {poison: 1})  # a lease that ran out long ago, held alone
    r.hset(QUEUE + ":reclaims", poison, 3)  # by the fourth worker it killed
    r.sadd(QUEUE + ":alone", poison)
    with gateway_emulator() as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_QUEUE_MAX_RECLAIMS="3",
                         ALI1688_LEASE_SECONDS="2")
        slow_writer = {**env, "MONGO_FLUSH_SECONDS": "60", "MONGO_BATCH_SIZE": "1000"}
        doomed = Workers(slow_writer, tmp_path / "doomed", 1)
        wait_until(lambda: "worker_lost" in doomed.output())  # recorded, not yet stored
        time.sleep(0.5)
        doomed.processes[0].send_signal(signal.SIGKILL)
        assert doomed.wait() == [-signal.SIGKILL]
        assert db.failures.count_documents({}) == 0
        assert r.llen(QUEUE + ":dead") == 0 and r.zscore(QUEUE + ":leased", poison) is not None
        workers = Workers(env, tmp_path, 1)
        assert workers.wait() == [0], workers.output()[-3000:]
    assert db.failures.find_one({"_id": poison})["reason"] == "worker_lost"
    assert r.lrange(QUEUE + ":dead", 0, -1) == [poison.encode()]
    assert r.zcard(QUEUE + ":leased") == 0 and r.llen(QUEUE) == 0 and r.hlen(QUEUE + ":reclaims") == 0


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def test_redis_restarted_mid_crawl_loses_nothing(mongo, tmp_path):
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    ids = [str(i) for i in CATALOGUE.offer_ids(400, start=630_000_000_000)]
    folder = tmp_path / "redis"
    with gateway_emulator("--qps", "50") as gateway:
        with redis_server(folder, persist=True) as first:
            url = first.url
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            env = worker_env(gateway.url, uri, database, url, ALI1688_QPS="50", ALI1688_LEASE_SECONDS="5")
            enqueue(env, ids, tmp_path)
            workers = Workers(env, tmp_path, 2)
            db = client[database]
            wait_until(lambda: db.products.count_documents({}) >= 20)  # mid-crawl, however slow the machine
        time.sleep(2)  # Redis is away
        with redis_server(folder, persist=True, port=port):
            codes = workers.wait()
    output = workers.output()
    assert codes == [0, 0], output[-3000:]
    assert "cannot be reached" in output and "Redis is back" in output
    accounted(client[database], ids)


@pytest_twisted.ensureDeferred
async def test_lease_queue_and_quota_scripts(redis_url):
    async def scenario():
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(redis_url)
        queue = LeaseQueue(r, "q", lease_seconds=0.3)
        await r.rpush("q", b"a", b"b", b"\xff\xfe junk", b"c")
        taken = await queue.take(3)
        assert taken == [b"a", b"b", b"\xff\xfe junk"]
        assert await queue.pending() == (1, 3)
        assert await queue.ack([b"\xff\xfe junk"]) == 1  # raw bytes are the identity
        # given back by a worker that stops: to the tail, and counted towards the reclaim limit
        assert await queue.release([b"b"]) == 1
        assert await r.lrange("q", 0, -1) == [b"c", b"b"] and await r.hget("q:reclaims", "b") == b"1"
        sleep = __import__("asyncio").sleep
        await queue.renew([b"a"])
        await sleep(0.4)
        # "a" was not renewed in time: its worker died holding it in a batch, so it is a suspect,
        # not yet blamed; while a suspect waits, no batch is taken
        assert await queue.reclaim() == (1, [])
        assert await r.lrange("q:suspects", 0, -1) == [b"a"] and await r.hget("q:reclaims", "a") is None
        assert await queue.pending() == (3, 0) and await queue.take(5) == []
        # an entry whose workers keep dying while they hold it alone is blamed each time, and past
        # max_reclaims (2) it is leased to the reclaiming worker, to be recorded and set aside
        queue.max_reclaims = 2
        for blamed in (1, 2):
            assert await queue.take_alone() == b"a" and await queue.take_alone() is None
            await sleep(0.35)
            assert await queue.reclaim() == (1, [])
            assert await r.hget("q:reclaims", "a") == str(blamed).encode()
        assert await queue.take_alone() == b"a"
        await sleep(0.35)
        assert await queue.reclaim() == (0, [b"a"])  # leased to the caller until its failure is stored
        assert await r.zscore("q:leased", b"a") is not None and await r.llen("q:dead") == 0
        await sleep(0.35)  # its worker died before storing it: set aside again
        assert await queue.reclaim() == (0, [b"a"])
        assert await queue.set_aside([b"a"]) == 1
        assert await r.lrange("q:dead", 0, -1) == [b"a"] and await r.hget("q:reclaims", "a") is None
        assert await r.zcard("q:leased") == 0 and await r.scard("q:alone") == 0
        # healthy entries of a batch are never blamed for the entry that killed their worker
        assert await queue.take(5) == [b"c", b"b"]
        await sleep(0.35)
        assert await queue.reclaim() == (2, [])
        assert await r.hget("q:reclaims", "c") is None and await r.hget("q:reclaims", "b") == b"1"  # released once
        first = await queue.take_alone()
        assert await queue.ack([first]) == 1 and await r.scard("q:alone") == 0
        second = await queue.take_alone()
        assert {first, second} == {b"b", b"c"} and await queue.ack([second]) == 1
        assert await r.hget("q:reclaims", "b") is None  # an acked entry forgets how often it came back
        assert await queue.pending() == (0, 0)
        # the Redis booking follows the same slots as the local rule, on Redis's clock; a slot in
        # a later second than Redis's now is answered, not booked (the caller waits for that
        # second and asks again, as RedisQuota.acquire does)
        for qps in (7, 2.5, 0.5):
            quota = RedisQuota(r, f"app{qps}", qps)
            booked, kinds = None, []
            while kinds.count("slot") < math.floor(qps) + 2:  # more than one second holds
                kind, slot, now, _, rate = await quota._book()
                late = quota.slack if whole(qps) else 0.0
                assert rate == qps and slot == pytest.approx(slot_after(now - late, booked, qps, 0.8), abs=1e-5)
                assert (kind == "wait") == (math.floor(slot) > math.floor(now))
                if kind == "slot":
                    booked = slot
                else:
                    await sleep(math.floor(now) + 1.001 - now)
                kinds.append(kind)
            assert "wait" in kinds
        await r.aclose()

    await deferred_from_coro(scenario())


@pytest.mark.parametrize(("qps", "calls"), [(2.5, 12), (0.5, 6)])
@pytest_twisted.ensureDeferred
async def test_three_workers_share_a_quota_below_one_or_between_whole_numbers(redis_url, qps, calls):
    """Issue 12, case 4: three workers (their own clients) booking the same app's quota of 2.5 or
    0.5 calls/s: no window of W seconds sees more than ceil(qps * W) + 1 starts."""
    async def worker(starts: list[float]) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url)
        quota = RedisQuota(client, "shared", qps)
        for _ in range(calls // 3):
            await quota.acquire()
            starts.append(time.time())
        await client.aclose()

    async def scenario() -> list[float]:
        import asyncio

        starts: list[float] = []
        await asyncio.gather(*(worker(starts) for _ in range(3)))
        return sorted(starts)

    starts = await deferred_from_coro(scenario())
    assert len(starts) == calls
    for window in (1.0, 2.0, 4.0):
        for start in starts:
            inside = sum(1 for moment in starts if start <= moment < start + window)
            assert inside <= math.ceil(qps * window) + 1, (window, starts)
    assert (starts[-1] - starts[0]) == pytest.approx((calls - 1) / qps, abs=0.25)  # the quota is used


def test_token_store_in_redis_is_encrypted_with_a_key(redis_url):
    r = redis.Redis.from_url(redis_url)
    key = Fernet.generate_key()
    store = RedisTokenStore(r, "app", TokenCipher(key))
    token = Token("distinctive-access-token", 2_000_000_000.0, refresh_token="distinctive-refresh")
    store.save(token)
    raw = r.get("ali1688:token:app")
    assert b"distinctive" not in raw
    assert store.load() == token
    with store.lock():
        assert r.exists("ali1688:token:app:refresh")
    from ali1688spider.aop import TokenError

    with pytest.raises(TokenError, match="ALI1688_SECRET_KEY"):
        RedisTokenStore(r, "app").load()
    with pytest.raises(TokenError, match="cannot be decrypted"):
        RedisTokenStore(r, "app", TokenCipher(Fernet.generate_key())).load()


def test_fresh_entries_are_acked_without_a_call(mongo, redis_url, tmp_path):
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    old = [str(i) for i in CATALOGUE.offer_ids(20, start=635_000_000_000)]
    new = [str(i) for i in CATALOGUE.offer_ids(5, start=636_000_000_000)]
    with gateway_emulator() as gateway:
        env = worker_env(gateway.url, uri, database, redis_url, ALI1688_FRESH_FOR="1h")
        enqueue(env, old, tmp_path)
        assert Workers(env, tmp_path, 1).wait() == [0]
        served = gateway.stats()["served"]
        enqueue(env, old + new, tmp_path)
        workers = Workers(env, tmp_path, 1)
        assert workers.wait() == [0], workers.output()[-2000:]
        assert gateway.stats()["served"] - served == 5
    accounted(client[database], old + new)
    r = redis.Redis.from_url(redis_url)
    assert r.llen(QUEUE) == 0 and r.zcard(QUEUE + ":leased") == 0


def test_a_batch_size_below_one_is_refused(emulator, database, redis_url, tmp_path):
    """``-a redis_batch_size=0`` (scrapy-redis's spider attribute) would lease the whole queue to one
    worker (LRANGE 0 -1): the worker stops at once with one line, exit 2, the queue left as it was."""
    uri, name, _ = database
    queue = redis.Redis.from_url(redis_url)
    queue.rpush(QUEUE, "610784549587", "626644646828")
    env = worker_env(emulator.url, uri, name, redis_url)
    running = Workers(env, tmp_path, 1, "-a", "redis_batch_size=0")
    assert running.wait(timeout=60) == [2], running.output()[-3000:]
    assert "stopping the crawl: redis_batch_size must be ≥ 1, got 0" in running.output()
    assert queue.llen(QUEUE) == 2 and queue.zcard(QUEUE + ":leased") == 0


def test_a_malformed_token_in_redis_is_one_clear_error(redis_url):
    """Issue 12, small holes: a value under the token key that no worker wrote stops the crawl
    with one line (a permanent TokenError) instead of failing every call."""
    r = redis.Redis.from_url(redis_url)
    store = RedisTokenStore(r, "app")
    for junk in (b"not json", b"[1, 2]", b"\xff\xfe", b"{"):
        r.set("ali1688:token:app", junk)
        with pytest.raises(TokenError) as refused:
            store.load()
        assert refused.value.permanent and refused.value.code == "bad_store"
        assert "delete the key" in str(refused.value) and "Traceback" not in str(refused.value)
    r.close()


def test_queued_searches_on_two_workers(mongo, redis_url, tmp_path):
    """Searches queued beside offers: each run once (hits in listings, one searches document), the
    offers they found queued as product entries and stored; bad search entries are failures; the
    queue ends empty. Queued again after the products are stored, no offer is queued twice."""
    uri, client = mongo
    database = f"d_{uuid.uuid4().hex[:8]}"
    ids = [str(i) for i in CATALOGUE.offer_ids(20, start=640_000_000_000)]
    with gateway_emulator("--seed", "1688") as gateway:
        shop = gateway.get("/_sandbox/sellers?n=1")["sellers"][0]
        searches = [json.dumps({"search": "批发", "country": "en", "max_results": 60}),
                    json.dumps({"search": "批发", "country": "ja", "max_results": 30, "sort": "price:asc"}),
                    json.dumps({"shop": shop["open_id"], "country": "en", "page_size": 5})]
        bad = [json.dumps({"search": " ", "country": "en"}),
               json.dumps({"search": "杯", "shop": "BBB", "country": "en"})]
        env = worker_env(gateway.url, uri, database, redis_url)
        enqueue(env, [*searches, *ids, *bad], tmp_path)
        workers = Workers(env, tmp_path / "first", 2)
        codes = workers.wait()
        output = workers.output()
        assert codes == [0, 0], output[-3000:]
        assert output.count("monitors at the end of the crawl: all 8 passed") == 2, output[-3000:]
        db = client[database]
        runs = list(db.searches.find())
        assert sorted((run["query"]["kind"], run["finish_reason"], run["hits"]) for run in runs) == sorted([
            ("keyword", "max_results", 60), ("keyword", "max_results", 30),
            ("seller", "last_page", shop["offers"])])
        found = {doc["offer_id"] for doc in db.listings.find()}
        assert db.listings.count_documents({}) == 90 + shop["offers"]
        stored = {doc["_id"] for doc in db.products.find({}, {"_id": 1})}
        assert stored == found | set(ids)
        assert {doc["_id"] for doc in db.failures.find()} == set(bad)
        r = redis.Redis.from_url(redis_url)
        assert r.llen(QUEUE) == 0 and r.zcard(QUEUE + ":leased") == 0

        enqueue(env, searches[:1], tmp_path)  # the same search again: its offers are stored and unchanged
        again = Workers(env, tmp_path / "again", 2)
        assert again.wait() == [0, 0], again.output()[-3000:]
    assert db.searches.count_documents({}) == 4
    latest = db.searches.find_one(sort=[("started_at", -1)])
    assert (latest["unchanged"], latest["details"]) == (60, 0)
    assert r.llen(QUEUE) == 0 and r.zcard(QUEUE + ":leased") == 0
