"""Issue 15: discovery by keyword, shop and image — the client side (aop/search.py) on replies
built by hand as PROTOCOL.md §7 documents them, and whole searches against the emulator."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st

from ali1688spider.aop.classify import Outcome, classify_response
from ali1688spider.aop.errors import BusinessFailure
from ali1688spider.aop.normalize import NormalizationError
from ali1688spider.aop.search import (
    IMAGE_QUERY,
    IMAGE_UPLOAD,
    KEYWORD_QUERY,
    SELLER_QUERY,
    SearchQuery,
    parse_filters,
    parse_price_range,
    parse_sort,
    read_listing,
    read_page,
    upload_params,
)
from ali1688spider.inputs import parse_search_entry
from ali1688spider.monitoring.readings import accounting
from ali1688spider.spiders.image import ImageSpider
from ali1688spider.spiders.search import SearchSpider
from ali1688spider.spiders.searching import OPTIONS, make_search
from ali1688spider.spiders.shop import ShopSpider

from .crawling import CATALOGUE, ROOT, clean_env, crawl_env, crawl_settings, loopback_server, run_crawl
from .test_bad_input import FUZZ, json_values

# The documented sample hit (PROTOCOL.md §7), as the gateway sends it.
HIT = {"offerId": 966545615266, "subject": "usb3.0扩展器集多插口扩展坞分线器",
       "subjectTrans": "USB3.0 extender multi-port docking station splitter",
       "imageUrl": "https://cbu01.alicdn.com/img/ibank/O1CN01IR7NxZ27wOYdGYFd5_!!2219782677861-0-cib.jpg",
       "priceInfo": {"price": "2.00", "consignPrice": "4", "jxhyPrice": None},
       "monthSold": 17105, "repurchaseRate": "13%", "tradeScore": "4.7", "minOrderQuantity": 1,
       "isOnePsale": True, "isJxhy": False, "modifyDate": "2025-08-30 14:02:11",
       "sellerDataInfo": {"compositeServiceScore": "4.5", "repeatPurchasePercent": "38%", "tradeMedalLevel": "x"},
       "promotionURL": "https://detail.1688.com/offer/966545615266.html?fromkv=refer:HVEV&kjSource=pc"}


def wrapped(page: dict[str, Any], success: Any = True) -> bytes:
    return json.dumps({"result": {"success": success, "code": "200", "message": "成功", "result": page}}).encode()


def test_the_documented_hit_is_read():
    listing = read_listing(HIT, rank=3, page=1)
    assert (listing.offer_id, listing.rank, listing.price, listing.consign_price) == (
        "966545615266", 3, Decimal("2.00"), Decimal("4"))
    assert listing.promotion_price is None and listing.month_sold == 17105 and listing.repurchase_rate == 13.0
    assert listing.modify_date == datetime(2025, 8, 30, 6, 2, 11, tzinfo=UTC)  # Beijing time, stored as UTC
    assert listing.trade_score == Decimal("4.7")
    assert listing.seller_scores == {"compositeServiceScore": Decimal("4.5"), "repeatPurchasePercent": Decimal("38")}


@pytest.mark.parametrize("api", [KEYWORD_QUERY, SELLER_QUERY, IMAGE_QUERY])
@pytest.mark.parametrize("success", [True, "true"])
def test_a_page_in_either_success_spelling(api, success):
    body = wrapped({"totalRecords": 2000, "totalPage": 41, "pageSize": 50, "currentPage": 41, "data": []}, success)
    result = classify_response(200, body, api)
    assert result.outcome is Outcome.OK
    page = read_page(result.payload, 41)
    assert (page.total_records, page.total_pages, page.current_page, page.last) == (2000, 41, 41, True)


def test_the_pages_holding_records_are_asked_for():
    """``totalPage`` is one too high when the records fill the last page; the count decides."""
    query = SearchQuery(kind="keyword", target="杯", country="en", max_results=2000, page_size=50)
    assert query.last_page(read_page({"totalRecords": 2000, "totalPage": 41, "data": [HIT]}, 1)) == 40
    assert query.last_page(read_page({"totalRecords": 37, "totalPage": 2, "data": [HIT]}, 1)) == 1
    assert query.last_page(read_page({"totalRecords": 0, "totalPage": 1, "data": []}, 1)) == 1
    few = SearchQuery(kind="keyword", target="杯", country="en", max_results=120, page_size=50)
    assert few.last_page(read_page({"totalRecords": 2000, "totalPage": 41, "data": [HIT]}, 1)) == 3
    assert not read_page({"data": [HIT]}, 1).counted  # no totals: page by page


def test_paging_stops_at_the_last_page_or_an_empty_one():
    assert not read_page({"totalRecords": 37, "totalPage": 2, "currentPage": 1, "data": [HIT]}, 1).last
    assert read_page({"totalRecords": 37, "totalPage": 2, "currentPage": 2, "data": [HIT]}, 2).last
    assert read_page({"totalRecords": 2000, "totalPage": 41, "currentPage": 5, "data": []}, 5).last
    assert read_page({}, 1).last  # nothing at all: no hits, one page


@pytest.mark.parametrize("reply", [
    {"result": {"success": False, "code": "SELLER_NOT_FOUND", "message": "卖家不存在"}},
    {"result": {"success": "false", "code": "SELLER_NOT_FOUND", "errorMessage": "卖家不存在"}},
])
def test_a_refused_search_keeps_its_code_and_text(reply):
    with pytest.raises(BusinessFailure) as failed:
        SELLER_QUERY.product_payload(reply)
    assert (failed.value.code, failed.value.message) == ("SELLER_NOT_FOUND", "卖家不存在")


def test_the_upload_gives_the_image_id_as_text():
    reply = {"result": {"success": "true", "code": "200", "message": "成功", "result": "1164408192156408878"}}
    assert IMAGE_UPLOAD.product_payload(reply) == {"imageId": "1164408192156408878"}
    with pytest.raises(BusinessFailure):
        IMAGE_UPLOAD.product_payload({"result": {"success": "true", "result": ""}})


def test_query_parameters():
    query = SearchQuery(kind="keyword", target="保温杯", country="en", max_results=120, page_size=50,
                        sort=parse_sort("price:asc"), price=parse_price_range("10-50"), category=1031910,
                        filters=parse_filters("shipIn48Hours, certifiedFactory"))
    assert query.params(2) == {"offerQueryParam": {
        "keyword": "保温杯", "beginPage": 2, "pageSize": 50, "country": "en", "sort": '{"price": "asc"}',
        "priceStart": "10", "priceEnd": "50", "categoryId": 1031910, "filter": "shipIn48Hours,certifiedFactory"}}
    assert query.describe() == {"kind": "keyword", "keyword": "保温杯", "country": "en", "sort": "price:asc",
                                "price": ["10", "50"], "category": 1031910,
                                "filters": ["shipIn48Hours", "certifiedFactory"]}
    shop = SearchQuery(kind="seller", target="BBBabc", country="ja", max_results=10, page_size=10, keyword="杯")
    assert shop.params(1) == {"offerQueryParam": {"sellerOpenId": "BBBabc", "beginPage": 1, "pageSize": 10,
                                                  "country": "ja", "keyword": "杯"}}


@pytest.mark.parametrize(("call", "says"), [
    (lambda: parse_sort("cheap"), "sort must be"),
    (lambda: parse_sort("price:up"), "sort must be"),
    (lambda: parse_price_range("50-10"), "price must be"),
    (lambda: parse_price_range("-"), "price must be"),
    (lambda: parse_price_range("ten-20"), "price must be"),
    (lambda: parse_filters("ship in 48"), "filter names"),
    (lambda: SearchQuery(kind="keyword", target="  ", country="en"), "keyword (q) is empty"),
    (lambda: SearchQuery(kind="keyword", target="杯", country="en", page_size=51), "page_size"),
    (lambda: upload_params(b"GIF8"), "not a JPEG"),
    (lambda: upload_params(b"\xff\xd8\xff" + bytes(3 * 2**20)), "at most 3 MiB"),
])
def test_bad_search_arguments_say_what_is_wrong(call, says):
    with pytest.raises(ValueError) as refused:
        call()
    assert says in str(refused.value)


def test_sort_names_are_read_in_any_case():
    assert parse_sort("MONTHSOLD:DESC") == ("monthSold", "desc")
    assert parse_sort("rePurchaseRate") == ("rePurchaseRate", "desc")
    assert parse_price_range("10-") == (Decimal("10"), None) and parse_price_range("-50") == (None, Decimal("50"))


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(HIT)), json_values, max_size=8))
def test_any_hit_is_a_listing_or_names_its_field(changes):
    """Every field of a hit replaced by any JSON value: a Listing, or a NormalizationError that
    names the field — never another exception (one bad hit must not cost its page)."""
    try:
        listing = read_listing({**HIT, **changes}, rank=1, page=1)
    except NormalizationError as exc:
        assert exc.field
        return
    assert listing.offer_id.isdigit()


@FUZZ
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(["totalRecords", "totalPage", "currentPage", "data"]),
                                              json_values)))
def test_any_page_is_a_page_or_unreadable(payload):
    try:
        page = read_page(payload if isinstance(payload, dict) else {"data": payload}, 1)
    except NormalizationError:
        return
    assert page.total_pages >= 0 and all(isinstance(item, dict) for item in page.items)


# -- whole searches against the emulator ----------------------------------------------------------

def listing_ids(db: Any, **query: Any) -> list[str]:
    return [doc["offer_id"] for doc in db.listings.find(query).sort("rank", 1)]


@pytest_twisted.ensureDeferred
async def test_a_keyword_search_stores_its_hits_and_only_changed_offers_are_fetched_again(emulator_factory, database):
    """Three runs of one search: the hits in ``listings`` and ``searches``, the offers in
    ``products``; then nothing fetched again (every listing older than its product); then, after an
    epoch changes ~30 % of the offers, exactly those are fetched."""
    emulator = emulator_factory()
    uri, name, db = database
    settings = crawl_settings(emulator.url, uri, name)
    crawler = await run_crawl(settings, SearchSpider, q="批发", country="en", max_results="120")
    found = listing_ids(db)
    assert len(found) == len(set(found)) == 120
    assert [doc["rank"] for doc in db.listings.find().sort("rank", 1)] == list(range(1, 121))
    assert sorted({doc["page"] for doc in db.listings.find()}) == [1, 2, 3]
    search = db.searches.find_one()
    assert (search["finish_reason"], search["total_records"], search["pages"], search["hits"], search["details"]) == (
        "max_results", 2000, 3, 120, 120)
    assert search["query"] == {"kind": "keyword", "keyword": "批发", "country": "en"}
    assert db.products.count_documents({"_id": {"$in": found}, "source_api": "crossborder"}) == 120
    hit = db.listings.find_one({"rank": 1})
    product = db.products.find_one({"_id": hit["offer_id"]})
    assert hit["price"].to_decimal() == product["price_tiers"][0]["price"].to_decimal()
    assert hit["subject"] == product["subject"]
    assert not crawler.stats.get_value("ali1688/alert")  # every monitor passes, accounting included

    again = await run_crawl(settings, SearchSpider, q="批发", country="en", max_results="120")
    assert again.stats.get_value("ali1688/search/unchanged") == 120
    assert again.stats.get_value("ali1688/request/sent") == 3  # the three pages, no detail call
    assert not again.stats.get_value("ali1688/alert")

    emulator.post("/_sandbox/epoch", {"epoch": 1})
    drifted = {str(offer_id) for offer_id in CATALOGUE.drifted_ids(found, 1)}
    assert 20 < len(drifted) < 60
    third = await run_crawl(settings, SearchSpider, q="批发", country="en", max_results="120")
    assert third.stats.get_value("ali1688/search/unchanged") == 120 - len(drifted)
    assert third.stats.get_value("ali1688/request/sent") == 3 + len(drifted)
    assert db.product_history.count_documents({"product_id": {"$in": sorted(drifted)}}) == len(drifted)
    runs = list(db.runs.find().sort("started_at", 1))
    assert [run["unchanged"] for run in runs] == [0, 120, 120 - len(drifted)]


@pytest_twisted.ensureDeferred
async def test_a_shop_is_paged_to_its_reported_page_count(emulator, database):
    """The gateway reports one page too many (15 offers by 5 → 4 pages): the records' count
    decides, and the empty fourth page is never asked for; ``details=false`` stores the hits only."""
    uri, name, db = database
    shop = emulator.get("/_sandbox/sellers?n=1")["sellers"][0]
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ShopSpider, seller=shop["open_id"],
                              country="ja", page_size="5", max_results="2000", details="false")
    search = db.searches.find_one()
    assert (search["finish_reason"], search["total_records"], search["pages"], search["hits"]) == (
        "last_page", shop["offers"], -(-shop["offers"] // 5), shop["offers"])
    assert emulator.stats()["by_api"]["product.search.querySellerOfferList"] == -(-shop["offers"] // 5)
    ranks = sorted(doc["rank"] for doc in db.listings.find())
    assert ranks == list(range(1, shop["offers"] + 1))  # pages answered in any order, ranked by place
    assert db.listings.count_documents({"query.seller": shop["open_id"]}) == shop["offers"]
    assert db.products.count_documents({}) == 0 and crawler.stats.get_value("ali1688/search/unchanged") is None
    assert not crawler.stats.get_value("ali1688/alert")


@pytest_twisted.ensureDeferred
async def test_no_match_is_a_search_with_no_hits_and_an_unknown_shop_a_failure(emulator, database):
    uri, name, db = database
    settings = crawl_settings(emulator.url, uri, name)
    await run_crawl(settings, SearchSpider, q="不存在的东西zzqx", country="en")
    search = db.searches.find_one({"query.keyword": "不存在的东西zzqx"})
    assert (search["finish_reason"], search["total_records"], search["hits"]) == ("empty_page", 0, 0)
    assert db.failures.count_documents({}) == 0
    crawler = await run_crawl(settings, ShopSpider, seller="BBBnoSuchShop", country="en")
    failure = db.failures.find_one({"error_code": "SELLER_NOT_FOUND"})
    assert failure["reason"] == "business_failure" and failure["message"] == "卖家不存在"
    assert db.searches.find_one({"query.seller": "BBBnoSuchShop"})["finish_reason"] == "failed"
    assert accounting(crawler.stats.get_stats()).ok  # the search is one input, its outcome one failure


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest_twisted.ensureDeferred
async def test_an_image_file_and_an_image_url_find_the_same_offers(emulator, database, tmp_path):
    uri, name, db = database
    photo = tmp_path / "cup.png"
    photo.write_bytes(PNG)
    settings = crawl_settings(emulator.url, uri, name)
    await run_crawl(settings, ImageSpider, image=str(photo), country="en", max_results="30", details="false")
    digest = "sha256:" + hashlib.sha256(PNG).hexdigest()
    from_file = listing_ids(db, **{"query.image": digest})
    assert len(from_file) == 30
    with serving(tmp_path) as base:
        await run_crawl(settings, ImageSpider, image=f"{base}/cup.png", country="en", max_results="30",
                        details="false")
    assert [doc["finish_reason"] for doc in db.searches.find()] == ["max_results", "max_results"]
    everything = listing_ids(db, **{"query.image": digest})
    assert everything == sorted(from_file * 2, key=everything.index)  # the same 30 offers twice, in order
    assert emulator.stats()["by_api"]["product.image.upload"] == 2  # one upload per search


def serving(folder: Path) -> contextlib.AbstractContextManager[str]:
    """A local HTTP server for ``folder``'s files: the base URL."""
    return loopback_server(functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder)))


@pytest.mark.e2e
@pytest.mark.parametrize(("spider", "args", "says"), [
    ("search", ["-a", "q=  ", "-a", "country=en"], "give a keyword"),
    ("search", ["-a", "q=杯"], "country is required"),
    ("search", ["-a", "q=杯", "-a", "country=english"], "country must be"),
    ("search", ["-a", "q=杯", "-a", "country=en", "-a", "page_size=51"], "page_size must be"),
    ("search", ["-a", "q=杯", "-a", "country=en", "-a", "sort=cheapest"], "sort must be"),
    ("search", ["-a", "q=杯", "-a", "country=en", "-a", "details=maybe"], "details must be"),
    ("shop", ["-a", "country=en"], "give a seller"),
    ("image", ["-a", "image=/no/such/photo.jpg", "-a", "country=en"], "is not a file"),
    ("image", ["-a", "image={tmp}/notes.txt", "-a", "country=en"], "not a JPEG, PNG"),
    ("image", ["-a", "image={tmp}/huge.jpg", "-a", "country=en"], "at most 3 MiB"),
])
def test_bad_arguments_stop_before_any_call(emulator, database, tmp_path, spider, args, says):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "huge.jpg").write_bytes(b"\xff\xd8\xff" + bytes(3 * 2**20 + 1))
    uri, name, _ = database
    before = emulator.stats()["requests"]
    done = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", spider, *[arg.format(tmp=tmp_path) for arg in args]],
        cwd=ROOT, env=clean_env(**crawl_env(emulator.url, uri, name)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in done.stderr and "Traceback" not in done.stderr
    assert emulator.stats()["requests"] == before


@FUZZ
@given(st.sampled_from(["search", "shop", "image"]), json_values,
       st.dictionaries(st.sampled_from([*OPTIONS, "id", "search", "other"]), json_values, max_size=6))
def test_any_queued_search_is_a_search_or_one_clear_error(kind, target, options):
    """A queued search entry of any content: a Search, or a ValueError saying what is wrong —
    never another exception, which would cost the worker its other entries."""
    text = json.dumps({kind: target, **options})
    try:
        asked = parse_search_entry(text)
        if asked is not None:
            search = make_search(*asked, "s-1")
            assert search.query.kind == asked[0] and 1 <= search.query.page_size <= 50
    except (ValueError, RecursionError) as exc:
        assert str(exc)


@FUZZ
@given(st.text(max_size=300))
def test_any_entry_text_is_a_search_or_not(text):
    try:
        parse_search_entry(text)
    except ValueError as exc:
        assert str(exc)


@pytest_twisted.ensureDeferred
async def test_an_image_url_that_gives_no_image_is_one_failure_without_its_password(emulator, database, tmp_path):
    uri, name, db = database
    (tmp_path / "page.html").write_text("<html>not an image</html>")
    settings = crawl_settings(emulator.url, uri, name)
    with serving(tmp_path) as base:
        await run_crawl(settings, ImageSpider, image=f"{base}/page.html", country="en")
        secret = base.replace("http://", "http://someone:hunter2@") + "/page.html"
        crawler = await run_crawl(settings, ImageSpider, image=secret, country="en")
    messages = sorted(doc["message"] for doc in db.failures.find({"reason": "invalid_reference"}))
    assert len(messages) == 2 and any("not a JPEG, PNG" in message for message in messages)
    assert [doc["finish_reason"] for doc in db.searches.find()] == ["failed", "failed"]
    stored = json.dumps([*db.failures.find(), *db.searches.find()], default=str)
    assert "hunter2" not in stored and "someone:***@" in stored
    assert emulator.stats()["by_api"].get("product.image.upload") is None  # nothing uploaded
    assert accounting(crawler.stats.get_stats()).ok
