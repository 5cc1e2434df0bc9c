"""``python -m ali1688spider report`` against a real Mongo-protocol server holding a small dataset
written straight in the stored schema, with known counts, failures and price moves.

The dataset (times relative to now, window = the default 7 days):

- 5 products; 4 fetched in the window, 1 first seen in it, 4 changed in it;
- history: P1 10.00 → 11.00 → 12.50 (+25.0 %), P2 20.00 → 16.00 (-20.0 %; its earlier
  18.00 → 20.00 is before the window), P3 8.00 → 8.40 (+5.0 %), P4 5.00 → 5.50 → 5.00 (net 0, not a
  mover); 6 price changes in the window, plus a stock-only change;
- failures: gave_up 3 (2 in the window), business_failure 2 (2), invalid_reference 1 (1);
- runs: one 8 days ago, one yesterday (finish reason ``shutdown``, 2.35 products/s).
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
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from PIL import Image
from pymongo import MongoClient

from ali1688spider.__main__ import main
from ali1688spider.demo.services import free_port, mongo_server
from ali1688spider.report.charts import _bin_edges
from ali1688spider.report.data import (
    PricePoint,
    connect,
    load,
    parse_window,
    percent_change,
    reference_price,
    tier_history,
    tiers_of,
)
from ali1688spider.report.html import money, percent

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


@pytest.fixture(scope="module")
def mongo() -> Iterator[str]:
    with mongo_server() as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.url, tz_aware=True)
        for name, docs in dataset().items():
            client[DB][name].insert_many(docs)
        client["emptydb"]["other"].insert_one({"_id": 1})  # a database with no products, failures or runs
        client.close()
        yield server.url


@pytest.fixture(scope="module")
def page(mongo: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--mongo-uri", mongo, "--database", DB, "--out", str(out)]) == 0
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
