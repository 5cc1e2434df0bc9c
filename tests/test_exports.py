"""Issue 14: what users keep. ``-a fields`` / ``ALI1688_FIELDS`` and ``ALI1688_STORE_RAW`` shape
the stored documents; ``-O products.jsonl`` / ``.csv`` export the same documents with exact
decimal prices."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
import pytest_twisted

from ali1688spider.store.fields import Selection, field_names

from .crawling import CATALOGUE, crawl_env, crawl_settings, fresh_ids, run_crawl, scrapy_crawl


def test_a_selection_keeps_the_identity_and_the_chosen_fields():
    selection = Selection.parse(" subject, skus.price ,stock")
    doc = {"product_id": "1", "source_api": "product.get", "available": True, "detail_url": "u", "subject": "s",
           "stock": 3, "images": ["a"], "skus": [{"sku_id": "9", "price": Decimal("1.5"), "stock": 2}],
           "seller": {"login_id": "x"}}
    assert selection.apply(doc) == {"product_id": "1", "source_api": "product.get", "available": True,
                                    "detail_url": "u", "subject": "s", "stock": 3,
                                    "skus": [{"sku_id": "9", "price": Decimal("1.5")}]}
    assert Selection.parse("skus,skus.price").apply(doc)["skus"] == doc["skus"]  # the whole part wins
    assert "skus.package" in field_names() and "seller.scores" in field_names() and "raw" not in field_names()


@pytest.mark.parametrize("text", ["", " , ", "subjet", "skus.colour", "raw", "subject,\ud800"])
def test_an_unknown_field_is_refused_with_the_names_there_are(text):
    with pytest.raises(ValueError) as refused:
        Selection.parse(text)
    assert "\n" not in str(refused.value)
    assert text.strip(" ,") == "" or "choose from product_id" in str(refused.value)


@pytest_twisted.ensureDeferred
async def test_only_the_chosen_fields_are_stored_and_history_still_works(emulator_factory, database):
    uri, name, db = database
    emulator = emulator_factory()  # its own: the test moves the epoch
    ids = fresh_ids(8)
    settings = crawl_settings(emulator.url, uri, name, ALI1688_STORE_RAW=False)
    await run_crawl(settings, ids=",".join(ids), fields="subject,price_tiers,skus.price,stock")
    doc = db.products.find_one({"_id": ids[0]})
    assert set(doc) == {"_id", "source_api", "available", "detail_url", "subject", "price_tiers", "skus", "stock",
                        "fetched_at", "first_seen_at", "changed_at", "content_hash"}
    assert all(set(sku) == {"sku_id", "price"} for sku in doc["skus"])
    emulator.post("/_sandbox/epoch")  # prices and stock of some offers move
    await run_crawl(settings, ids=",".join(ids), fields="subject,price_tiers,skus.price,stock")
    moved = CATALOGUE.drifted_ids(ids, 1)
    assert moved and db.product_history.count_documents({"product_id": {"$in": [str(i) for i in moved]}}) == len(moved)


def test_jsonl_and_csv_exports_carry_exact_prices(emulator, mongo, tmp_path):
    uri, _ = mongo
    ids = fresh_ids(6)
    env = crawl_env(emulator.url, uri, "exports_db", ALI1688_STORE_RAW="false")
    for suffix in ("jsonl", "csv"):
        done = scrapy_crawl(env, "-a", f"ids={','.join(ids)}", "-O", str(tmp_path / f"products.{suffix}"))
        assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "products.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(row["product_id"] for row in rows) == sorted(ids)
    with (tmp_path / "products.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(row["product_id"] for row in table) == sorted(ids)
    for row in rows:
        offer = CATALOGUE.offer(row["product_id"])
        assert "raw" not in row
        assert isinstance(row["min_price"], str) and Decimal(row["min_price"]) > 0  # a decimal string
        for tier in row["price_tiers"]:
            assert isinstance(tier["price"], str)
        cells = next(cell for cell in table if cell["product_id"] == row["product_id"])
        assert cells["min_price"] == row["min_price"] and cells["available"] in ("true", "false")
        assert json.loads(cells["skus"]) == row["skus"] and json.loads(cells["price_tiers"]) == row["price_tiers"]
        assert len(row["skus"]) == len(offer.skus)
