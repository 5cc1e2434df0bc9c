"""Freshness (no calls for fresh data), re-fetching stale products, the run log, the HTTP cache
keeping only products, and price/stock history — end to end against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_twisted

from ali1688spider.config import parse_duration
from ali1688spider.store.mongo import MongoStore

from .crawling import CATALOGUE, crawl_settings, fresh_ids, run_crawl


@pytest_twisted.ensureDeferred
async def test_fresh_products_cost_no_calls(emulator, database):
    uri, name, db = database
    old, new = fresh_ids(10), fresh_ids(5)
    await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(old))
    served = emulator.stats()["served"]
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name, ALI1688_FRESH_FOR="1h"), ids=",".join(old + new))
    assert emulator.stats()["served"] - served == 5
    assert crawler.stats.get_value("ali1688/fresh") == 10
    assert db.products.count_documents({}) == 15
    run = db.runs.find_one({"fresh": 10})
    assert run is not None and run["fetched"] == 5 and run["finish_reason"] == "finished"


@pytest_twisted.ensureDeferred
async def test_refresh_older_than_refetches_only_stale_products(emulator, database):
    uri, name, db = database
    ids = fresh_ids(10)
    await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(ids))
    stale = ids[:4]
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    db.products.update_many({"_id": {"$in": stale}}, {"$set": {"fetched_at": two_days_ago}})
    served = emulator.stats()["served"]
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), refresh_older_than="1d")
    assert crawler.stats.get_value("ali1688/input/total") == 4
    assert emulator.stats()["served"] - served == 4
    assert db.products.count_documents({"fetched_at": {"$lt": datetime.now(UTC) - timedelta(hours=1)}}) == 0
    assert db.runs.count_documents({}) == 2


@pytest_twisted.ensureDeferred
async def test_http_cache_keeps_products_not_error_replies(emulator, database, tmp_path):
    uri, name, _ = database
    ids, missing = fresh_ids(3), [str(i) for i in CATALOGUE.missing_ids(1, start=650_000_000_000)]
    settings = crawl_settings(emulator.url, uri, name, HTTPCACHE_ENABLED=True, HTTPCACHE_DIR=str(tmp_path / "cache"))
    await run_crawl(settings, ids=",".join(ids + missing))
    served = emulator.stats()["served"]
    crawler = await run_crawl(settings, ids=",".join(ids + missing))
    assert crawler.stats.get_value("httpcache/hit") == 3
    assert emulator.stats()["served"] - served == 1  # the unknown id is asked again


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30m", 1800), ("6h", 21600), ("2d", 172800),
                                                ("1.5h", 5400), ("0", 0), ("2w", 1209600), (" 6H ", 21600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "6x", "-1h", "soon"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest_twisted.ensureDeferred
async def test_price_and_stock_history(emulator_factory, database):
    uri, name, db = database
    ids = fresh_ids(30)
    emulator = emulator_factory()  # its own: the shared one must stay at epoch 0
    settings = crawl_settings(emulator.url, uri, name)
    await run_crawl(settings, ids=",".join(ids))
    first = {doc["_id"]: doc for doc in db.products.find()}
    assert db.product_history.count_documents({}) == 0
    assert all(doc["changed_at"] == doc["first_seen_at"] for doc in first.values())

    await run_crawl(settings, ids=",".join(ids))  # nothing changed: no history
    assert db.product_history.count_documents({}) == 0

    emulator.post("/_sandbox/epoch")
    drifted = {str(i) for i in CATALOGUE.drifted_ids([int(i) for i in ids], 1)}
    assert drifted and drifted != set(ids)
    await run_crawl(settings, ids=",".join(ids))
    history = {doc["product_id"]: doc for doc in db.product_history.find()}
    assert set(history) == drifted
    for offer_id, entry in history.items():
        fields = {change["field"] for change in entry["changes"]}
        tracked = {"price_tiers", "stock", "min_price", "max_price"}
        assert fields <= tracked | {f for f in fields if f.startswith("skus.")}
        # every drift moves the offer's price span, whichever way the API prices it (tiers, SKUs,
        # a reference price): the history holds the span now stored
        span = next(c for c in entry["changes"] if c["field"] == "min_price")
        stored = db.products.find_one({"_id": offer_id})
        new, old = span["new"].to_decimal(), span["old"].to_decimal()
        assert new == stored["min_price"].to_decimal() and old == first[offer_id]["min_price"].to_decimal() != new
        tiers = next((c for c in entry["changes"] if c["field"] == "price_tiers"), None)
        if tiers is not None:
            offer = CATALOGUE.offer(offer_id, epoch=1)
            assert [t["price"].to_decimal() for t in tiers["new"]] == [Decimal(t.price_cents) / 100
                                                                       for t in offer.tiers]
        now = db.products.find_one({"_id": offer_id})
        assert now["changed_at"] > first[offer_id]["changed_at"]
        assert now["content_hash"] != first[offer_id]["content_hash"]
    for offer_id in set(ids) - drifted:
        assert db.products.find_one({"_id": offer_id})["changed_at"] == first[offer_id]["changed_at"]


def test_a_retried_write_records_a_change_once(database):
    uri, name, db = database
    store = MongoStore(uri, name)
    store.open()
    try:
        _write_the_same_change_twice(store, db)
    finally:
        store.close()


def _write_the_same_change_twice(store, db):
    first = datetime(2026, 1, 1, tzinfo=UTC)
    v1 = {"_id": "610000000001", "subject": "杯子", "status": "published", "stock": 5, "source_api": "product.get",
          "price_tiers": [{"min_quantity": 1, "price": Decimal("9.90")}], "skus": [], "fetched_at": first}
    store.write([v1], [])
    v2 = {**v1, "stock": 4, "price_tiers": [{"min_quantity": 1, "price": Decimal("8.80")}],
          "fetched_at": datetime(2026, 1, 2, tzinfo=UTC)}
    store.write([v2], [])
    # as if the product upsert had failed after the history insert: the stored version is v1 again
    store.products.replace_one({"_id": v1["_id"]}, {k: v for k, v in v1.items() if k != "_id"})
    store.write([v2], [])
    (change,) = list(db.product_history.find())
    assert {c["field"] for c in change["changes"]} == {"stock", "price_tiers"}
    assert db.products.find_one({"_id": v1["_id"]})["stock"] == 4


def test_a_failure_yields_to_a_product(database):
    """Issue 12, case 6: the same offer queued twice (as an id and as a URL) for several workers
    ended in both collections. A failure for an id stored in the same batch, or fetched since the
    failing crawl started, is not written; an older product does not stop it."""
    uri, name, db = database
    store = MongoStore(uri, name)
    store.open()
    crawl_started = datetime.now(UTC)
    product = {"_id": "610000000007", "subject": "杯子", "status": "published", "stock": 5, "source_api": "product.get",
               "price_tiers": [{"min_quantity": 1, "price": Decimal("9.90")}], "skus": [], "fetched_at": crawl_started}
    failure = {"_id": "610000000007", "reason": "business_failure", "message": "商品不存在"}
    try:
        assert store.write([product], [failure], since=crawl_started) == (1, 0)  # the same batch
        assert store.write([], [failure], since=crawl_started) == (0, 0)  # another worker, later
        assert store.failures_yielded == 2
        assert db.failures.count_documents({}) == 0 and db.products.count_documents({}) == 1
        later = datetime.now(UTC)
        assert store.write([], [failure], since=later) == (0, 1)  # a later crawl: the product is older
        assert db.failures.count_documents({}) == 1
    finally:
        store.close()
