"""``python -m ali1688spider report`` against a real Mongo-protocol server holding a small dataset
written straight in the stored schema, with known counts, failures and price moves.

The dataset (times relative to now, window = the default 7 days):

- 5 products; 4 fetched in the window, 1 first seen in it, 4 changed in it;
- history: P1 10.00 → 11.00 → 12.50 (+25.0 %), P2 20.00 → 16.00 (-20.0 %; its earlier
  18.00 → 20.00 is before the window), P3 8.00 → 8.40 (+5.0 %), P4 5.00 → 5.50 → 5.00 (net 0, not a
  mover); 6 price changes in the window, plus a stock-only change;
- failures: gave_up 3 (2 in the window), business_failure 2 (2), invalid_reference 1 (1);
- runs: one 8 days ago, one yesterday (finish reason ``shutdown``, 2.35 products/s).

A second database (``SEARCH_DB``) holds only ``searches`` and ``listings``: a keyword query with
HTML in its keyword run 5, 3 and ½ days ago (and 9 days ago, before the window; one run stores
its query's keys in another order), a shop query run 2 days ago (failed) and yesterday (hits
without prices), and an image query run only before the window.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from PIL import Image
from pymongo import MongoClient

from ali1688spider.__main__ import main
from ali1688spider.demo.services import free_port, mongo_server
from ali1688spider.report import data as report_data
from ali1688spider.report.charts import _bin_edges
from ali1688spider.report.data import (
    PricePoint,
    connect,
    load,
    parse_window,
    percent_change,
    query_label,
    reference_price,
    tier_history,
    tiers_of,
)
from ali1688spider.report.html import money, percent, when

from .crawling import ROOT

NOW = datetime.now(UTC).replace(microsecond=0)
DB = "report_test"

P1, P2, P3, P4, P5 = (f"10000000000{n}" for n in range(1, 6))
SUBJECT_1 = '女士夏季<连衣裙> & 碎花 "新款"'
SUBJECT_3 = "儿童玩具积木<script>alert(1)</script>"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def tiers(*pairs: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"min_quantity": quantity, "price": Decimal128(price)} for quantity, price in pairs]


def url(product_id: str) -> str:
    return f"https://detail.1688.com/offer/{product_id}.html"


def product(product_id: str, subject: str, price_tiers: list[dict[str, Any]], *, fetched: float, first_seen: float,
            changed: float | None) -> dict[str, Any]:
    prices = [tier["price"].to_decimal() for tier in price_tiers]
    return {
        "_id": product_id, "subject": subject, "status": "published", "category_id": "1031910",
        "category_name": "连衣裙", "price_tiers": price_tiers,
        "skus": [{"sku_id": product_id + "01", "price": None, "stock": 120}],
        "min_price": Decimal128(min(prices)), "max_price": Decimal128(max(prices)), "stock": 120,
        "source_api": "product.get", "fetched_at": ago(fetched), "first_seen_at": ago(first_seen),
        "changed_at": ago(changed) if changed is not None else None, "content_hash": "h" + product_id,
        "detail_url": url(product_id), "seller": {"company_name": "义乌市某某贸易有限公司", "login_id": "seller1"},
    }


def move(product_id: str, days: float, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    return {"product_id": product_id, "at": ago(days), "source_api": "product.get",
            "changes": [{"field": "price_tiers", "old": old, "new": new},
                        {"field": f"skus.{product_id}01.stock", "old": 100, "new": 120}]}


def dataset() -> dict[str, list[dict[str, Any]]]:
    p1 = [tiers((1, "10.00"), (100, "9.00"), (1000, "8.50")),
          tiers((1, "11.00"), (100, "10.00"), (1000, "9.00")),
          tiers((1, "12.50"), (100, "11.00"), (1000, "9.80"))]
    return {
        "products": [
            product(P1, SUBJECT_1, p1[2], fetched=1, first_seen=30, changed=2),
            product(P2, "不锈钢保温杯 500ml", tiers((2, "16.00"), (50, "15.00")), fetched=1, first_seen=40, changed=4),
            product(P3, SUBJECT_3, tiers((10, "8.40")), fetched=0.5, first_seen=20, changed=1),
            product(P4, "手机壳", tiers((1, "5.00")), fetched=1, first_seen=6, changed=1),
            product(P5, "数据线", tiers((1, "3.20")), fetched=10, first_seen=50, changed=20),
        ],
        "product_history": [
            move(P1, 5, p1[0], p1[1]),
            move(P1, 2, p1[1], p1[2]),
            move(P2, 10, tiers((2, "18.00"), (50, "17.00")), tiers((2, "20.00"), (50, "19.00"))),
            move(P2, 4, tiers((2, "20.00"), (50, "19.00")), tiers((2, "16.00"), (50, "15.00"))),
            move(P3, 1, tiers((10, "8.00")), tiers((10, "8.40"))),
            move(P4, 3, tiers((1, "5.00")), tiers((1, "5.50"))),
            move(P4, 2, tiers((1, "5.50")), tiers((1, "5.00"))),
            {"product_id": P5, "at": ago(3), "source_api": "product.get",
             "changes": [{"field": "stock", "old": 10, "new": 0}]},
        ],
        "failures": [
            *({"_id": f"20000000000{n}", "reason": "gave_up", "error_code": "isp.temp-error", "message": "retries",
               "attempts": 7, "at": ago(days)} for n, days in ((1, 1), (2, 2), (3, 9))),
            *({"_id": f"30000000000{n}", "reason": "business_failure", "error_code": "500_004",
               "message": "商品不存在", "attempts": 1, "at": ago(days)} for n, days in ((1, 1), (2, 3))),
            {"_id": "abc<script>", "reason": "invalid_reference", "error_code": None, "message": "not an offer id",
             "attempts": 0, "at": ago(0.5)},
        ],
        "runs": [
            {"_id": "run-old", "spider": "product", "started_at": ago(8), "finished_at": ago(8) + timedelta(minutes=9),
             "finish_reason": "finished", "fetched": 100, "failed": 1, "failed_by_reason": {"gave_up": 1},
             "fresh": 100, "retried": 3, "token_refreshes": 0, "elapsed_seconds": 540.0,
             "products_per_second": 0.19},
            {"_id": "run-new", "spider": "product", "started_at": ago(1), "finished_at": ago(1) + timedelta(seconds=4),
             "finish_reason": "shutdown", "fetched": 4, "failed": 5,
             "failed_by_reason": {"gave_up": 2, "business_failure": 2, "invalid_reference": 1},
             "fresh": 1, "retried": 2, "token_refreshes": 1, "elapsed_seconds": 3.83, "products_per_second": 2.35,
             "latency": {"all": {"p50_ms": 52.3, "p95_ms": 181.0, "max_ms": 940.0}, "bad": "x"},
             "quota": {"mode": "auto", "ceiling": 0, "start_rate": 4.0, "rate": 20.0, "learned": 20.0, "found": True,
                       "cuts": 2, "raises": 3, "series": [
                           [1000, 1, 4, 0, 4.0], [1001, 1, 8, 0, 8.0], [1002, 1, 16, 0, 16.0], [1003, 1, 23, 3, 20.0],
                           ["garbage", 1], [1004, 0, 5, 0, 20.0], [1004, 2, 40, 0, float("inf")]]}},
        ],
    }


SEARCH_DB = "report_searches"
KEYWORD = '保温杯 <500ml> & "真空"'
QUERY_A = {"kind": "keyword", "keyword": KEYWORD, "country": "en", "sort": "price:asc", "price": ["10", "50"]}
QUERY_B = {"kind": "seller", "seller": "BBBxyz0123456789abcdef", "country": "ja"}
QUERY_C = {"kind": "image", "image": "sha256:" + "ab" * 32, "country": "en"}
LABEL_A = f'keyword "{KEYWORD}" (en, price:asc, ¥10–50)'
LABEL_B = "shop BBBxyz012345… (ja)"
SCRIPT_SUBJECT = "<script>alert(1)</script>真空杯"


def search(search_id: str, query: dict[str, Any], days: float, reason: str, total: int | None, pages: int, hits: int,
           unchanged: int, details: int) -> dict[str, Any]:
    return {"_id": search_id, "query": query, "spider": {"keyword": "search", "seller": "shop"}.get(query["kind"],
            "image"), "started_at": ago(days), "finished_at": ago(days) + timedelta(seconds=30),
            "finish_reason": reason, "total_records": total, "pages": pages, "hits": hits, "unchanged": unchanged,
            "details": details}


def hit(search_id: str, query: dict[str, Any], rank: int, offer_id: str, *, price: str | None = None,
        sold: int | None = None, rate: float | None = None, subject: str = "不锈钢保温杯") -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": f"{search_id}:{rank}", "search_id": search_id, "query": query, "offer_id": offer_id,
                           "rank": rank, "page": 1, "subject": subject, "subject_trans": "Thermos cup",
                           "seen_at": NOW}
    if price is not None:
        doc["price"] = Decimal128(price)
    if sold is not None:
        doc["month_sold"] = sold
    if rate is not None:
        doc["repurchase_rate"] = rate
    return doc


def offer(n: int) -> str:
    return f"6000000000{n:02d}"


def search_dataset() -> dict[str, list[dict[str, Any]]]:
    """Query A's latest run (s-a3) has 12 hits: rank 2 and 4 sold 3000 a month, rank 1 and 12 sold
    120, ranks 5-11 sold 10 × rank, rank 3 no month_sold, rank 4 no price."""
    reordered = dict(reversed(list(QUERY_A.items())))  # the same query, its keys in another order
    latest = [hit("s-a3", QUERY_A, 1, offer(1), price="19.90", sold=120, rate=12.5),
              hit("s-a3", QUERY_A, 2, offer(2), price="25.00", sold=3000, rate=30.0, subject=SCRIPT_SUBJECT),
              hit("s-a3", QUERY_A, 3, offer(3), price="12.00"),
              hit("s-a3", QUERY_A, 4, offer(4), sold=3000),
              *(hit("s-a3", QUERY_A, rank, offer(rank), price=f"{10 + rank}.50", sold=rank * 10)
                for rank in range(5, 13))]
    return {
        "searches": [
            search("s-a0", QUERY_A, 9, "last_page", 900, 1, 10, 0, 10),
            search("s-a1", QUERY_A, 5, "empty_page", 1100, 1, 20, 0, 20),
            search("s-a2", reordered, 3, "max_results", 1300, 2, 40, 30, 10),
            search("s-a3", QUERY_A, 0.5, "last_page", 1234, 1, 12, 4, 8),
            search("s-b1", QUERY_B, 2, "failed", None, 0, 0, 0, 0),
            search("s-b2", QUERY_B, 1, "last_page", 3, 1, 3, 0, 3),
            search("s-c1", QUERY_C, 10, "last_page", 50, 1, 50, 0, 50),
        ],
        "listings": [
            *latest,
            hit("s-a2", reordered, 1, "699999999999", price="99.00", sold=99999),  # not the latest run
            hit("s-b2", QUERY_B, 1, offer(21), sold=5, rate=1.0),
            hit("s-b2", QUERY_B, 2, "abc<1>", sold=7),
            hit("s-b2", QUERY_B, 3, offer(23)),
        ],
    }


@pytest.fixture(scope="module")
def mongo() -> Iterator[str]:
    with mongo_server() as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.url, tz_aware=True)
        for name, docs in dataset().items():
            client[DB][name].insert_many(docs)
        for name, docs in search_dataset().items():
            client[SEARCH_DB][name].insert_many(docs)
        client["emptydb"]["other"].insert_one({"_id": 1})  # a database with no products, failures or runs
        client.close()
        yield server.url


@pytest.fixture(scope="module")
def page(mongo: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--mongo-uri", mongo, "--database", DB, "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def search_page(mongo: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "searches.html"
    assert main(["report", "--mongo-uri", mongo, "--database", SEARCH_DB, "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Each ``<table class=…>``'s rows as lists of cell texts, and the totals cards."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, str] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self._card: str | None = None
        self._card_text: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "table":
            self._table = attr.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attr.get("src") or "")
        elif tag == "a":
            self.links.append(attr.get("href") or "")
        elif tag == "div" and attr.get("class") in ("n", "l"):
            self._card = attr["class"]
            self._card_text[self._card] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append(self._row)
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._card is not None:
            if self._card == "l":
                self.cards[self._card_text["l"]] = self._card_text["n"]
            self._card = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._card is not None:
            self._card_text[self._card] += data


def test_totals(page: str) -> None:
    cards = Tables(page).cards
    assert cards["products stored"] == "5"
    assert cards["products fetched in the window"] == "4"
    assert cards["new products in the window"] == "1"
    assert cards["products changed in the window"] == "4"
    assert cards["ids failing now"] == "6"
    assert cards["failures recorded in the window"] == "5"
    assert cards["runs in the window"] == "1"
    assert cards["fetched / failed by those runs"] == "4 / 5"
    last = next(label for label in cards if label.startswith("last run's finish reason"))
    assert cards[last] == "shutdown"
    assert cards["last run's rate (products per second)"] == "2.35/s"
    runs = Tables(page).tables["runs"]
    assert [row[1:6] for row in runs[1:]] == [["run-new", "product", "shutdown", "4", "5"]]
    assert runs[0][-1] == "latency p50 / p95" and runs[1][-1] == "52 / 181 ms"


def test_failures_by_reason(page: str) -> None:
    rows = Tables(page).tables["failures"]
    assert rows[0] == ["reason", "failing now", "recorded in the window", "share", "latest"]
    assert [row[:4] for row in rows[1:]] == [
        ["gave_up", "3", "2", "50.0%"],
        ["business_failure", "2", "2", "33.3%"],
        ["invalid_reference", "1", "1", "16.7%"],
        ["total", "6", "5", "100.0%"],
    ]
    assert rows[1][4] == ago(1).strftime("%Y-%m-%d %H:%M UTC")


def test_top_movers(page: str) -> None:
    rows = Tables(page).tables["movers"][1:]
    assert [row[:7] for row in rows] == [
        ["1", P1, SUBJECT_1, "10.00", "12.50", "+25.0%", "2"],
        ["2", P2, "不锈钢保温杯 500ml", "20.00", "16.00", "-20.0%", "1"],
        ["3", P3, SUBJECT_3, "8.00", "8.40", "+5.0%", "1"],
    ]  # P4 went 5.00 → 5.50 → 5.00: moved, but not net; P2's move before the window is not counted
    assert "6 changes" in page


def test_database_text_is_escaped(page: str) -> None:
    assert "女士夏季&lt;连衣裙&gt; &amp; 碎花 &quot;新款&quot;" in page
    assert "<连衣裙>" not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_charts_are_embedded_pngs(page: str) -> None:
    images = Tables(page).images
    assert len(images) == 3
    for src in images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 300
    # the tier chart is of the top mover by default, with its current tiers in the caption
    assert f'alt="price tiers over time of product {P1}"' in page
    assert "Current tiers: ≥ 1: ¥12.50, ≥ 100: ¥11.00, ≥ 1000: ¥9.80." in page


def test_the_last_runs_call_rate(page: str, mongo: str) -> None:
    assert 'alt="calls per second of the last run"' in page
    assert ("Started at 4 calls/s, ended at 20 calls/s (the quota found: 20 calls/s); 2 cuts after a throttle, "
            "3 raises.") in page
    db = connect(mongo, DB)
    try:
        quota = load(db, uri=mongo, window=timedelta(days=7), now=NOW).last_run.quota
    finally:
        db.client.close()
    # the malformed points of a hand-edited document are left out; an infinite rate reads as 0
    assert quota is not None and [point[:4] for point in quota.series] == [
        (1000, 1, 4, 0), (1001, 1, 8, 0), (1002, 1, 16, 0), (1003, 1, 23, 3), (1004, 2, 40, 0)]
    assert quota.series[-1][4] == 0.0


def test_self_contained(page: str) -> None:
    parsed = Tables(page)
    assert set(parsed.links) == {url(P1), url(P2), url(P3)}
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {url(P1), url(P2), url(P3)}
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    srcs = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", page)
    assert srcs and all(src.startswith("data:image/png;base64,") for src in srcs)


def test_data_behind_the_charts(mongo: str) -> None:
    db = connect(mongo, DB)
    try:
        data = load(db, uri=mongo, window=timedelta(days=7), now=NOW)
        history = tier_history(db, P1)
    finally:
        db.client.close()
    assert sorted(round(value, 1) for value in data.changes_pct) == [
        Decimal("-20.0"), Decimal("-9.1"), Decimal("5.0"), Decimal("10.0"), Decimal("10.0"), Decimal("13.6")]
    assert data.history is not None and data.history.product_id == P1
    # first seen with the old tiers, then each change, then the current tiers at the last fetch
    assert history is not None and history.quantities == [1, 100, 1000]
    assert history.points == [
        PricePoint(ago(30), {1: Decimal("10.00"), 100: Decimal("9.00"), 1000: Decimal("8.50")}),
        PricePoint(ago(5), {1: Decimal("11.00"), 100: Decimal("10.00"), 1000: Decimal("9.00")}),
        PricePoint(ago(2), {1: Decimal("12.50"), 100: Decimal("11.00"), 1000: Decimal("9.80")}),
        PricePoint(ago(1), {1: Decimal("12.50"), 100: Decimal("11.00"), 1000: Decimal("9.80")}),
    ]
    assert all(isinstance(price, Decimal) for point in history.points for price in point.tiers.values())


def test_no_searches_no_section(page: str) -> None:
    assert 'id="searches"' not in page and "search-" not in page


def test_search_sections(search_page: str) -> None:
    assert '<h2 id="searches">Searches (2 recent queries)</h2>' in search_page
    # most recently run first; query C ran only before the window
    assert re.findall(r'<section id="(search-\d+)"><h3>(.*?)</h3>', search_page) == [
        ("search-1", escape(LABEL_A)), ("search-2", escape(LABEL_B))]
    assert "image sha256" not in search_page
    tables = Tables(search_page).tables
    assert tables["search-runs-1"] == [  # newest first; s-a2 stored the same query with its keys reordered
        ["started", "finish reason", "pages", "hits", "reported", "unchanged", "details"],
        [when(ago(0.5)), "last_page", "1", "12", "1,234", "4", "8"],
        [when(ago(3)), "max_results", "2", "40", "1,300", "30", "10"],
        [when(ago(5)), "empty_page", "1", "20", "1,100", "0", "20"],
    ]
    assert tables["search-runs-2"][1:] == [[when(ago(1)), "last_page", "1", "3", "3", "0", "3"],
                                           [when(ago(2)), "failed", "0", "0", "—", "0", "0"]]


def test_search_top_offers_by_month_sold(search_page: str) -> None:
    tables = Tables(search_page).tables
    top = tables["search-top-1"]
    assert top[0] == ["rank", "offer", "subject", "price", "month_sold", "repurchase"]
    # ties by rank; rank 3 (no month_sold) and rank 5 (the 11th) are left out; s-a2's hit is not the latest run's
    assert [row[0] for row in top[1:]] == ["2", "4", "1", "12", "11", "10", "9", "8", "7", "6"]
    assert top[1] == ["2", offer(2), SCRIPT_SUBJECT, "25.00", "3,000", "30.0%"]
    assert top[2] == ["4", offer(4), "不锈钢保温杯", "—", "3,000", "—"]
    assert top[3][3:] == ["19.90", "120", "12.5%"]
    assert [row[:2] for row in tables["search-top-2"][1:]] == [["2", "abc<1>"], ["1", offer(21)]]
    links = set(Tables(search_page).links)
    assert links == {f"https://detail.1688.com/offer/{offer(n)}.html" for n in (1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 21)}
    assert "699999999999" not in search_page


def test_search_charts_and_prices(search_page: str) -> None:
    images = Tables(search_page.split('<h2 id="searches">')[1]).images
    assert len(images) == 3  # hits of A and B, prices of A (B's hits have no price)
    for src in images:
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 300
    assert search_page.count(f'alt="hits per run of {escape(LABEL_A)}"') == 1
    assert search_page.count(f'alt="hits per run of {escape(LABEL_B)}"') == 1
    assert search_page.count(f'alt="price distribution of the hits of {escape(LABEL_A)}"') == 1
    assert "11 prices (CNY) of the 12 hits stored for search s-a3" in search_page
    assert "No prices among its 3 stored hits." in search_page


def test_search_text_is_escaped(search_page: str) -> None:
    assert "keyword &quot;保温杯 &lt;500ml&gt; &amp; &quot;真空&quot;&quot;" in search_page
    assert "<500ml>" not in search_page and "abc<1>" not in search_page
    assert "<script" not in search_page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;真空杯" in search_page


def test_searches_data(mongo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(mongo, SEARCH_DB)
    try:
        data = load(db, uri=mongo, window=timedelta(days=7), now=NOW)
        everything = load(db, uri=mongo, window=None, now=NOW)
        monkeypatch.setattr(report_data, "MAX_SEARCHES", 1)
        capped = load(db, uri=mongo, window=None, now=NOW)
    finally:
        db.client.close()
    first, second = data.searches
    assert [run.search_id for run in first.runs] == ["s-a1", "s-a2", "s-a3"]  # oldest first
    assert first.query == QUERY_A and first.latest.total_records == 1234
    assert first.prices[:3] == [Decimal("19.90"), Decimal("25.00"), Decimal("12.00")]
    assert all(isinstance(price, Decimal) for price in first.prices) and len(first.prices) == 11
    assert second.label == LABEL_B and second.runs[0].total_records is None and second.prices == []
    assert [searched.label for searched in everything.searches] == [
        LABEL_A, LABEL_B, f"image sha256:{'ab' * 6}… (en)"]
    assert [run.search_id for run in everything.searches[0].runs] == ["s-a0", "s-a1", "s-a2", "s-a3"]
    assert [searched.label for searched in capped.searches] == [LABEL_A]


def test_query_labels() -> None:
    assert query_label({"kind": "keyword", "keyword": "保温杯", "country": "en", "sort": "price:asc"}) == \
        'keyword "保温杯" (en, price:asc)'
    assert query_label({"kind": "seller", "seller": "BBB", "country": "ja"}) == "shop BBB (ja)"
    assert query_label({"kind": "image", "image": "sha256:abcdef0123456789", "keyword": "杯", "country": "en",
                        "price": [None, "50"], "category": 123, "filters": ["a", "b"]}) == \
        'image sha256:abcdef012345… matching "杯" (en, ≤ ¥50, category 123, filter a,b)'
    assert query_label({"kind": "keyword", "keyword": "x", "price": ["10", None]}) == 'keyword "x" (≥ ¥10)'
    assert query_label({}) == "search"


@pytest.mark.e2e  # runs the report CLI
def test_cli_subprocess_with_env_defaults_and_chosen_product(mongo: str, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "p2.html"
    env = {**os.environ, "MONGO_URI": mongo, "MONGO_DATABASE": DB, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "ali1688spider", "report", "--product", P2, "--since", "30d", "--top", "2",
         "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"report: wrote {out} (5 products, 6 failing ids, 2 movers")
    html = out.read_text(encoding="utf-8")
    assert f'alt="price tiers over time of product {P2}"' in html
    rows = Tables(html).tables["movers"][1:]
    # over 30 days P2 went 18.00 → 20.00 → 16.00: net -11.1 %; --top 2 leaves P3 out
    assert [row[:6] for row in rows] == [
        ["1", P1, SUBJECT_1, "10.00", "12.50", "+25.0%"],
        ["2", P2, "不锈钢保温杯 500ml", "18.00", "16.00", "-11.1%"],
    ]
    assert "7 changes" in html
    assert Tables(html).cards["runs in the window"] == "2"


@pytest.mark.e2e  # runs the report CLI
def test_unreachable_mongo_exits_2_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "never.html"
    result = subprocess.run(
        [sys.executable, "-m", "ali1688spider", "report", "--mongo-uri", f"mongodb://127.0.0.1:{port}",
         "--timeout", "0.5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"report: error: MongoDB at mongodb://127.0.0.1:{port} cannot be reached: ")
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--database", "emptydb"], "report: error: database 'emptydb' at mongodb://127.0.0.1:{port} holds no products"),
    (["--database", DB, "--product", "999"], "report: error: product '999' is in neither products nor product_history"),
])
def test_unusable_database_exits_2(mongo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], message: str) -> None:
    out = tmp_path / "never.html"
    assert main(["report", "--mongo-uri", mongo, *args, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith(message.format(port=mongo.rsplit(":", 1)[1]))
    assert not out.exists()


def test_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["report", "--since", "7x"])
    assert stopped.value.code == 2
    assert "not a time window: '7x'" in capsys.readouterr().err


def test_helpers() -> None:
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("2W") == timedelta(weeks=2)
    assert parse_window("all") is None
    assert parse_window("1.5d") == timedelta(hours=36)  # the one duration grammar of config.py
    for bad in ("", "0d", "0", "d7", "7x", "-1d", "all days"):
        with pytest.raises(ValueError):
            parse_window(bad)
    stored = [{"min_quantity": 100, "price": Decimal128("9.005")}, {"min_quantity": 1, "price": Decimal128("10.1")},
              {"min_quantity": 5, "price": None}]
    assert tiers_of(stored) == {1: Decimal("10.1"), 100: Decimal("9.005")}
    assert reference_price(stored) == Decimal("10.1")
    assert reference_price([]) is None and reference_price(None) is None
    assert percent_change(Decimal("0"), Decimal("1")) is None
    assert money(Decimal("9.005")) == "9.01" and money(Decimal("0.1")) == "0.10" and money(None) == "—"
    assert percent(Decimal("13.636")) == "+13.6%" and percent(Decimal("-9.09")) == "-9.1%"
    assert percent(Decimal("0.01")) == "0.0%"
    for values in ([-20.0, -9.09, 5.0, 13.6], [0.5], [-3.0, -1.0], [i * 0.37 - 50 for i in range(1000)]):
        edges = _bin_edges(values)
        assert 0.0 in edges and edges[0] <= min(values) and edges[-1] >= max(values)
        assert 2 <= len(edges) - 1 <= 40
        assert len({round(b - a, 9) for a, b in itertools.pairwise(edges)}) == 1  # one width


def test_a_product_seen_for_the_first_time_is_new_not_changed(mongo: str, tmp_path: Path) -> None:
    """One crawl of 300 offers is 300 new products and 0 changed ones (issue 17)."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo, tz_aware=True)
    first, later = ago(2), ago(1)
    client["firstcrawl"]["products"].insert_many([
        product(offer(n), "新品", tiers((1, "5.00")), fetched=2, first_seen=2, changed=2) for n in range(3)])
    client["firstcrawl"]["products"].update_one({"_id": offer(0)}, {"$set": {"changed_at": later}})
    client.close()
    assert first < later
    out = tmp_path / "first.html"
    assert main(["report", "--mongo-uri", mongo, "--database", "firstcrawl", "--out", str(out)]) == 0
    cards = Tables(out.read_text(encoding="utf-8")).cards
    assert cards["new products in the window"] == "3"
    assert cards["products changed in the window"] == "1"


def test_no_messages_no_section(page: str) -> None:
    assert 'id="messages"' not in page


def test_change_messages_section(mongo: str, tmp_path: Path) -> None:
    """Messages in the window by topic, and how soon the changes they led to were stored."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo, tz_aware=True)
    db = client["messagesdb"]
    born = ago(1)
    db["products"].insert_one(product(offer(0), "保温杯", tiers((1, "5.00")), fetched=1, first_seen=2, changed=1))
    db["messages"].insert_many([
        {"_id": "1", "topic": "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", "received_at": born, "deliveries": 2,
         "handled_at": born, "queued": [offer(0), offer(1)]},
        {"_id": "2", "topic": "FENXIAO_PRICE_CHANGE", "received_at": born, "deliveries": 1, "queued": []},
        {"_id": "3", "topic": "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", "received_at": born, "deliveries": 1,
         "handled_at": born, "queued": [offer(2)]},
        {"_id": "4", "topic": "<b>ODD</b>", "received_at": ago(100), "deliveries": 1, "handled_at": born},  # before
    ])
    db["product_history"].insert_many([
        {"_id": f"h{n}", "product_id": offer(n), "at": born + timedelta(seconds=delay), "source_api": "product.get",
         "changes": [], "changed_by": {"message": "1", "born": born}} for n, delay in enumerate((2, 4, 30))])
    client.close()
    out = tmp_path / "messages.html"
    assert main(["report", "--mongo-uri", mongo, "--database", "messagesdb", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    found = Tables(page)
    assert found.cards["messages received"] == "3"
    assert found.cards["offers queued by them"] == "3"
    assert found.cards["changes they led to"] == "3"
    assert found.cards["message to stored change, p50 / p95"] == "4.0 s / 30.0 s"
    assert found.cards["delivered more than once"] == "1"
    assert found.cards["stored, not handled yet"] == "1"
    assert found.tables["messages"] == [["topic", "messages"], ["PRODUCT_RELATION_VIEW_PRODUCT_CHANGE", "2"],
                                        ["FENXIAO_PRICE_CHANGE", "1"]]
    assert "<b>ODD" not in page
