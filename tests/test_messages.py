"""Change messages: reading them, the listener (a real process with real MongoDB and Redis), and
workers refreshing what a message queued."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_twisted
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.utils.defer import deferred_from_coro

from ali1688spider.aop.messages import (
    MalformedMessage,
    offer_ids,
    push_signature,
    push_signature_matches,
    read_message,
    what_it_means,
)
from ali1688spider.cluster.leases import LeaseQueue
from ali1688spider.demo.services import message_listener, redis_server
from ali1688spider.sandbox.config import DEMO_APP_SECRET

from .crawling import CATALOGUE, ROOT, clean_env, fresh_ids
from .test_distributed import QUEUE, Workers, worker_env

VECTOR = ('{"data":{"memberId":"b2b-2219782677861","productIds":"966545615266,576254559101","action":"modify",'
          '"msgSendTime":"2025-09-05 10:43:28"},"gmtBorn":1757040208123,"msgId":92705609221,'
          '"type":"PRODUCT_RELATION_VIEW_PRODUCT_CHANGE","userInfo":"b2b-221741213935443542"}')
URGENT = f"{QUEUE}:urgent"
_msg_ids = iter(range(70_000_000_000, 80_000_000_000))


def envelope(topic: str, data: dict[str, Any], msg_id: int | str | None = None, born: datetime | None = None) -> str:
    born = born or datetime.now(UTC)
    return json.dumps({"msgId": msg_id if msg_id is not None else next(_msg_ids), "type": topic,
                       "userInfo": "b2b-2379510033", "gmtBorn": int(born.timestamp() * 1000), "data": data},
                      ensure_ascii=False, separators=(",", ":"))


def change(*ids: str, action: str = "modify", **extra: Any) -> str:
    return envelope("PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", {"memberId": "b2b-1", "productIds": ",".join(ids),
                                                            "action": action, "msgSendTime": "2026-11-30 10:00:00"},
                    **extra)


# -- reading messages ---------------------------------------------------------------------------

def test_push_signature_matches_the_published_rule():
    assert push_signature({"message": VECTOR}, "UNIT-TEST-SECRET") == "D4CC15549A8B8E95EC1A283910815DE374318FC3"
    signed = {"message": VECTOR, "_aop_signature": "d4cc15549a8b8e95ec1a283910815de374318fc3"}
    assert push_signature_matches(signed, "UNIT-TEST-SECRET")  # hex case does not matter
    assert not push_signature_matches(signed, "OTHER-SECRET")
    assert not push_signature_matches({"message": VECTOR + " "} | {"_aop_signature": signed["_aop_signature"]},
                                      "UNIT-TEST-SECRET")
    assert not push_signature_matches({"message": VECTOR}, "UNIT-TEST-SECRET")


def test_a_message_whatever_the_spelling_of_its_numbers():
    plain = read_message(VECTOR)
    assert (plain.msg_id, plain.topic, plain.user_info) == ("92705609221", "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE",
                                                            "b2b-221741213935443542")
    assert plain.born == datetime(2025, 9, 5, 2, 43, 28, 123000, tzinfo=UTC)
    as_text = read_message(VECTOR.replace('"msgId":92705609221', '"msgId":"92705609221"')
                           .replace("1757040208123", '"1757040208123"'))
    assert (as_text.msg_id, as_text.born) == (plain.msg_id, plain.born)
    replayed = read_message({"msgId": 5, "topicGroup": "PRODUCT", "topicName": "PRODUCT_INVENTORY_CHANGE",
                             "data": json.dumps({"OfferInventoryChangeList": []})})
    assert replayed.topic == "PRODUCT_PRODUCT_INVENTORY_CHANGE" and replayed.data == {"OfferInventoryChangeList": []}
    for broken, why in (("", "not JSON"), ("[1]", "not a JSON object"), ('{"type":"X"}', "no msgId"),
                        ('{"msgId":-3,"type":"X"}', "no msgId"), ('{"msgId":true,"type":"X"}', "no msgId"),
                        ('{"msgId":1}', "no type"), ("{" * 5000, "not JSON")):
        with pytest.raises(MalformedMessage, match=why):
            read_message(broken)


def test_what_each_topic_asks_for():
    meaning = what_it_means(read_message(VECTOR))
    assert meaning.reason == "message:PRODUCT_RELATION_VIEW_PRODUCT_CHANGE:modify"
    assert meaning.refresh == ["966545615266", "576254559101"] and not meaning.gone
    gone = what_it_means(read_message(change("966545615266", action="member_expired")))
    assert gone.gone == ["966545615266"] and not gone.refresh
    deleted = what_it_means(read_message(envelope("PRODUCT_RELATION_VIEW_PRODUCT_DELETE", {
        "productIds": "570872343603", "status": "RELATION_VIEW_PRODUCT_DELETE"})))
    assert deleted.gone == ["570872343603"] and deleted.reason == "message:PRODUCT_RELATION_VIEW_PRODUCT_DELETE"
    repost = what_it_means(read_message(envelope("PRODUCT_RELATION_VIEW_PRODUCT_REPOST",
                                                 {"productIds": "570872343603"})))
    assert repost.refresh == ["570872343603"]
    price = what_it_means(read_message(envelope("FENXIAO_PRICE_CHANGE", {"productId": "738629661216"})))
    assert price.refresh == ["738629661216"]
    stock = what_it_means(read_message(envelope("PRODUCT_PRODUCT_INVENTORY_CHANGE", {"OfferInventoryChangeList": [
        {"offerId": 966545615266, "offerOnSale": "5230", "skuId": 5123456789012, "skuOnSale": 310, "quantity": -2,
         "bizTime": "1757040999000"},
        {"offerId": "966545615266", "offerOnSale": 5228, "skuId": "5123456789013", "skuOnSale": "0", "quantity": -2},
        {"offerId": "not-an-id"}, "junk"]})))
    assert stock.refresh == ["966545615266"] and len(stock.stock) == 2 and len(stock.bad_ids) == 2
    first = stock.stock[0]
    assert (first.offer_stock, first.sku_id, first.sku_stock) == (5230, "5123456789012", 310)
    assert first.at == datetime(2025, 9, 5, 2, 56, 39, tzinfo=UTC) and stock.stock[1].at is None
    other = what_it_means(read_message(envelope("ORDER_BUYER_VIEW_ORDER_PAY", {"orderId": 1})))
    assert not other.handled and other.reason == "message:ORDER_BUYER_VIEW_ORDER_PAY"
    ids, bad = offer_ids("966545615266, 966545615266,,12,https://detail.1688.com/offer/1.html")
    assert ids == ["966545615266"] and bad == ["12", "https://detail.1688.com/offer/1.html"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)))
def test_any_message_text_is_read_or_refused_in_one_way(value):
    if not isinstance(value, (str, bytes)):
        value = json.dumps({"msgId": 1, "type": "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", "data": value})
    try:
        message = read_message(value)
    except MalformedMessage:
        return
    meaning = what_it_means(message)
    assert all(offer_id.isdigit() for offer_id in meaning.refresh + meaning.gone)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["productIds", "productId", "action", "OfferInventoryChangeList", "offerId"]),
                       st.one_of(st.text(), st.integers(), st.lists(st.one_of(st.text(), st.integers(),
                                 st.dictionaries(st.text(max_size=12), st.one_of(st.text(), st.integers())))))),
       st.sampled_from(["PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", "PRODUCT_PRODUCT_INVENTORY_CHANGE",
                        "FENXIAO_PRICE_CHANGE", "PRODUCT_RELATION_VIEW_PRODUCT_DELETE",
                        "PRODUCT_PFT_OFFER_PRICE_MODIFY"]))
def test_any_data_of_a_known_topic_asks_only_for_offer_ids(data, topic):
    meaning = what_it_means(read_message(json.dumps({"msgId": 1, "type": topic, "data": data})))
    assert all(offer_id.isdigit() and 9 <= len(offer_id) <= 15 for offer_id in meaning.refresh + meaning.gone)
    assert all(change.offer_id in meaning.refresh for change in meaning.stock)


# -- the listener -------------------------------------------------------------------------------

def post(url: str, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # loopback
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def push(url: str, message: str, secret: str = DEMO_APP_SECRET, signature: str | None = None) -> tuple[int, str]:
    fields = {"message": message, "_aop_signature": signature if signature is not None else
              push_signature({"message": message}, secret)}
    return post(url, urllib.parse.urlencode(fields).encode())


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "health", timeout=10) as reply:  # loopback
        return dict(json.loads(reply.read()))


def listener_env(mongo_uri: str, database: str, redis_url: str, **extra: str) -> dict[str, str]:
    return clean_env(ALI1688_APP_SECRET=DEMO_APP_SECRET, MONGO_URI=mongo_uri, MONGO_DATABASE=database,
                     MONGO_TIMEOUT_MS="1500", REDIS_URL=redis_url, **extra)


def urgent(client: redis.Redis) -> list[dict[str, Any]]:
    ids = [item.decode() for item in client.lrange(URGENT, 0, -1)]
    return [json.loads(client.hget(f"{URGENT}:entries", offer_id)) for offer_id in ids]


def test_listener_stores_and_queues_only_signed_well_formed_messages(database, redis_url, tmp_path):
    uri, name, db = database
    client = redis.Redis.from_url(redis_url)
    log = tmp_path / "listener.log"
    ids = fresh_ids(3)
    with message_listener(listener_env(uri, name, redis_url), log_path=log) as listener:
        url = listener.url
        message = change(ids[0], ids[1], msg_id=91)
        assert push(url, message) == (200, "success")
        stored = db.messages.find_one({"_id": "91"})
        assert stored["topic"] == "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE" and stored["deliveries"] == 1
        assert stored["queued"] == ids[:2] and stored["data"]["productIds"] == f"{ids[0]},{ids[1]}"
        assert stored["via"] == "push" and stored["handled_at"] >= stored["received_at"]
        entries = urgent(client)
        assert [entry["id"] for entry in entries] == ids[:2]
        assert entries[0]["reason"] == "message:PRODUCT_RELATION_VIEW_PRODUCT_CHANGE:modify"
        assert entries[0]["message"] == "91"

        # delivered twice: stored once, nothing queued again
        assert push(url, message) == (200, "success")
        assert db.messages.find_one({"_id": "91"})["deliveries"] == 2 and len(urgent(client)) == 2
        # another message about a waiting offer: stored, not queued a second time
        assert push(url, change(ids[1], ids[2], msg_id="92")) == (200, "success")
        assert [entry["id"] for entry in urgent(client)] == ids
        assert db.messages.find_one({"_id": "92"})["waiting"] == [ids[1]]

        # refused: nothing stored, nothing queued
        assert push(url, change(ids[2], msg_id=93), secret="not-the-secret")[0] == 401
        assert push(url, change(ids[2], msg_id=94), signature="")[0] == 401
        assert post(url, urllib.parse.urlencode({"message": change(ids[2], msg_id=95)}).encode())[0] == 401
        assert push(url, "not json")[0] == 400
        assert push(url, json.dumps({"type": "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE"}))[0] == 400
        assert post(url, b"\xff\xfe\x00garbage")[0] == 400
        assert post(url, b"message=" + b"x" * 300_000)[0] == 413
        assert post(url, b'{"json": "is no form"}', "application/json")[0] == 400
        # a topic that asks for nothing: stored and counted, not queued
        assert push(url, envelope("ORDER_BUYER_VIEW_ORDER_PAY", {"orderId": 1}, msg_id=96)) == (200, "success")
        assert db.messages.count_documents({}) == 3 and len(urgent(client)) == 3

        state = health(url)
        assert state["status"] == "ok" and state["mongo"] and state["redis"]
        counts = state["counts"]
        assert (counts["accepted"], counts["duplicates"], counts["unsigned"], counts["bad_signature"]) == (3, 1, 2, 1)
        assert counts["malformed"] == 4 and counts["too_large"] == 1 and counts["queued"] == 3
        assert state["topics"] == {"PRODUCT_RELATION_VIEW_PRODUCT_CHANGE": 3, "ORDER_BUYER_VIEW_ORDER_PAY": 1}
        assert DEMO_APP_SECRET not in json.dumps(state)
        assert listener.stop() == 0  # SIGTERM: a clean stop
    text = log.read_text()
    assert DEMO_APP_SECRET not in text
    assert text.count("message 91 ") == 2 and "refused a push (401)" in text


def test_an_answered_message_survives_a_killed_listener(database, redis_url, tmp_path):
    uri, name, db = database
    offer = fresh_ids(1)[0]
    with message_listener(listener_env(uri, name, redis_url), log_path=tmp_path / "listener.log") as listener:
        assert push(listener.url, change(offer, msg_id=101)) == (200, "success")
        listener.process.send_signal(signal.SIGKILL)  # right after the answer
        listener.process.wait(10)
    assert db.messages.find_one({"_id": "101"})["queued"] == [offer]
    assert [entry["id"] for entry in urgent(redis.Redis.from_url(redis_url))] == [offer]


def test_a_message_not_queued_is_not_answered_and_comes_again(database, redis_url, tmp_path):
    uri, name, db = database
    offer = fresh_ids(1)[0]
    message = change(offer, msg_id=111)
    client = redis.Redis.from_url(redis_url)
    # a Redis that refuses writes: the message is stored, not handled, and 1688 is told to retry
    client.config_set("min-replicas-to-write", 1)
    with message_listener(listener_env(uri, name, redis_url), log_path=tmp_path / "listener.log") as listener:
        assert push(listener.url, message)[0] == 503
        stored = db.messages.find_one({"_id": "111"})
        assert stored is not None and "handled_at" not in stored
        assert health(listener.url)["counts"]["failed"] == 1
        client.config_set("min-replicas-to-write", 0)
        assert push(listener.url, message) == (200, "success")  # 1688 delivers it again
        assert db.messages.find_one({"_id": "111"})["queued"] == [offer]
        assert push(listener.url, message) == (200, "success")
    assert [entry["id"] for entry in urgent(client)] == [offer]
    assert "NOT stored" in (tmp_path / "listener.log").read_text()


@pytest.mark.e2e
def test_listener_refuses_to_start_without_what_it_needs(tmp_path):
    base = [sys.executable, "-m", "ali1688spider", "listen", "--port", "0"]
    done = subprocess.run(base, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "ALI1688_APP_SECRET is not set" in done.stderr
    assert "Traceback" not in done.stderr
    env = clean_env(ALI1688_APP_SECRET="s3cr3t-value", MONGO_URI="mongodb://127.0.0.1:1", MONGO_TIMEOUT_MS="300")
    done = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot be reached" in done.stderr and "Traceback" not in done.stderr
    assert "s3cr3t-value" not in done.stderr + done.stdout


@pytest.mark.e2e
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=600) | st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_body_gets_one_answer_and_stores_nothing_unsigned(body, fuzz_listener):
    url, db = fuzz_listener
    before = db.messages.count_documents({})
    status, _ = post(url, body)
    assert status in (400, 401)
    assert db.messages.count_documents({}) == before


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=12)


@pytest.mark.e2e
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(msg_id=st.integers(min_value=0, max_value=10**18) | st.text(max_size=20), topic=st.text(max_size=40),
       data=_json_values)
def test_any_signed_message_is_stored_or_refused_never_an_error(msg_id, topic, data, fuzz_listener):
    url, db = fuzz_listener
    message = json.dumps({"msgId": msg_id, "type": topic, "data": data}, ensure_ascii=False)
    status, _ = push(url, message)
    assert status in (200, 400)
    if status == 200:
        assert db.messages.find_one({"_id": str(int(str(msg_id).strip()))}) is not None


@pytest.fixture(scope="module")
def fuzz_listener(mongo, tmp_path_factory):
    uri, client = mongo
    with redis_server() as server, message_listener(listener_env(uri, "fuzz_listener", server.url),
                                                    log_path=tmp_path_factory.mktemp("fuzz") / "l.log") as listener:
        yield listener.url, client["fuzz_listener"]
    client.drop_database("fuzz_listener")


# -- what a message changes, and the refresh ----------------------------------------------------

def _crawl(env: dict[str, str], ids: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids={','.join(ids)}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_workers_refresh_what_messages_queued_first_and_once(emulator_factory, database, redis_url, tmp_path):
    uri, name, db = database
    emulator = emulator_factory()
    env = worker_env(emulator.url, uri, name, redis_url)
    ids = CATALOGUE.offer_ids(400, start=930_000_000_000)
    changed = [str(i) for i in CATALOGUE.drifted_ids(ids, 1)][:2]
    bulk = [str(i) for i in ids if str(i) not in changed][:30]
    _crawl(env, changed)
    stored = {doc["_id"]: doc for doc in db.products.find({"_id": {"$in": changed}})}
    emulator.post("/_sandbox/epoch", {"epoch": 1})
    client = redis.Redis.from_url(redis_url)
    client.rpush(QUEUE, *bulk)
    with message_listener(listener_env(uri, name, redis_url), log_path=tmp_path / "listener.log") as listener:
        for number, offer in enumerate(changed):  # two messages each (a change and a price change)
            assert push(listener.url, change(offer, msg_id=200 + number)) == (200, "success")
            price = envelope("FENXIAO_PRICE_CHANGE", {"productId": offer, "memberId": "b2b-1"}, msg_id=300 + number)
            assert push(listener.url, price) == (200, "success")
    emulator.reset()
    workers = Workers(env, tmp_path / "workers", 1, "-s", "CONCURRENT_REQUESTS=1")
    assert workers.wait() == [0], workers.output()[-3000:]
    assert emulator.stats()["by_api"]["alibaba.product.get"] == len(bulk) + len(changed)  # one fetch each
    products = {doc["_id"]: doc for doc in db.products.find()}
    first_bulk = min(products[offer]["fetched_at"] for offer in bulk)
    for number, offer in enumerate(changed):
        product = products[offer]
        assert product["fetched_at"] < first_bulk  # queued by a message: before the bulk entries
        assert product["changed_by"]["message"] == str(200 + number)
        assert product["changed_by"]["reason"] == "message:PRODUCT_RELATION_VIEW_PRODUCT_CHANGE:modify"
        assert product["content_hash"] != stored[offer]["content_hash"]
        history = db.product_history.find_one({"product_id": offer})
        assert history["changed_by"]["message"] == str(200 + number)
    assert all("changed_by" not in products[offer] for offer in bulk)
    assert client.llen(URGENT) == 0 and client.hlen(f"{URGENT}:entries") == 0

    # a message born well before its offer's last fetch (late, or delivered again) costs no call;
    # one born after it is fetched
    late, fresh = changed
    fetched = products[late]["fetched_at"]
    with message_listener(listener_env(uri, name, redis_url), log_path=tmp_path / "listener2.log") as listener:
        assert push(listener.url, change(late, msg_id=500, born=fetched - timedelta(seconds=30))) == (200, "success")
        assert push(listener.url, change(fresh, msg_id=501)) == (200, "success")
    emulator.reset()
    stats_file = tmp_path / "stats.json"
    workers = Workers(env | {"ALI1688_STATS_FILE": str(stats_file)}, tmp_path / "workers2", 1)
    assert workers.wait() == [0], workers.output()[-3000:]
    assert emulator.stats()["by_api"]["alibaba.product.get"] == 1
    stats = json.loads(stats_file.read_text())
    assert stats["ali1688/messages/seen"] == 1 and stats["ali1688/messages/refreshes"] == 1
    assert db.products.find_one({"_id": fresh})["changed_by"]["message"] == "501"
    assert db.products.find_one({"_id": late})["changed_by"]["message"] == "200"
    assert client.llen(URGENT) == 0 and client.zcard(f"{QUEUE}:leased") == 0
    assert "none missing" in workers.output()


def test_messages_change_stored_products_at_once(emulator, database, redis_url, tmp_path):
    uri, name, db = database
    env = worker_env(emulator.url, uri, name, redis_url)
    with_skus = [str(i) for i in CATALOGUE.offer_ids(200, start=931_000_000_000)
                 if len(CATALOGUE.offer(i).skus) >= 2][:1]
    gone, late, unknown = fresh_ids(3)
    _crawl(env, [*with_skus, gone, late])
    offer = db.products.find_one({"_id": with_skus[0]})
    sku = offer["skus"][1]
    fetched = offer["fetched_at"]
    emulator.reset()
    with message_listener(listener_env(uri, name, redis_url), log_path=tmp_path / "listener.log") as listener:
        newer = int((fetched + timedelta(seconds=5)).timestamp() * 1000)
        older = int((fetched - timedelta(seconds=5)).timestamp() * 1000)
        inventory = envelope("PRODUCT_PRODUCT_INVENTORY_CHANGE", {"OfferInventoryChangeList": [
            {"offerId": offer["_id"], "offerOnSale": 4321, "skuId": sku["sku_id"], "skuOnSale": "17", "quantity": -2,
             "bizTime": newer},
            {"offerId": late, "offerOnSale": 1, "bizTime": older}]}, msg_id=401)
        assert push(listener.url, inventory) == (200, "success")
        assert push(listener.url, change(gone, unknown, action="member_delete", msg_id=402)) == (200, "success")
    assert emulator.stats()["requests"] == 0  # no call: what the messages say is written as it is
    now = db.products.find_one({"_id": offer["_id"]})
    assert now["stock"] == 4321 and now["skus"][1]["stock"] == 17 and now["skus"][0] == offer["skus"][0]
    assert now["changed_by"]["message"] == "401" and now["fetched_at"] == fetched
    history = db.product_history.find_one({"product_id": offer["_id"]})
    assert history["changed_by"]["message"] == "401" and history["source_api"] == "message"
    assert {change["field"] for change in history["changes"]} >= {"stock", f"skus.{sku['sku_id']}.stock"}
    assert db.products.find_one({"_id": late})["stock"] != 1  # fetched after that change: kept
    deleted = db.products.find_one({"_id": gone})
    assert deleted["available"] is False and deleted["unavailable_reason"]["message"] == "402"
    assert db.products.find_one({"_id": unknown}) is None  # not stored: nothing to mark
    handled = db.messages.find_one({"_id": "402"})
    assert handled["gone"] == [gone, unknown] and handled["queued"] == []
    assert db.messages.find_one({"_id": "401"})["queued"] == [offer["_id"], late]  # and checked by a refresh


@pytest_twisted.ensureDeferred
async def test_urgent_entries_go_first_and_count_as_pending(redis_url):
    """A worker waiting for work sees entries that only a message queued, and takes them first."""
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        queue = LeaseQueue(client, QUEUE)
        await queue.push([b"600000000001"])
        queued = await queue.push_urgent({"600000000002": b'{"id":"600000000002"}'})
        queued += await queue.push_urgent({"600000000002": b'{"id":"600000000002","again":1}'})  # waiting: kept
        assert queued == ["600000000002"] and await queue.pending() == (2, 0)
        assert await queue.take(5) == [b'{"id":"600000000002"}', b"600000000001"]
        assert await queue.push_urgent({"600000000002": b'{"id":"600000000002","again":2}'}) == ["600000000002"]
        await client.aclose()

    await deferred_from_coro(scenario())


# -- follow, and catching up on messages the push could not deliver -----------------------------

def _scrapy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scrapy", "crawl", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_follow_asks_for_each_offer_and_records_refusals(emulator_factory, database, redis_url, tmp_path):
    uri, name, db = database
    emulator = emulator_factory()
    env = worker_env(emulator.url, uri, name, redis_url)
    ids = fresh_ids(3)
    missing = [str(i) for i in CATALOGUE.missing_ids(1, start=932_000_000_000)]
    ids_file = tmp_path / "ids.txt"
    lines = [offer.encode() for offer in [*ids, *missing]] + [b"not an id \xff", ids[0].encode(), b"\xff\xfe"]
    ids_file.write_bytes(b"\n".join(lines) + b"\n")
    done = _scrapy(env, "follow", "-a", f"ids_file={ids_file}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "none missing" in done.stderr  # every line ends as followed, refused, junk or a duplicate
    assert sorted(emulator.get("/_sandbox/follows")["offer_ids"]) == sorted(int(i) for i in ids)
    follows = {doc["_id"]: doc for doc in db.follows.find()}
    assert set(follows) == set(ids) and all(doc["followed"] and doc["api"] == "follow" for doc in follows.values())
    refused = db.failures.find_one({"_id": f"follow:{missing[0]}"})
    assert refused["reason"] == "business_failure" and refused["offer_id"] == missing[0]
    assert db.failures.count_documents({"reason": "invalid_reference"}) == 2
    assert emulator.stats()["by_api"]["alibaba.product.follow"] == 4  # the duplicate once, junk never

    done = _scrapy(env, "follow", "-a", f"ids={ids[0]}", "-a", "unfollow=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert db.follows.find_one({"_id": ids[0]})["followed"] is False
    assert sorted(emulator.get("/_sandbox/follows")["offer_ids"]) == sorted(int(i) for i in ids[1:])

    many = [str(i) for i in CATALOGUE.offer_ids(25, start=933_000_000_000)]
    done = _scrapy(env, "follow", "-a", f"ids={','.join(many)}", "-a", "api=pushed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert emulator.stats()["by_api"]["alibaba.cross.syncProductListPushed"] == 2  # 20 + 5
    assert db.follows.count_documents({"api": "pushed.sync", "followed": True}) == 25

    done = _scrapy(env, "follow", "-a", f"ids={ids[0]}", "-a", "api=pushed", "-a", "unfollow=true")
    assert done.returncode == 2 and "cannot unfollow" in done.stderr


def test_messages_catches_up_and_confirms_only_what_it_stored(emulator_factory, database, redis_url, tmp_path):
    uri, name, db = database
    emulator = emulator_factory()  # no callback URL: every message waits in the replay APIs
    env = worker_env(emulator.url, uri, name, redis_url)
    ids = CATALOGUE.offer_ids(300, start=934_000_000_000)
    emulator.post("/_sandbox/follows", {"offer_ids": ids})
    emulator.post("/_sandbox/epoch", {"epoch": 1})
    changed = {str(i) for i in CATALOGUE.drifted_ids(ids, 1)}
    made = emulator.get("/_sandbox/push")
    pending = made["pending_replay"] if "pending_replay" in made else made["push"]["pending_replay"]
    assert pending >= len(changed) > 50

    client = redis.Redis.from_url(redis_url)
    client.config_set("min-replicas-to-write", 1)  # Redis refuses writes: nothing may be confirmed
    done = _scrapy(env, "messages", "-s", "ALI1688_STATS_FILE=" + str(tmp_path / "refused.json"))
    assert done.returncode == 2 and "it stays at 1688" in done.stderr
    assert emulator.stats()["by_api"].get("push.message.confirm", 0) == 0
    client.config_set("min-replicas-to-write", 0)

    stats_file = tmp_path / "stats.json"
    done = _scrapy(env, "messages", "-a", "since=1h", "-a", "page_size=50", "-s", f"ALI1688_STATS_FILE={stats_file}")
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(stats_file.read_text())
    assert stats["ali1688/messages/read"] >= pending
    assert stats["ali1688/messages/confirmed"] == db.messages.count_documents({}) >= pending
    assert {entry["id"] for entry in urgent(client)} == changed
    assert all(doc["via"] == "replay" and "handled_at" in doc for doc in db.messages.find())
    after = emulator.get("/_sandbox/push")
    assert (after["pending_replay"] if "pending_replay" in after else after["push"]["pending_replay"]) == 0

    done = _scrapy(env, "messages", "-s", f"ALI1688_STATS_FILE={stats_file}")  # nothing left
    assert done.returncode == 0 and json.loads(stats_file.read_text()).get("ali1688/messages/read", 0) == 0
