"""The emulator's discovery APIs (PROTOCOL.md §7): keyword, shop and image search, image upload.

Every expectation is computed from the catalogue itself (the universe's heads, the offers at an
epoch, the detail APIs' replies), so the pages are checked, not merely read.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from ali1688spider.aop.apis import CROSSBORDER, PRODUCT_GET, ApiSpec
from ali1688spider.aop.classify import Outcome
from ali1688spider.demo.services import GatewayEmulator
from ali1688spider.sandbox import search
from ali1688spider.sandbox.catalogue import Catalogue, OfferHead
from ali1688spider.sandbox.views import translate

from .crawling import CATALOGUE, SEED
from .test_sandbox import api_call, classified, http_call, product_call

NAMESPACE = "com.alibaba.fenxiao.crossborder"
KEYWORD = ApiSpec(key="search.keyword", namespace=NAMESPACE, name="product.search.keywordQuery")
SELLER = ApiSpec(key="search.seller", namespace=NAMESPACE, name="product.search.querySellerOfferList")
IMAGE = ApiSpec(key="search.image", namespace=NAMESPACE, name="product.search.imageQuery")
UPLOAD = ApiSpec(key="image.upload", namespace=NAMESPACE, name="product.image.upload")
DATE = "%Y-%m-%d %H:%M:%S"


def _png(width: int = 1, height: int = 1) -> bytes:
    """A real, tiny PNG (grey pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, 0, 0, 0, 0))
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# -- the universe, as the tests see it ----------------------------------------------------------

@cache
def universe() -> dict[int, OfferHead]:
    """The searchable offers' heads by id, in id order."""
    heads = {offer_id: CATALOGUE.head(offer_id) for offer_id in CATALOGUE.offer_ids(search.SEARCH_UNIVERSE)}
    return {offer_id: head for offer_id, head in heads.items() if head is not None}


def matching(keyword: str, country: str = "en") -> list[int]:
    """The ids whose subject or its translation holds ``keyword`` (ignoring case)."""
    folded = keyword.strip().casefold()
    return [i for i, head in universe().items() if folded in translate(country, head.subject).casefold()]


def open_id_of(offer_id: int) -> str:
    return CATALOGUE.seller(universe()[offer_id].seller_index).open_id


# -- talking to the emulator --------------------------------------------------------------------

@pytest.fixture(scope="module")
def token(emulator: GatewayEmulator) -> str:
    return emulator.access_token()


def call(emulator: GatewayEmulator, token: str, api: ApiSpec, query: object,
         param: str = "offerQueryParam") -> dict[str, Any]:
    """The ``result`` of a served search call (success or business failure), HTTP 200 checked."""
    status, body = api_call(emulator, api, {param: query}, token=token, timeout=20)
    assert status == 200, body[:300]
    outer = json.loads(body)
    assert set(outer) == {"result"}, outer
    return dict(outer["result"])


def page(emulator: GatewayEmulator, token: str, api: ApiSpec = KEYWORD, **query: object) -> dict[str, Any]:
    """The page of a successful search; ``beginPage`` 1, ``pageSize`` 50, ``country`` en unless given."""
    query = {"beginPage": 1, "pageSize": 50, "country": "en", **query}
    result = call(emulator, token, api, query)
    expected = "true" if api is IMAGE else True
    assert result["success"] == expected and result["code"] == "200" and result["message"] == "成功", result
    found = result["result"]
    assert {"totalRecords", "totalPage", "pageSize", "currentPage", "data"} <= set(found)
    assert found["totalPage"] == found["totalRecords"] // found["pageSize"] + 1
    assert found["currentPage"] == query["beginPage"] and found["pageSize"] == query["pageSize"]
    return dict(found)


def every_hit(emulator: GatewayEmulator, token: str, api: ApiSpec = KEYWORD, **query: object) -> list[dict[str, Any]]:
    """All hits of a query, page after page until the last (which may be empty)."""
    hits: list[dict[str, Any]] = []
    number = 1
    while True:
        found = page(emulator, token, api, **{**query, "beginPage": number})
        hits += found["data"]
        if number >= found["totalPage"]:
            assert len(hits) == found["totalRecords"]
            return hits
        assert found["data"], "only the last page may be empty"
        number += 1


def failure(result: dict[str, Any], code: str, *, image: bool = False) -> str:
    assert result["success"] == ("false" if image else False), result
    assert result["code"] == code, result
    assert "result" not in result
    return str(result["message"])


def ids(hits: list[dict[str, Any]]) -> list[int]:
    return [hit["offerId"] for hit in hits]


def price(hit: dict[str, Any]) -> Decimal:
    return Decimal(hit["priceInfo"]["price"])


# -- the catalogue's heads ----------------------------------------------------------------------

def test_heads_and_tiers_agree_with_the_offers() -> None:
    catalogue = Catalogue(SEED)
    for offer_id in catalogue.offer_ids(300, start=620_000_000_000):
        head, offer = catalogue.head(offer_id), catalogue.offer(offer_id)
        assert head is not None and offer is not None
        assert (head.subject, head.category.category_id, head.tiers) == (offer.subject, offer.category_id, offer.tiers)
        assert catalogue.seller(head.seller_index) == offer.seller
        for epoch in (1, 2, 6):
            assert catalogue.tiers(head, epoch) == catalogue.offer(offer_id, epoch).tiers  # type: ignore[union-attr]
    assert catalogue.head(catalogue.missing_ids(1)[0]) is None and catalogue.head("abc") is None


def test_the_index_is_cheap_to_build() -> None:
    started = time.perf_counter()
    index = search.Discovery(Catalogue(SEED)).index
    took = time.perf_counter() - started
    assert len(index.ids) == search.SEARCH_UNIVERSE
    assert took < 3, took  # about 0.4 s on an idle core; generous for a busy machine


# -- keyword search -------------------------------------------------------------------------------

def test_a_chinese_keyword_finds_the_offers_whose_subject_has_it(emulator: GatewayEmulator, token: str) -> None:
    expected = matching("保温杯")
    assert 50 < len(expected) < search.MAX_RECORDS
    hits = every_hit(emulator, token, keyword=" 保温杯 ")  # stripped
    assert sorted(ids(hits)) == expected
    assert all("保温杯" in hit["subject"] for hit in hits)
    assert all(hit["subjectTrans"] == f"[en] {hit['subject']}" for hit in hits)


def test_a_keyword_is_matched_in_the_translation_and_ignores_case(emulator: GatewayEmulator, token: str) -> None:
    keyword = "[ja] 2025新款纯棉"  # the translation's prefix, then the subject's first words
    translated = matching(keyword, "ja")
    assert translated and all(universe()[i].subject.startswith("2025新款纯棉") for i in translated)
    hits = every_hit(emulator, token, keyword=keyword, country="ja", pageSize=20)
    assert sorted(ids(hits)) == translated
    assert all(hit["subjectTrans"].startswith(keyword) for hit in hits)
    assert page(emulator, token, keyword=keyword, country="en")["totalRecords"] == 0  # not in English
    lower, upper = page(emulator, token, keyword="polo"), page(emulator, token, keyword="POLO")
    assert lower == upper and lower["totalRecords"] == len(matching("POLO")) > 0


def test_pages_are_disjoint_in_one_order_and_the_last_may_be_empty(emulator: GatewayEmulator, token: str) -> None:
    total = len(matching("保温杯"))
    size = next(n for n in range(50, 0, -1) if total % n == 0 and n < total)  # pages come out even
    by_size = every_hit(emulator, token, keyword="保温杯", pageSize=size)
    last = page(emulator, token, keyword="保温杯", pageSize=size, beginPage=total // size + 1)
    assert last["totalPage"] == total // size + 1 and last["data"] == []  # the formula's empty last page
    assert len(set(ids(by_size))) == len(by_size) == total
    assert ids(every_hit(emulator, token, keyword="保温杯", pageSize=7)) == ids(by_size)  # one order
    beyond = page(emulator, token, keyword="保温杯", pageSize=size, beginPage=500)
    assert beyond["data"] == [] and beyond["totalRecords"] == total


def test_no_query_reports_more_than_2000_records(emulator: GatewayEmulator, token: str) -> None:
    assert len(matching("批发")) > search.MAX_RECORDS
    first = page(emulator, token, keyword="批发", pageSize=50, beginPage=40)
    assert (first["totalRecords"], first["totalPage"], len(first["data"])) == (2000, 41, 50)
    assert page(emulator, token, keyword="批发", pageSize=50, beginPage=41)["data"] == []
    odd = page(emulator, token, keyword="批发", pageSize=30, beginPage=67)  # records 1981-2000
    assert (odd["totalPage"], len(odd["data"])) == (67, 20)


def test_nothing_found_is_an_empty_first_page(emulator: GatewayEmulator, token: str) -> None:
    found = page(emulator, token, keyword="没有这种东西xyz")
    assert (found["totalRecords"], found["totalPage"], found["data"]) == (0, 1, [])


@pytest.mark.parametrize("sort", ['{"price":"asc"}', {"price": "asc"}], ids=["text", "object"])
def test_sort_by_price_ascending_sorts_before_the_cap(emulator: GatewayEmulator, token: str, sort: object) -> None:
    hits = page(emulator, token, keyword="批发", sort=sort)["data"]
    keys = [(price(hit), hit["offerId"]) for hit in hits]
    assert keys == sorted(keys)  # ties by offer id
    cheapest = min(universe()[i].tiers[0].price_cents for i in matching("批发"))
    assert price(hits[0]) * 100 == cheapest  # the cheapest of all 6,000 matches, not of the first 2,000


def test_sort_by_price_descending_and_by_month_sold(emulator: GatewayEmulator, token: str) -> None:
    hits = every_hit(emulator, token, keyword="保温杯", sort=json.dumps({"price": "desc"}))
    keys = [(-price(hit), hit["offerId"]) for hit in hits]
    assert keys == sorted(keys) and len(hits) == len(matching("保温杯"))
    sold = page(emulator, token, keyword="T恤", sort='{"monthSold":"desc"}')["data"]
    counts = [hit["offerId"] % 20000 for hit in sold]  # what monthSold says (null in sparse hits)
    assert counts == sorted(counts, reverse=True)
    assert all(hit["monthSold"] in (None, hit["offerId"] % 20000) for hit in sold)
    rates = page(emulator, token, keyword="T恤", sort='{"rePurchaseRate":"asc"}')["data"]
    assert [hit["offerId"] % 30 for hit in rates] == sorted(hit["offerId"] % 30 for hit in rates)


def test_price_range_category_and_filters(emulator: GatewayEmulator, token: str) -> None:
    ranged = every_hit(emulator, token, keyword="跨境", priceStart="10", priceEnd="20.5")
    assert ranged and all(Decimal(10) <= price(hit) <= Decimal("20.5") for hit in ranged)
    assert len(ranged) == sum(1000 <= universe()[i].tiers[0].price_cents <= 2050 for i in matching("跨境"))

    cups = every_hit(emulator, token, keyword="跨境", categoryId=1048147)
    assert sorted(ids(cups)) == [i for i in matching("跨境") if universe()[i].category.category_id == 1048147]
    top = page(emulator, token, keyword="跨境", categoryId="1")  # a top category: every leaf below it
    below = sum(universe()[i].category.category_id // 1_000_000 == 1 for i in matching("跨境"))
    assert top["totalRecords"] == min(below, search.MAX_RECORDS) and below > len(cups)

    everything = page(emulator, token, keyword="T恤")["totalRecords"]
    assert page(emulator, token, keyword="T恤", filter="noSuchFilter")["totalRecords"] == everything
    one = every_hit(emulator, token, keyword="T恤", filter="isOnePsale")
    assert one and all(hit["minOrderQuantity"] == 1 and hit["isOnePsale"] is True for hit in one)
    assert len(one) == sum(universe()[i].tiers[0].start_quantity == 1 for i in matching("T恤"))
    fast = every_hit(emulator, token, keyword="T恤", filter="shipIn48Hours,unknown")
    assert fast and all(hit["offerId"] % 3 == 1 for hit in fast)
    detail = json.loads(product_call(emulator, token, fast[0]["offerId"], CROSSBORDER)[1])["result"]["result"]
    assert detail["productShippingInfo"]["shippingTimeGuarantee"] == "shipIn48Hours"
    factories = page(emulator, token, keyword="T恤", filter="certifiedFactory")["totalRecords"]
    assert 0.15 * everything < factories < 0.45 * everything
    both = page(emulator, token, keyword="T恤", filter="certifiedFactory,shipIn48Hours")["totalRecords"]
    assert both < min(factories, len(fast))


def test_items_carry_the_documented_fields(emulator: GatewayEmulator, token: str) -> None:
    hits = every_hit(emulator, token, keyword="纯棉", pageSize=50)
    sparse = [hit for hit in hits if "createDate" not in hit]
    assert 0.15 * len(hits) < len(sparse) < 0.35 * len(hits)  # 1 in 4 leave fields out, or null
    assert all(hit["monthSold"] is None and hit["tradeScore"] is None for hit in sparse)
    for hit in hits:
        offer = CATALOGUE.offer(hit["offerId"])
        assert offer is not None
        assert hit["imageUrl"] == f"https://cbu01.alicdn.com/{offer.images[0]}"
        assert hit["isJxhy"] is False and hit["priceInfo"]["jxhyPrice"] is None
        assert isinstance(hit["isSelect"], bool) and isinstance(hit["isOnePsale"], bool)
        assert hit["topCategoryId"] == (offer.category_id // 1_000_000 or offer.category_id)
        assert ("promotionPrice" in hit["priceInfo"]) is bool(offer.offer_id % 2)
        if "createDate" not in hit:  # sparse
            continue
        assert hit["repurchaseRate"] == f"{offer.offer_id % 30}%" and hit["tradeScore"] == offer.seller.trade_score
        assert hit["createDate"] == offer.created.strftime(DATE) and hit["thirdCategoryId"] == offer.category_id
        assert hit["promotionURL"] == f"https://detail.1688.com/offer/{offer.offer_id}.html?fromkv=refer:HVEV&kjSource=pc"
        assert hit["sellerDataInfo"]["compositeServiceScore"] == offer.seller.trade_score
        assert ("whiteImage" in hit) is (offer.white_image is not None)
        if offer.skus and offer.skus[0].consign_cents is not None:
            assert Decimal(hit["priceInfo"]["consignPrice"]) * 100 == offer.skus[0].consign_cents
        else:
            assert "consignPrice" not in hit["priceInfo"]


# -- malformed queries ----------------------------------------------------------------------------

GOOD = {"keyword": "T恤", "beginPage": 1, "pageSize": 20, "country": "en"}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"keyword": None}, "keyword is required"),
        ({"keyword": "   "}, "keyword is required"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 51}, "pageSize"),
        ({"pageSize": 1.5}, "pageSize must be an integer"),
        ({"beginPage": 0}, "beginPage"),
        ({"beginPage": "two"}, "beginPage must be an integer"),
        ({"beginPage": None}, "beginPage is required"),
        ({"country": None}, "country is required"),
        ({"sort": '{"colour":"asc"}'}, "sort"),
        ({"sort": '{"price":"up"}'}, "sort"),
        ({"priceStart": "cheap"}, "priceStart"),
        ({"priceStart": "30", "priceEnd": "10"}, "priceStart"),
        ({"categoryId": "shoes"}, "categoryId"),
    ],
    ids=lambda value: json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value,
)
def test_a_malformed_query_is_a_param_error(emulator: GatewayEmulator, token: str, changes: dict[str, object],
                                            words: str) -> None:
    query = {key: value for key, value in {**GOOD, **changes}.items() if value is not None}
    assert words in failure(call(emulator, token, KEYWORD, query), "PARAM_ERROR")


@pytest.mark.parametrize("value", [None, "not json", "[1, 2]"], ids=["missing", "not-json", "a-list"])
@pytest.mark.parametrize("api", [KEYWORD, SELLER, IMAGE, UPLOAD], ids=lambda api: api.key)
def test_a_missing_parameter_object_is_refused_by_the_gateway(emulator: GatewayEmulator, token: str,
                                                              api: ApiSpec, value: str | None) -> None:
    param = "uploadImageParam" if api is UPLOAD else "offerQueryParam"
    reply = api_call(emulator, api, {param: value}, token=token)
    classified(reply, Outcome.BUSINESS, "gw.ParamMissing", status=400)
    assert param.encode() in reply[1]
    assert emulator.stats()["usage"] == 0  # refused before it was served


# -- a seller's offers ----------------------------------------------------------------------------

def test_sellers_are_listed_largest_first(emulator: GatewayEmulator) -> None:
    sellers = emulator.get("/_sandbox/sellers?n=5")["sellers"]
    assert len(sellers) == 5
    counts = [seller["offers"] for seller in sellers]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 10
    for seller in sellers:
        assert seller["offers"] == sum(open_id_of(i) == seller["open_id"] for i in universe())
    assert len(emulator.get("/_sandbox/sellers")["sellers"]) == 10
    for bad in ("x", "-1", "999999"):
        status, body = http_call(f"{emulator.base}/_sandbox/sellers?n={bad}")
        assert status == 400 and "error" in json.loads(body)


def test_a_sellers_listing_is_its_offers_in_the_universe(emulator: GatewayEmulator, token: str) -> None:
    seller = emulator.get("/_sandbox/sellers?n=1")["sellers"][0]
    hits = every_hit(emulator, token, SELLER, sellerOpenId=seller["open_id"], pageSize=4)
    assert sorted(ids(hits)) == [i for i in universe() if open_id_of(i) == seller["open_id"]]
    assert len(hits) == seller["offers"]
    for hit in hits:
        assert hit["isSelect"] in ("true", "false")
        assert "promotionPrice" not in hit["priceInfo"] and "sellerDataInfo" not in hit and "companyName" not in hit
    cheap_first = every_hit(emulator, token, SELLER, sellerOpenId=seller["open_id"], sort={"price": "asc"})
    assert [price(hit) for hit in cheap_first] == sorted(price(hit) for hit in hits)
    some = hits[0]["subject"][-2:]
    narrowed = page(emulator, token, SELLER, sellerOpenId=seller["open_id"], keyword=some)
    assert narrowed["data"] and all(some in hit["subject"] for hit in narrowed["data"])


def test_an_unknown_seller_is_a_business_failure(emulator: GatewayEmulator, token: str) -> None:
    query = {"sellerOpenId": "BBBnotASellerOfThisCatalogue", "beginPage": 1, "pageSize": 20, "country": "en"}
    assert failure(call(emulator, token, SELLER, query), "SELLER_NOT_FOUND") == "卖家不存在"
    del query["sellerOpenId"]
    assert "sellerOpenId is required" in failure(call(emulator, token, SELLER, query), "PARAM_ERROR")


# -- image upload and image search ----------------------------------------------------------------

def upload(emulator: GatewayEmulator, token: str, text: str) -> dict[str, Any]:
    return call(emulator, token, UPLOAD, {"imageBase64": text}, param="uploadImageParam")


def test_an_uploaded_image_gets_an_id_from_its_bytes(emulator: GatewayEmulator, token: str) -> None:
    image = _png()
    result = upload(emulator, token, base64.b64encode(image).decode())
    assert result == {"success": "true", "code": "200", "message": "成功", "result": search.image_id(image)}
    assert len(result["result"]) == 19 and result["result"].isdigit()
    assert upload(emulator, token, base64.b64encode(image).decode())["result"] == result["result"]  # stateless
    assert upload(emulator, token, base64.b64encode(_png(2, 2)).decode())["result"] != result["result"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("this is not base64!", "base64"),
        (base64.b64encode(b"GIF87a" + bytes(search.IMAGE_MAX_BYTES)).decode(), "bytes"),
        (base64.b64encode(b"%PDF-1.7 not an image").decode(), "JPEG, PNG, WEBP or GIF"),
    ],
    ids=["not-base64", "too-large", "not-an-image"],
)
def test_a_bad_image_is_refused(emulator: GatewayEmulator, token: str, data: str, words: str) -> None:
    assert words in failure(upload(emulator, token, data), "IMAGE_INVALID", image=True)


def test_an_upload_without_an_image_is_a_param_error(emulator: GatewayEmulator, token: str) -> None:
    result = call(emulator, token, UPLOAD, {"outMemberId": "x"}, param="uploadImageParam")
    assert "imageBase64 is required" in failure(result, "PARAM_ERROR", image=True)


def test_image_search_is_deterministic_by_image_id(emulator: GatewayEmulator, token: str) -> None:
    image_id = upload(emulator, token, base64.b64encode(_png(3, 1)).decode())["result"]
    first = page(emulator, token, IMAGE, imageId=image_id, pageSize=10, country="ja")
    assert page(emulator, token, IMAGE, imageId=image_id, pageSize=10, country="ja") == first
    assert 0 < first["totalRecords"] <= search.MAX_RECORDS and len(first["data"]) == 10
    regions = first["picRegionInfo"]
    assert regions["yoloCropRegion"].split(";")[0] == regions["currentRegion"]
    for region in regions["yoloCropRegion"].split(";"):
        left, right, top, bottom = map(int, region.split(","))
        assert left < right and top < bottom
    categories = {universe()[hit["offerId"]].category.category_id for hit in first["data"]}
    assert len(categories) == 1  # what the image shows
    for hit in first["data"]:
        offer = CATALOGUE.offer(hit["offerId"])
        assert offer is not None and hit["companyName"] == offer.seller.company
        assert hit["companyAddress"] == f"{offer.seller.province} {offer.seller.city}"
        assert hit["subjectTrans"].startswith("[ja] ")
    second = page(emulator, token, IMAGE, imageId=image_id, pageSize=10, beginPage=2, country="ja")
    assert not set(ids(first["data"])) & set(ids(second["data"]))
    other = page(emulator, token, IMAGE, imageId="12345", pageSize=10)  # any 1-20 digits
    assert other["picRegionInfo"] != regions or ids(other["data"]) != ids(first["data"])


@pytest.mark.parametrize("image_id", ["abc", "1" * 21, "12 34"], ids=["letters", "21-digits", "space"])
def test_an_unknown_image_id_is_a_business_failure(emulator: GatewayEmulator, token: str, image_id: str) -> None:
    query = {"imageId": image_id, "beginPage": 1, "pageSize": 10, "country": "en"}
    assert failure(call(emulator, token, IMAGE, query), "IMAGE_NOT_FOUND", image=True)
    query.pop("imageId")
    assert failure(call(emulator, token, IMAGE, query), "PARAM_ERROR", image=True)


# -- the gateway's path: epochs, quota, faults, ACL, stats ------------------------------------------

def _detail(emulator: GatewayEmulator, token: str, offer_id: int) -> tuple[Decimal, str]:
    """The first tier's price (crossborder) and the last update as ``yyyy-MM-dd HH:mm:ss``
    (product.get) of one offer, from the detail APIs."""
    cross = json.loads(product_call(emulator, token, offer_id, CROSSBORDER)[1])["result"]["result"]
    stamp = json.loads(product_call(emulator, token, offer_id, PRODUCT_GET)[1])["lastUpdateTime"]
    first = Decimal(str(cross["productSaleInfo"]["priceRangeList"][0]["price"]))
    return first, datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").strftime(DATE)


def test_hits_show_the_detail_values_of_the_current_epoch(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    drifting = emulator_factory()
    token = drifting.access_token()
    moved = next(i for i in CATALOGUE.drifted_ids(list(universe())[:300], 1)
                 if CATALOGUE.offer(i, 1).tiers[0] != CATALOGUE.offer(i).tiers[0])  # type: ignore[union-attr]

    def hit_of(offer_id: int) -> dict[str, Any]:
        hits = every_hit(drifting, token, SELLER, sellerOpenId=open_id_of(offer_id))
        return next(hit for hit in hits if hit["offerId"] == offer_id)

    before = hit_of(moved)
    assert (price(before), before["modifyDate"]) == _detail(drifting, token, moved)
    assert drifting.post("/_sandbox/epoch", {"epoch": 1}) == {"epoch": 1}
    after = hit_of(moved)
    assert (price(after), after["modifyDate"]) == _detail(drifting, token, moved)
    assert price(after) != price(before) and after["modifyDate"] > before["modifyDate"]
    # sorts and ranges read the prices of the epoch too
    hits = every_hit(drifting, token, keyword="保温杯", sort='{"price":"asc"}')
    assert [price(hit) for hit in hits] == sorted(price(hit) for hit in hits)
    for hit in hits[:5]:
        assert price(hit) == _detail(drifting, token, hit["offerId"])[0]


def test_search_calls_count_against_the_quota(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    limited = emulator_factory(qps=3)
    token = limited.access_token()
    replies = [api_call(limited, KEYWORD, {"offerQueryParam": GOOD}, token=token, timeout=20) for _ in range(12)]
    throttled = [reply for reply in replies if reply[0] != 200]
    assert throttled
    for reply in throttled:
        classified(reply, Outcome.THROTTLE, "gw.QosAppFrequencyLimit", status=400)
    stats = limited.stats()
    assert stats["by_api"]["product.search.keywordQuery"] == 12
    assert stats["throttled"] == len(throttled) and stats["usage"] == 12 - len(throttled)


def test_a_denied_search_api_is_fatal(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    denied = emulator_factory(deny_api=["product.image.upload"])
    token = denied.access_token()
    reply = api_call(denied, UPLOAD, {"uploadImageParam": {"imageBase64": "x"}}, token=token)
    classified(reply, Outcome.FATAL, "gw.APIACLDecline", status=400)
    classified(api_call(denied, KEYWORD, {"offerQueryParam": GOOD}, token=token), Outcome.OK)
    old = ApiSpec(key="old", namespace=NAMESPACE, name="product.search.keywordQuery", version=2)
    classified(api_call(denied, old, {"offerQueryParam": GOOD}, token=token), Outcome.FATAL, "gw.APIUnsupported")


def test_faults_hit_search_calls_too(emulator: GatewayEmulator, token: str) -> None:
    seller = emulator.get("/_sandbox/sellers?n=1")["sellers"][0]["open_id"]
    shop = {"sellerOpenId": seller, "beginPage": 1, "pageSize": 20, "country": "en"}
    emulator.script([{"kind": "isp", "api": "keywordQuery", "status": 500},
                     {"kind": "gone", "api": "querySellerOfferList"},
                     {"kind": "gone", "api": "keywordQuery"}])
    classified(api_call(emulator, KEYWORD, {"offerQueryParam": GOOD}, token=token), Outcome.TRANSIENT, status=500)
    assert failure(call(emulator, token, SELLER, shop), "SELLER_NOT_FOUND") == "卖家不存在"  # the shop is gone
    assert call(emulator, token, KEYWORD, GOOD)["success"] is True  # a keyword has nothing to lose
    assert call(emulator, token, SELLER, shop)["success"] is True
    stats = emulator.stats()
    assert stats["faults"] == {"isp": 1, "gone": 2}
    assert stats["by_api"] == {"product.search.keywordQuery": 2, "product.search.querySellerOfferList": 2}
    assert stats["by_outcome"]["business_failure"] == 1 and stats["usage"] == 4
