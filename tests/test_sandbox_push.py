"""The emulator's message service (PROTOCOL.md §8): follow APIs, messages on epoch moves, HTTP push
with its faults, and the replay APIs.

Real components: emulators started by ``emulator_factory`` (hence ``e2e``) and a callback receiver,
a tiny aiohttp app on a free loopback port in a thread of its own. Every expectation about a
message is computed from the catalogue itself (which offers drifted, their stock and prices at
the new epoch), and every push signature is checked with this module's own HMAC, not the
emulator's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from ali1688spider.aop.apis import ApiSpec
from ali1688spider.demo.services import GatewayEmulator
from ali1688spider.sandbox.__main__ import build_parser, config_from_args
from ali1688spider.sandbox.catalogue import Catalogue, Offer
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_MEMBER_ID, SandboxConfig
from ali1688spider.sandbox.signature import push_signature

from .crawling import CATALOGUE, SEED
from .test_sandbox import api_call

Emulators = Callable[..., GatewayEmulator]

VECTOR_SECRET = "UNIT-TEST-SECRET"
VECTOR_MESSAGE = (
    '{"data":{"memberId":"b2b-2219782677861","productIds":"966545615266,576254559101","action":"modify",'
    '"msgSendTime":"2025-09-05 10:43:28"},"gmtBorn":1757040208123,"msgId":92705609221,'
    '"type":"PRODUCT_RELATION_VIEW_PRODUCT_CHANGE","userInfo":"b2b-221741213935443542"}'
)
VECTOR_SIGNATURE = "D4CC15549A8B8E95EC1A283910815DE374318FC3"

RELATION = "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE"
INVENTORY = "PRODUCT_PRODUCT_INVENTORY_CHANGE"
PRICE = "FENXIAO_PRICE_CHANGE"
CHINA = timezone(timedelta(hours=8))
FORM = "application/x-www-form-urlencoded"

FOLLOW = ApiSpec(key="follow", namespace="com.alibaba.product", name="alibaba.product.follow")
FOLLOW_CROSSBORDER = ApiSpec(key="follow.crossborder", namespace="com.alibaba.product",
                             name="alibaba.product.follow.crossborder")
UNFOLLOW = ApiSpec(key="unfollow", namespace="com.alibaba.product", name="alibaba.product.unfollow.crossborder")
ADD_RELATION = ApiSpec(key="addRelation", namespace="com.alibaba.fenxiao.crossborder",
                       name="product.kjdistribute.addRelation")
REMOVE_RELATION = ApiSpec(key="removeRelation", namespace="com.alibaba.fenxiao.crossborder",
                          name="product.kjdistribute.removeRelation")
SYNC_PUSHED = ApiSpec(key="sync", namespace="com.alibaba.product.push", name="alibaba.cross.syncProductListPushed")
RELATION_ADD = ApiSpec(key="relationadd", namespace="com.alibaba.fenxiao", name="alibaba.fenxiao.relationadd")
QUERY = ApiSpec(key="query", namespace="cn.alibaba.open", name="push.query.messageList")
CURSOR = ApiSpec(key="cursor", namespace="cn.alibaba.open", name="push.cursor.messageList")
CONFIRM = ApiSpec(key="confirm", namespace="cn.alibaba.open", name="push.message.confirm")


# -- the callback receiver ---------------------------------------------------------------------

@dataclass(frozen=True)
class Push:
    """One POST the receiver got: the form fields in order, its content type, what it answered."""

    fields: tuple[tuple[str, str], ...]
    content_type: str
    status: int

    @property
    def form(self) -> dict[str, str]:
        return dict(self.fields)

    @property
    def envelope(self) -> dict[str, Any]:
        return dict(json.loads(self.form["message"]))

    @property
    def msg_id(self) -> str:
        return str(self.envelope["msgId"])


class Receiver:
    """A callback URL on a free loopback port (aiohttp, in a thread with its own loop): records each
    push and answers ``status(envelope, nth)``, ``nth`` counting the pushes of that msgId from 1."""

    def __init__(self) -> None:
        self.status: Callable[[dict[str, Any], int], int] = lambda envelope, nth: 204
        self.url = ""
        self._pushes: list[Push] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="push-receiver", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the push receiver did not start")

    @property
    def pushes(self) -> list[Push]:
        with self._lock:
            return list(self._pushes)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback"
        started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        fields = tuple(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        envelope = json.loads(dict(fields)["message"])
        with self._lock:
            nth = 1 + sum(1 for push in self._pushes if push.msg_id == str(envelope["msgId"]))
            status = self.status(envelope, nth)
            self._pushes.append(Push(fields, request.content_type, status))
        return web.Response(status=status)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A callback receiver; the tests using it start an emulator too, so they are ``e2e``."""
    started = Receiver()
    yield started
    started.stop()


# -- talking to the emulator -------------------------------------------------------------------

def call(emulator: GatewayEmulator, api: ApiSpec, params: Mapping[str, object], token: str | None = None,
         ) -> tuple[int, Any]:
    """A signed call (``access_token`` only when given): ``(status, decoded JSON)``."""
    status, body = api_call(emulator, api, params, token=token)
    return status, json.loads(body)


def control(emulator: GatewayEmulator, path: str, data: Any = None) -> tuple[int, Any]:
    """POST JSON to a control (GET without ``data``): ``(status, decoded JSON)``, errors included."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(emulator.base + path, data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def counters(emulator: GatewayEmulator) -> dict[str, Any]:
    """``GET /_sandbox/push``: the push settings and counters, side by side."""
    return dict(emulator.get("/_sandbox/push"))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def settled(emulator: GatewayEmulator) -> dict[str, int]:
    """The push counters once every made message was delivered (duplicates too) or gave up."""
    def done() -> bool:
        now = counters(emulator)
        return now["planned"] == 0 and now["sending"] == 0 and now["backlog"] == 0
    wait_until(done, "the pusher to settle")
    return counters(emulator)


def signed_right(push: Push, secret: str = DEMO_APP_SECRET) -> bool:
    """§8.2 by hand: HMAC-SHA1 over the sorted ``key+value`` of every field but the signature."""
    pieces = sorted(key + value for key, value in push.fields if key != "_aop_signature")
    expected = hmac.new(secret.encode(), "".join(pieces).encode(), hashlib.sha1).hexdigest().upper()
    return hmac.compare_digest(push.form["_aop_signature"].upper(), expected)


def replay_time(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, CHINA)
    return moment.strftime("%Y%m%d%H%M%S") + f"{epoch_ms % 1000:03d}+0800"


def query_all(emulator: GatewayEmulator, **filters: object) -> list[dict[str, Any]]:
    """Every listed message that passes ``filters``, page by page (pageSize 20)."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body = call(emulator, QUERY, {"page": page, "pageSize": 20, **filters})
        assert status == 200, body
        datas = body["pushMessagePage"]["datas"]
        assert body["pushMessagePage"]["totalCount"] >= len(found) + len(datas)
        found += datas
        if len(datas) < 20:
            return found
        page += 1


# -- what the catalogue says should come --------------------------------------------------------

def stock_changes(before: Offer, after: Offer) -> list[tuple[int | None, int, int]]:
    """``(skuId or None, skuOnSale or offerOnSale, change)`` per changed stock, as expected."""
    if after.skus:
        return [(new.sku_id, new.amount_on_sale, new.amount_on_sale - old.amount_on_sale)
                for old, new in zip(before.skus, after.skus, strict=True) if old.amount_on_sale != new.amount_on_sale]
    change = after.amount_on_sale - before.amount_on_sale
    return [(None, after.amount_on_sale, change)] if change else []


def prices(offer: Offer) -> object:
    return offer.tiers, offer.retail_cents, [(s.price_cents, s.retail_cents, s.consign_cents) for s in offer.skus]


def at(offer_id: int, epoch: int) -> Offer:
    offer = CATALOGUE.offer(offer_id, epoch)
    assert offer is not None
    return offer


def relation_ids(envelopes: list[dict[str, Any]]) -> list[int]:
    return [int(i) for e in envelopes if e["type"] == RELATION for i in e["data"]["productIds"].split(",")]


# -- without a server ----------------------------------------------------------------------------

def test_push_signature_matches_the_vector() -> None:
    assert push_signature({"message": VECTOR_MESSAGE}, VECTOR_SECRET) == VECTOR_SIGNATURE
    by_hand = hmac.new(VECTOR_SECRET.encode(), ("message" + VECTOR_MESSAGE).encode(), hashlib.sha1)
    assert by_hand.hexdigest().upper() == VECTOR_SIGNATURE
    # the sorted key+value rule, no path prefix: another field takes its sorted place
    fields = {"message": VECTOR_MESSAGE, "a": "1"}
    expected = hmac.new(VECTOR_SECRET.encode(), ("a1message" + VECTOR_MESSAGE).encode(), hashlib.sha1)
    assert push_signature(fields, VECTOR_SECRET) == expected.hexdigest().upper()
    assert push_signature({**fields, "_aop_signature": "X"}, VECTOR_SECRET) == expected.hexdigest().upper()


def test_default_drift_share_leaves_the_catalogue_as_it_was() -> None:
    explicit = Catalogue(SEED, drift_share=0.30)
    ids = CATALOGUE.offer_ids(300, start=700_000_000_000)
    for epoch in (0, 1, 2, 5, 9):
        assert explicit.drifted_ids(ids, epoch) == CATALOGUE.drifted_ids(ids, epoch)
        assert [explicit.drift_epoch(i, epoch) for i in ids] == [CATALOGUE.drift_epoch(i, epoch) for i in ids]
    for epoch in (1, 3):
        assert [explicit.offer(i, epoch) for i in ids[:40]] == [CATALOGUE.offer(i, epoch) for i in ids[:40]]
    share = len(CATALOGUE.drifted_ids(ids, 1)) / len(ids)
    assert 0.22 < share < 0.38


def test_small_drift_share_drifts_about_one_percent() -> None:
    rare = Catalogue(SEED, drift_share=0.01)
    ids = rare.offer_ids(20_000)
    for epoch in (1, 2, 3):
        drifted = rare.drifted_ids(ids, epoch)
        assert 0.006 < len(drifted) / len(ids) < 0.015, len(drifted)
    # the same draw under a lower threshold: a rare drift is one of the usual ones, and the same
    sample = ids[:1500]
    rare_drifted = rare.drifted_ids(sample, 1)
    assert set(rare_drifted) <= set(CATALOGUE.drifted_ids(sample, 1))
    assert [rare.offer(i, 1) for i in rare_drifted] == [CATALOGUE.offer(i, 1) for i in rare_drifted]
    assert Catalogue(SEED, drift_share=0).drifted_ids(sample, 1) == []
    with pytest.raises(ValueError, match="drift share"):
        Catalogue(SEED, drift_share=1.5)


def test_cli_flags_reach_the_config() -> None:
    args = build_parser().parse_args([
        "--drift-share", "0.01", "--callback-url", "http://127.0.0.1:9/cb", "--push-delay-ms", "5",
        "--push-jitter-ms", "7", "--push-duplicate", "0.2", "--push-fail", "0.3", "--push-retry-seconds", "0.5",
        "--push-attempts", "4",
    ])
    config = config_from_args(args)
    assert (config.drift_share, config.callback_url, config.push_delay_ms, config.push_jitter_ms) == (
        0.01, "http://127.0.0.1:9/cb", 5.0, 7.0)
    assert (config.push_duplicate, config.push_fail, config.push_retry_seconds, config.push_attempts) == (
        0.2, 0.3, 0.5, 4)
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.drift_share, defaults.callback_url, defaults.push_retry_seconds, defaults.push_attempts) == (
        0.30, "", 5.0, 3)
    bad_settings: list[dict[str, Any]] = [{"callback_url": "ftp://x/"}, {"callback_url": "/relative"},
                                          {"push_attempts": 0}, {"push_fail": 1.5}, {"drift_share": -0.1}]
    for bad in bad_settings:
        with pytest.raises(ValueError):
            SandboxConfig(**bad)


# -- the follow / relation APIs -----------------------------------------------------------------

def test_relation_apis_follow_and_unfollow(emulator_factory: Emulators) -> None:
    emulator = emulator_factory()
    token = emulator.access_token()
    ids = CATALOGUE.offer_ids(40, start=710_000_000_000)
    missing = CATALOGUE.missing_ids(2, start=710_000_000_000)

    def followed() -> list[int]:
        return list(emulator.get("/_sandbox/follows")["offer_ids"])

    ok = {"code": 0, "message": "success"}
    assert call(emulator, FOLLOW, {"productId": ids[0]}, token) == (200, ok)
    assert call(emulator, FOLLOW_CROSSBORDER, {"productId": str(ids[1])}, token) == (200, ok)
    assert call(emulator, FOLLOW, {"productId": missing[0]}, token) == (200, {"code": 1, "message": "商品不存在"})
    assert followed() == sorted(ids[:2])
    assert call(emulator, UNFOLLOW, {"productId": ids[0]}, token) == (200, ok)
    assert call(emulator, UNFOLLOW, {"productId": ids[0]}, token) == (200, ok)  # not followed: fine too
    assert followed() == [ids[1]]
    # the gateway's checks come first: a token is needed, the id must be a number
    assert call(emulator, FOLLOW, {"productId": ids[2]})[1]["error_code"] == "401"
    for params in ({}, {"productId": "abc"}, {"productId": "-5"}):
        status, body = call(emulator, FOLLOW_CROSSBORDER, params, token)
        assert (status, body["error_code"]) == (400, "gw.ParamMissing")

    # addRelation needs no token (one is accepted); removeRelation does
    for offer_id, with_token in ((ids[2], None), (ids[3], token)):
        status, body = call(emulator, ADD_RELATION, {"offerId": offer_id}, with_token)
        assert status == 200 and set(body) == {"result"}, body
        assert body["result"]["success"] is True and body["result"]["msg"] == "success"
        assert re.fullmatch(r"[0-9a-f]{30}", body["result"]["traceId"])
    status, body = call(emulator, ADD_RELATION, {"offerId": missing[1]})
    assert body["result"]["success"] is False and body["result"]["msg"] == "商品不存在"
    assert call(emulator, REMOVE_RELATION, {"offerId": ids[3]})[1]["error_code"] == "401"
    status, body = call(emulator, REMOVE_RELATION, {"offerId": ids[3]}, token)
    assert body["result"]["success"] is True and body["result"]["model"] == []
    assert followed() == sorted([ids[1], ids[2]])

    # syncProductListPushed: up to 20 ids, unknown ones ignored; its failures are its own
    status, body = call(emulator, SYNC_PUSHED, {"productIdList": [ids[4], str(ids[5]), missing[0]]}, token)
    assert (status, body) == (200, {"result": {"success": True}})
    failures: list[tuple[dict[str, object], str]] = [
        ({"productIdList": []}, "OFFERIDS_IS_NULL"), ({}, "OFFERIDS_IS_NULL"),
        ({"productIdList": ids[10:31]}, "PARAM_ERROR"), ({"productIdList": "12,13"}, "PARAM_ERROR"),
        ({"productIdList": [ids[10], "x"]}, "PARAM_ERROR"),
    ]
    for listed, code in failures:
        status, body = call(emulator, SYNC_PUSHED, listed, token)
        assert status == 200 and body["result"]["success"] is False and body["result"]["errorCode"] == code, body
        assert body["result"]["errorMsg"]
    assert call(emulator, SYNC_PUSHED, {"productIdList": ids[10:30]}, token)[1] == {"result": {"success": True}}

    assert call(emulator, RELATION_ADD, {"offerId": ids[6]}, token) == (
        200, {"result": {"success": True, "code": "200", "message": "success", "result": True}})
    assert call(emulator, RELATION_ADD, {"offerId": missing[0]}, token) == (
        200, {"result": {"success": False, "code": "OFFER_NOT_EXIST", "message": "商品不存在", "result": False}})
    expected = sorted([ids[1], ids[2], ids[4], ids[5], ids[6], *ids[10:30]])
    assert emulator.get("/_sandbox/follows") == {"count": len(expected), "offer_ids": expected}

    # a fault that replaces the answer replaces the follow too
    emulator.script([{"kind": "gone", "api": "alibaba.product.follow"}, {"kind": "5xx", "api": "relationadd"}])
    assert call(emulator, FOLLOW, {"productId": ids[7]}, token) == (200, {"code": 1, "message": "商品不存在"})
    assert api_call(emulator, RELATION_ADD, {"offerId": ids[8]}, token=token)[0] in (502, 503)
    assert ids[7] not in followed() and ids[8] not in followed()

    # the control: many at once, and back
    assert control(emulator, "/_sandbox/follows", {"offer_ids": [ids[31], str(ids[32]), missing[0]]}) == (
        200, {"count": len(expected) + 2, "changed": 2, "unknown": 1})
    assert control(emulator, "/_sandbox/follows", {"offer_ids": ids[31:33], "unfollow": True}) == (
        200, {"count": len(expected), "changed": 2, "unknown": 0})
    for bad in ({"offer_ids": "1,2"}, {"offer_ids": [1.5]}, {}):
        assert control(emulator, "/_sandbox/follows", bad)[0] == 400
    assert emulator.stats()["follows"] == len(expected)


# -- messages pushed on epoch moves -------------------------------------------------------------

def test_epoch_moves_push_the_followed_offers_that_drifted(emulator_factory: Emulators, receiver: Receiver) -> None:
    emulator = emulator_factory(callback_url=receiver.url)
    ids = CATALOGUE.offer_ids(120, start=720_000_000_000)
    followed, others = ids[:80], ids[80:]
    assert control(emulator, "/_sandbox/follows", {"offer_ids": followed})[1]["count"] == 80
    assert CATALOGUE.drifted_ids(others, 1), "some offers that are not followed drift too"
    started_ms = int(time.time() * 1000)

    assert emulator.post("/_sandbox/epoch", {"epoch": 1}) == {"epoch": 1}
    made = settled(emulator)
    pushes = receiver.pushes
    assert made["made"] == made["delivered"] == made["attempts"] == len(pushes) > 0
    assert made["failed_attempts"] == made["pending_replay"] == 0
    envelopes = [push.envelope for push in pushes]

    for push, envelope in zip(pushes, envelopes, strict=True):
        assert sorted(push.form) == ["_aop_signature", "message"] and len(push.fields) == 2
        assert push.content_type == FORM
        assert signed_right(push), push.form["message"]
        assert list(envelope) == ["msgId", "type", "userInfo", "gmtBorn", "data"]
        assert envelope["userInfo"] == DEMO_MEMBER_ID
        assert started_ms - 1000 <= envelope["gmtBorn"] <= int(time.time() * 1000)
    msg_ids = [int(envelope["msgId"]) for envelope in envelopes]
    assert len(set(msg_ids)) == len(msg_ids)
    assert {type(envelope["msgId"]) for envelope in envelopes} == {int, str}  # both spellings come

    # RELATION_VIEW: each drifted followed offer exactly once, one to three per message
    drifted = CATALOGUE.drifted_ids(followed, 1)
    assert sorted(relation_ids(envelopes)) == sorted(drifted)
    for envelope in envelopes:
        data = envelope["data"]
        if envelope["type"] == RELATION:
            assert set(data) == {"memberId", "productIds", "action", "msgSendTime"}
            assert data["action"] == "modify" and 1 <= len(data["productIds"].split(",")) <= 3
            assert re.fullmatch(r"b2b-\d+", data["memberId"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", data["msgSendTime"])

    # inventory: the offers whose stock changed, with their values at the new epoch
    inventory = [e["data"]["OfferInventoryChangeList"] for e in envelopes if e["type"] == INVENTORY]
    expected_stock = {i: stock_changes(at(i, 0), at(i, 1)) for i in drifted}
    assert sorted(int(entries[0]["offerId"]) for entries in inventory) == sorted(
        i for i, changes in expected_stock.items() if changes)
    spellings: set[type] = set()
    for entries in inventory:
        offer_id = int(entries[0]["offerId"])
        offer = at(offer_id, 1)
        got = []
        for entry in entries:
            assert int(entry["offerId"]) == offer_id and int(entry["offerOnSale"]) == offer.amount_on_sale
            assert ("skuId" in entry) == bool(offer.skus) == ("skuOnSale" in entry)
            on_sale = entry["skuOnSale"] if offer.skus else entry["offerOnSale"]
            got.append((int(entry["skuId"]) if offer.skus else None, int(on_sale), int(entry["quantity"])))
            if "bizTime" in entry:
                assert started_ms - 2000 <= int(entry["bizTime"]) <= int(time.time() * 1000)
            spellings.add(type(entry["quantity"]))
        assert got == expected_stock[offer_id]
    assert spellings == {int, str}  # numbers, and numbers as strings

    # price changes: the drifted offers whose prices changed
    price_ids = [envelope["data"]["productId"] for envelope in envelopes if envelope["type"] == PRICE]
    assert all(isinstance(i, str) for i in price_ids)
    assert sorted(map(int, price_ids)) == sorted(i for i in drifted if prices(at(i, 0)) != prices(at(i, 1)))
    assert not set(relation_ids(envelopes)) & set(others)

    # unfollowed offers get nothing; a jump counts every epoch on the way
    kept = followed[:40]
    assert control(emulator, "/_sandbox/follows", {"offer_ids": followed[40:], "unfollow": True})[1]["count"] == 40
    before = len(pushes)
    assert emulator.post("/_sandbox/epoch", {"epoch": 3}) == {"epoch": 3}
    later = settled(emulator)
    envelopes = [push.envelope for push in receiver.pushes[before:]]
    assert later["made"] - made["made"] == len(envelopes)
    assert sorted(relation_ids(envelopes)) == sorted(CATALOGUE.drifted_ids(kept, 2) + CATALOGUE.drifted_ids(kept, 3))
    assert all(int(e["msgId"]) > max(msg_ids) for e in envelopes)
    # going back makes no messages
    emulator.post("/_sandbox/epoch", {"epoch": 2})
    assert settled(emulator)["made"] == later["made"]


def test_duplicates_keep_their_msg_id_and_jitter_reorders(emulator_factory: Emulators, receiver: Receiver) -> None:
    emulator = emulator_factory(callback_url=receiver.url, push_duplicate=0.5, push_jitter_ms=40)
    emulator.post("/_sandbox/follows", {"offer_ids": CATALOGUE.offer_ids(60, start=730_000_000_000)})
    emulator.post("/_sandbox/epoch")
    done = settled(emulator)
    pushes = receiver.pushes
    assert done["made"] == done["delivered"] > 10
    assert len(pushes) == done["made"] + done["duplicates"] and done["duplicates"] > 0
    by_id: dict[str, list[Push]] = {}
    for push in pushes:
        by_id.setdefault(push.msg_id, []).append(push)
    assert len(by_id) == done["made"]
    twice = [copies for copies in by_id.values() if len(copies) == 2]
    assert len(twice) == done["duplicates"] and all(len(copies) <= 2 for copies in by_id.values())
    for first, second in twice:
        assert first.fields == second.fields  # the same message, the same signature
    first_arrivals = [int(msg_id) for msg_id in by_id]
    assert first_arrivals != sorted(first_arrivals)  # the jitter reorders


def test_failed_pushes_are_retried_and_replayed_until_confirmed(emulator_factory: Emulators,
                                                                receiver: Receiver) -> None:
    emulator = emulator_factory(push_retry_seconds=0.4, push_attempts=3)
    assert emulator.post("/_sandbox/push", {"callback_url": receiver.url})["callback_url"] == receiver.url
    flaky, broken, confirmed = "1001", "1002", "1003"
    receiver.status = lambda envelope, nth: 204 if str(envelope["msgId"]) == flaky and nth > 1 else 500
    for msg_id in (flaky, broken):
        data = {"memberId": "b2b-1", "productIds": "600000000001", "action": "member_delete",
                "msgSendTime": "2025-09-05 10:43:28"}
        assert emulator.post("/_sandbox/messages", {"type": RELATION, "data": data, "msgId": int(msg_id)}) == {
            "msgId": int(msg_id)}
    assert emulator.post("/_sandbox/messages", {"type": "SOMETHING_NEW", "data": {"x": 1}, "msgId": confirmed}) == {
        "msgId": confirmed}
    wait_until(lambda: len(receiver.pushes) >= 3, "the first attempts")

    # failed once: listed (reading confirms nothing) until confirmed or delivered later
    assert call(emulator, CONFIRM, {"msgIdList": [confirmed]}) == (200, {"isSuccess": True})
    listed = query_all(emulator)
    assert [m["msgId"] for m in listed] == [int(flaky), int(broken)] or [m["msgId"] for m in listed] == [int(broken)]
    assert query_all(emulator) == listed
    done = settled(emulator)
    seen = Counter(push.msg_id for push in receiver.pushes)
    assert seen == {flaky: 2, broken: 3, confirmed: 1}  # a confirmed message is not pushed again
    assert (done["delivered"], done["exhausted"], done["attempts"], done["failed_attempts"]) == (1, 1, 6, 5)
    (left,) = query_all(emulator)
    assert left["msgId"] == int(broken) and left["data"]["action"] == "member_delete"
    assert (left["topicGroup"], left["topicName"], left["appKey"]) == ("PRODUCT", "RELATION_VIEW_PRODUCT_CHANGE",
                                                                       DEMO_APP_KEY)
    assert call(emulator, CONFIRM, {"msgIdList": [int(broken), 424242, "x"]}) == (200, {"isSuccess": True})
    assert query_all(emulator) == []
    assert counters(emulator)["confirmed"] == 2 == emulator.stats()["push"]["confirmed"]


def test_push_fail_and_no_callback_leave_messages_to_replay(emulator_factory: Emulators, receiver: Receiver) -> None:
    emulator = emulator_factory(callback_url=receiver.url, push_fail=1, push_attempts=2, push_retry_seconds=0.05)
    settings = emulator.get("/_sandbox/push")
    assert {key: settings[key] for key in ("callback_url", "push_fail", "push_attempts", "push_retry_seconds")} == {
        "callback_url": receiver.url, "push_fail": 1.0, "push_attempts": 2, "push_retry_seconds": 0.05}
    emulator.post("/_sandbox/messages", {"type": PRICE, "data": {"productId": "1"}})
    done = settled(emulator)
    assert receiver.pushes == []  # failed on purpose: nothing sent
    assert (done["attempts"], done["failed_attempts"], done["exhausted"], done["pending_replay"]) == (2, 2, 1, 1)

    assert control(emulator, "/_sandbox/push", {"callback_url": "nowhere"})[0] == 400
    assert emulator.post("/_sandbox/push", {"callback_url": ""})["callback_url"] == ""
    emulator.post("/_sandbox/messages", {"type": PRICE, "data": {"productId": "2"}, "userInfo": "b2b-other"})
    done = settled(emulator)
    assert (done["made"], done["unsent"], done["attempts"], done["pending_replay"]) == (2, 1, 2, 2)
    assert [m["userInfo"] for m in query_all(emulator)] == [DEMO_MEMBER_ID, "b2b-other"]
    emulator.reset()  # zeroes the counters, keeps the listed messages
    assert counters(emulator)["made"] == 0 and counters(emulator)["pending_replay"] == 2


# -- the replay APIs -----------------------------------------------------------------------------

def test_replay_apis_list_filter_and_confirm(emulator_factory: Emulators) -> None:
    emulator = emulator_factory()  # no callback URL: every message is listed at once
    token = emulator.access_token()
    emulator.post("/_sandbox/follows", {"offer_ids": CATALOGUE.offer_ids(80, start=740_000_000_000)})
    emulator.post("/_sandbox/epoch", {"epoch": 1})
    made = counters(emulator)
    assert made["made"] == made["unsent"] == made["pending_replay"] > 40

    listed = query_all(emulator)
    assert len(listed) == made["made"]
    assert [int(m["msgId"]) for m in listed] == sorted(int(m["msgId"]) for m in listed)
    for message in listed:
        assert message["topicGroup"] + "_" + message["topicName"] == message["type"]
        assert message["appKey"] == DEMO_APP_KEY and message["userInfo"] == DEMO_MEMBER_ID
    status, body = call(emulator, QUERY, {"page": 2, "pageSize": 20}, token)  # a token is accepted too
    assert body["pushMessagePage"] == {"datas": listed[20:40], "totalCount": len(listed)}
    prices_only = query_all(emulator, type=PRICE)
    assert prices_only == [m for m in listed if m["type"] == PRICE] and prices_only
    born = listed[0]["gmtBorn"]
    assert query_all(emulator, createStartTime=replay_time(born), createEndTime=replay_time(born)) == listed
    assert query_all(emulator, createStartTime=replay_time(born + 1)) == []
    assert query_all(emulator, userInfo="b2b-nobody") == []

    for api, params in ((QUERY, {"pageSize": 10}), (QUERY, {"pageSize": 201}), (QUERY, {"page": 0}),
                        (CURSOR, {"quantity": 19}), (QUERY, {"createStartTime": "2025-09-05 10:43:28"}),
                        (CONFIRM, {"msgIdList": "1,2"}), (CONFIRM, {})):
        status, body = call(emulator, api, params)
        assert (status, body["error_code"]) == (400, "gw.ParamMissing"), (api.name, params)

    # the cursor confirms what it returns, oldest first, until nothing is left
    taken: list[dict[str, Any]] = []
    while True:
        status, body = call(emulator, CURSOR, {"quantity": 20})
        batch = body["pushMessageList"]
        if not batch:
            break
        assert batch == listed[len(taken):len(taken) + 20]
        taken += batch
        assert call(emulator, QUERY, {})[1]["pushMessagePage"]["totalCount"] == len(listed) - len(taken)
    assert taken == listed
    assert counters(emulator)["confirmed"] == len(listed)
