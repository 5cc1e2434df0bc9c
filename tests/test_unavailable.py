"""Issue 12: an offer that was stored and is now gone (deleted, delisted, expired) keeps its product
document, marked ``available: false`` since it went, with the change in ``product_history``; it is
counted under ``ali1688/unavailable``, not as a failure, and a later success makes it available."""

from __future__ import annotations

import pytest
import pytest_twisted

from ali1688spider.aop.classify import offer_gone
from ali1688spider.aop.product import for_sale
from ali1688spider.sandbox.shapes import shape_of

from .crawling import CATALOGUE, SEED, crawl_settings, fresh_ids, fresh_missing, run_crawl


@pytest.mark.parametrize(("status", "sale"), [
    (None, True), ("published", True), ("auditing", True), ("expired", False), ("member deleted", False),
    ("AUTO_EXPIRED", False), ("auto-expired", False), ("已下架", False), ("deleted", False)])
def test_status_decides_available(status, sale):
    assert for_sale(status) is sale


@pytest.mark.parametrize(("code", "message", "gone"), [
    ("500_004", "商品不存在", True), ("SP0056", "", True), ("OFFER_NOT_FOUND", None, True),
    ("X", "the offer does not exist", True), ("X", "offer not found", True), (None, "商品已删除", True),
    ("gw.ParamMissing", "productID is required", False), ("NO_PERMISSION", "无权限", False)])
def test_which_business_failures_say_gone(code, message, gone):
    assert offer_gone(code, message) is gone


@pytest_twisted.ensureDeferred
async def test_a_gone_offer_stays_stored_unavailable(emulator, database):
    uri, name, db = database
    ids = [i for i in fresh_ids(12) if CATALOGUE.offer(i).status != "expired"][:3]  # 5 % of offers are expired
    settings = crawl_settings(emulator.url, uri, name)
    await run_crawl(settings, ids=",".join(ids))
    before = db.products.find_one({"_id": ids[0]})
    assert before["available"] is True and "unavailable_since" not in before

    emulator.script([{"kind": "gone", "times": 1}])
    crawler = await run_crawl(settings, ids=ids[0])
    stats = crawler.stats.get_stats()
    gone = db.products.find_one({"_id": ids[0]})
    assert gone["available"] is False and gone["unavailable_since"] > before["fetched_at"]
    assert gone["unavailable_reason"]["error_code"] == "500_004"
    assert gone["subject"] == before["subject"] and gone["fetched_at"] == before["fetched_at"]
    assert db.failures.count_documents({}) == 0
    assert stats["ali1688/unavailable"] == 1 and stats.get("ali1688/failed/business_failure", 0) == 0
    (change,) = db.product_history.find({"product_id": ids[0]})
    assert change["changes"] == [{"field": "available", "old": True, "new": False}]
    run = db.runs.find_one(sort=[("finished_at", -1)])
    assert run["unavailable"] == 1 and run["failed"] == 0

    emulator.script([{"kind": "gone", "times": 1}])  # still gone: the same since, no new history
    await run_crawl(settings, ids=ids[0])
    again = db.products.find_one({"_id": ids[0]})
    assert again["unavailable_since"] == gone["unavailable_since"]
    assert db.product_history.count_documents({"product_id": ids[0]}) == 1

    await run_crawl(settings, ids=ids[0])  # back on sale
    back = db.products.find_one({"_id": ids[0]})
    assert back["available"] is True and "unavailable_since" not in back and "unavailable_reason" not in back
    latest = db.product_history.find_one({"product_id": ids[0]}, sort=[("at", -1)])
    assert {"field": "available", "old": False, "new": True} in latest["changes"]


@pytest_twisted.ensureDeferred
async def test_an_offer_never_stored_stays_a_failure(emulator, database):
    uri, name, db = database
    (missing,) = fresh_missing(1)
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids=missing)
    failure = db.failures.find_one({"_id": missing})
    assert failure["reason"] == "business_failure" and failure["gone"] is True
    assert crawler.stats.get_value("ali1688/unavailable") is None
    assert db.products.count_documents({"_id": missing}) == 0


@pytest_twisted.ensureDeferred
async def test_an_expired_offer_is_stored_not_available(emulator, database):
    uri, name, db = database
    expired = [i for i in fresh_ids(400) if CATALOGUE.offer(i).status == "expired"][:2]
    assert expired
    await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(expired))
    for doc in db.products.find({"_id": {"$in": expired}}):
        spelt = shape_of(SEED, int(doc["_id"])).expired_as  # expired, auto expired, AUTO_EXPIRED…: kept as sent
        assert doc["status"] == spelt and doc["available"] is False and doc["unavailable_since"]
    assert db.products.count_documents({"_id": {"$in": expired}}) == len(expired)
