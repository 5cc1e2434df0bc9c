"""Issue 14: replies in the shapes the real gateway sends (published samples and the fields other
integrations read), normalised and validated. Each reply here is built by hand, not by the
emulator, so the two cannot share a blind spot."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import pytest_twisted

from ali1688spider.aop.apis import CROSSBORDER, FENXIAO, FENXIAO_INFO, PRODUCT_GET
from ali1688spider.aop.classify import decode_json
from ali1688spider.aop.errors import BusinessFailure
from ali1688spider.aop.normalize import normalize
from ali1688spider.aop.product import Package, for_sale, known_status
from ali1688spider.demo.services import gateway_emulator
from ali1688spider.pipelines.validation import InvalidProduct, validate_product
from ali1688spider.sandbox import open_ids
from ali1688spider.sandbox.shapes import shape_of

from .crawling import CATALOGUE, SEED, crawl_settings, fresh_ids, run_crawl
from .test_faults import gateway_proxy

OFFER = 610784549587


def through_json(data: Any) -> Any:
    """As the gateway's body would decode: numbers as the decoder gives them (Decimal)."""
    return decode_json(json.dumps(data, ensure_ascii=False))


def product_get(info: dict[str, Any]) -> dict[str, Any]:
    return through_json({"productInfo": {"productID": OFFER, "subject": "保温杯", "status": "published", **info}})


# -- the price: referencePrice, quoteType --------------------------------------------------------

@pytest.mark.parametrize(("reference", "low", "high"), [
    ("66.0", "66.0", "66.0"), (66, "66", "66"), ("10.00-20.00", "10.00", "20.00"),
    (" 10.5 ~ 12 ", "10.5", "12"), ("20.00-10.00", "10.00", "20.00"), ("9.9～19.9", "9.9", "19.9"),
])
def test_an_offer_priced_only_by_reference_price_is_stored(reference, low, high):
    """Private prices and slim replies: no saleInfo, no SKU prices, only ``referencePrice``."""
    product = normalize("product.get", product_get({
        "referencePrice": reference, "skuInfos": [{"skuId": 1, "amountOnSale": 5}]}))
    assert (product.min_price, product.max_price, product.price_source) == (Decimal(low), Decimal(high), "reference")
    validate_product(product)  # no longer "no price"


def test_without_any_price_the_offer_is_still_refused():
    product = normalize("product.get", product_get({"referencePrice": "", "skuInfos": []}))
    assert product.min_price is None and product.price_source is None
    with pytest.raises(InvalidProduct, match="no price"):
        validate_product(product)


def test_a_broken_reference_price_names_its_field():
    from ali1688spider.aop.normalize import NormalizationError

    with pytest.raises(NormalizationError) as refused:
        normalize("product.get", product_get({"referencePrice": "about 10"}))
    assert refused.value.field == "productInfo.referencePrice"


TIERS = [{"startQuantity": 2, "price": "12.50"}, {"startQuantity": 100, "price": "11.00"}]
SKUS = [{"skuId": 1, "price": "13.00"}, {"skuId": 2, "price": "14.50"}]


@pytest.mark.parametrize(("quote_type", "source", "low", "high"), [
    (1, "skus", "13.00", "14.50"),  # each SKU its own price
    (0, "tiers", "11.00", "12.50"),  # no SKUs that matter: quantity tiers
    (2, "tiers", "11.00", "12.50"),  # SKUs, but priced by quantity
    ("1", "skus", "13.00", "14.50"),  # sent as text
    (None, "tiers", "11.00", "12.50"),  # not sent: tiers first
])
def test_quote_type_decides_which_prices_make_the_span(quote_type, source, low, high):
    sale = {"priceRanges": TIERS, **({"quoteType": quote_type} if quote_type is not None else {})}
    product = normalize("product.get", product_get({"saleInfo": sale, "skuInfos": SKUS, "referencePrice": "1-99"}))
    assert (product.price_source, product.min_price, product.max_price) == (source, Decimal(low), Decimal(high))
    assert len(product.price_tiers) == 2 and [sku.price for sku in product.skus] == [Decimal("13.00"),
                                                                                    Decimal("14.50")]


def test_a_quote_type_whose_prices_are_missing_falls_back():
    only_tiers = normalize("product.get", product_get({"saleInfo": {"priceRanges": TIERS, "quoteType": 1},
                                                      "skuInfos": [{"skuId": 1}]}))
    assert only_tiers.price_source == "tiers"
    only_skus = normalize("product.get", product_get({"saleInfo": {"quoteType": 0}, "skuInfos": SKUS}))
    assert only_skus.price_source == "skus"


# -- numbers as numbers, strings and Java doubles ------------------------------------------------

@pytest.mark.parametrize("value", [2663, "2663", "2663.0", 2663.0, " 2663.00 "])
def test_counts_arrive_as_numbers_strings_or_java_doubles(value):
    payload = through_json({"offerId": OFFER, "subject": "x", "monthSold": value,
                            "productSaleInfo": {"amountOnSale": value, "priceRangeList": TIERS},
                            "productSkuInfos": [{"skuId": 7, "amountOnSale": value, "price": value}]})
    product = normalize("crossborder", payload)
    assert product.month_sold == product.stock == product.skus[0].stock == 2663
    assert product.skus[0].price == Decimal("2663")


# -- the prices beside the tiers, and the asked currency -----------------------------------------

CROSSBORDER_DETAIL: dict[str, Any] = {
    "offerId": OFFER, "subject": "不锈钢保温杯", "status": "published",
    "topCategoryId": 1813, "secondCategoryId": 127426001, "thirdCategoryId": "201340101",
    "productCargoNumber": "BW-500", "mainVedio": "https://cloud.video.taobao.com/play/u/1/p/1/e/6/t/1/1.mp4",
    "detailVideo": "https://cloud.video.taobao.com/play/u/1/p/1/e/6/t/1/2.mp4",
    "productImage": {"images": ["https://cbu01.alicdn.com/img/ibank/a.jpg"], "whiteImage": "img/ibank/w.jpg"},
    "soldOut": "false", "monthSold": 17105, "tradeScore": "4.7",
    "sellerDataInfo": {"compositeServiceScore": "4.5", "logisticsExperienceScore": 4.0,
                       "repeatPurchasePercent": "13%", "tradeMedalLevel": "gold"},
    "productSaleInfo": {
        "quoteType": 2, "amountOnSale": 900, "consignPrice": "13.80", "jxhyPrice": "11.90",
        "retailPrice": "25.00", "foreignCurrencyPrice": "1.77", "foreignCurrencyRetailPrice": "3.50",
        "fenxiaoSaleInfo": {"onePiecePrice": "15.00", "offerPrice": "12.80", "startQuantity": 1},
        "priceRangeList": [{"startQuantity": 2, "price": "12.50", "promotionPrice": "11.99",
                            "foreignCurrencyPrice": "1.75", "foreignCurrencyPromotionPrice": "1.68"}],
    },
    "productSkuInfos": [
        {"skuId": 5001, "specId": "s1", "skuCode": "BW-500-W", "price": "12.50", "promotionPrice": "11.99",
         "jxhyPrice": None, "consignPrice": "13.80", "retailPrice": "25.00", "amountOnSale": 500,
         "fenxiaoPriceInfo": {"onePiecePrice": "15.00", "offerPrice": "12.80"},
         "foreignCurrencyPrice": "1.75", "foreignCurrencyPromotionPrice": "1.68", "foreignCurrencyRetailPrice": "3.50"},
        {"skuId": 5002, "specId": "s2", "price": "12.50", "amountOnSale": 400},
    ],
    "channelPrice": {"channelSkuPriceList": [{"skuId": 5001, "currentPrice": "12.10"}]},
    "productShippingInfo": {
        "weight": "0.45", "length": 30, "width": "20.0", "height": 10, "shippingTimeGuarantee": "shipIn48Hours",
        "skuShippingInfoList": [{"skuId": 5001, "specId": "s1", "weight": 450, "length": 31}],
        "skuShippingDetails": [{"skuId": "5002", "weight": "0.40", "length": 29, "width": 19, "height": 9}],
    },
}


def test_crossborder_keeps_every_price_and_the_asked_currency():
    product = normalize("crossborder", through_json(CROSSBORDER_DETAIL), language="en", currency="usd")
    assert (product.consign_price, product.jxhy_price, product.retail_price) == (
        Decimal("13.80"), Decimal("11.90"), Decimal("25.00"))
    assert (product.one_piece_price, product.distribution_price) == (Decimal("15.00"), Decimal("12.80"))
    assert (product.foreign_currency, product.foreign_price, product.foreign_retail_price) == (
        "USD", Decimal("1.77"), Decimal("3.50"))
    tier = product.price_tiers[0]
    assert (tier.price, tier.promotion_price, tier.foreign_price, tier.foreign_promotion_price) == (
        Decimal("12.50"), Decimal("11.99"), Decimal("1.75"), Decimal("1.68"))
    first, second = product.skus
    assert (first.sku_code, first.promotion_price, first.jxhy_price, first.channel_price) == (
        "BW-500-W", Decimal("11.99"), None, Decimal("12.10"))
    assert (first.one_piece_price, first.distribution_price) == (Decimal("15.00"), Decimal("12.80"))
    assert (first.foreign_price, first.foreign_promotion_price, first.foreign_retail_price) == (
        Decimal("1.75"), Decimal("1.68"), Decimal("3.50"))
    assert second.channel_price is None and second.foreign_price is None
    # the CNY span is the tiers' (quoteType 2), never a foreign price
    assert (product.price_source, product.min_price, product.currency) == ("tiers", Decimal("12.50"), "CNY")


def test_crossborder_keeps_the_fields_sourcing_users_ask_for():
    product = normalize("crossborder", through_json(CROSSBORDER_DETAIL))
    assert (product.top_category_id, product.second_category_id, product.third_category_id) == (
        "1813", "127426001", "201340101")
    assert product.cargo_number == "BW-500"
    assert product.main_video.endswith("/1.mp4") and product.detail_video.endswith("/2.mp4")  # mainVedio, sic
    assert product.white_image == "https://cbu01.alicdn.com/img/ibank/w.jpg"
    assert (product.sold_out, product.month_sold) == (False, 17105)
    assert product.seller.trade_score == Decimal("4.7")
    assert product.seller.scores == {"compositeServiceScore": Decimal("4.5"),
                                     "logisticsExperienceScore": Decimal("4.0"),
                                     "repeatPurchasePercent": Decimal("13")}  # "gold" is no score
    assert product.shipping.time_guarantee == "shipIn48Hours"
    assert product.shipping.package == Package(Decimal("30"), Decimal("20.0"), Decimal("10"), Decimal("0.45"))
    # per-SKU packages: skuShippingInfoList weighs in grams, skuShippingDetails in kilograms
    assert product.skus[0].package == Package(length=Decimal("31"), weight=Decimal("0.45"))
    assert product.skus[1].package == Package(Decimal("29"), Decimal("19"), Decimal("9"), Decimal("0.40"))
    assert product.foreign_currency is None  # no currency asked: the foreign prices have none to name


def test_without_foreign_prices_no_currency_is_claimed():
    detail = {k: v for k, v in CROSSBORDER_DETAIL.items() if k not in ("productSaleInfo", "productSkuInfos")}
    product = normalize("crossborder", through_json({**detail, "productSaleInfo": {"priceRangeList": TIERS}}),
                        currency="EUR")
    assert product.foreign_currency is None and product.foreign_price is None


def test_stored_prices_are_decimal_everywhere():
    product = normalize("crossborder", through_json(CROSSBORDER_DETAIL), currency="USD")
    data = product.to_dict(include_raw=False)

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif path.rsplit(".", 1)[-1].endswith("price"):
            assert value is None or isinstance(value, Decimal), path

    walk(data, "product")
    assert isinstance(data["skus"][0]["channel_price"], Decimal)


# -- status ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "sale", "known"), [
    ("published", True, True), ("auditing", True, True), ("new", True, True), ("modified", True, True),
    ("member deleted", False, True), ("expired", False, True), ("auto expired", False, True),
    ("AUTO_EXPIRED", False, True), ("deleted", False, True), ("TBD", False, True), ("member expired", False, True),
    ("已下架", False, True), (None, True, True), ("frozen-by-risk", True, False), ("审核中2", True, False),
])
def test_status_maps_to_available_and_unknown_ones_are_told_apart(status, sale, known):
    assert for_sale(status) is sale and known_status(status) is known
    product = normalize("product.get", product_get({"status": status, "referencePrice": "1"}))
    assert product.available is sale and product.status == status  # kept verbatim


# -- failure texts in every spelling ---------------------------------------------------------------

@pytest.mark.parametrize("key", ["errMsg", "errorMsg", "errorMessage", "error_message", "message", "msg"])
@pytest.mark.parametrize("spec", [PRODUCT_GET, FENXIAO, FENXIAO_INFO])
def test_a_failure_text_is_read_in_every_spelling(spec, key):
    with pytest.raises(BusinessFailure) as failed:
        spec.product_payload({"success": False, "errorCode": "X1", key: "商品已下架"})
    assert (failed.value.code, failed.value.message) == ("X1", "商品已下架")


@pytest.mark.parametrize("key", ["message", "errorMessage", "errMsg"])
def test_a_crossborder_failure_text_is_read_in_every_spelling(key):
    with pytest.raises(BusinessFailure) as failed:
        CROSSBORDER.product_payload({"result": {"success": "false", "code": "SP0056", key: "商品不存在"}})
    assert (failed.value.code, failed.value.message) == ("SP0056", "商品不存在")


# -- alibaba.fenxiao.product.info.get: envelopes and encrypted ids (neither published) ------------

ENCRYPTED = "ipyyvQsdS1fd/NACddd1Hg=="
DISTRIBUTED = {"productID": OFFER, "subject": "袜子", "status": "published",
               "productSaleInfo": {"priceRanges": [{"startQuantity": 2, "price": "3.50"}], "quoteType": 0}}


@pytest.mark.parametrize("envelope", [
    lambda info: {"success": True, "productInfo": info},
    lambda info: {"result": {"success": True, "code": "200", "result": {"productInfo": info}}},
    lambda info: {"result": {"success": "true", "result": info}},
    lambda info: {"result": {"productInfo": info}},
])
def test_fenxiao_info_is_read_in_every_envelope(envelope):
    product = normalize("fenxiao.info", FENXIAO_INFO.product_payload(through_json(envelope(dict(DISTRIBUTED)))))
    assert (product.product_id, product.source_api, product.min_price) == (str(OFFER), "fenxiao.info", Decimal("3.50"))
    validate_product(product)


@pytest.mark.parametrize("reply", [
    {"success": False, "productInfo": DISTRIBUTED, "errorCode": "E1", "errorMsg": "无权限"},
    {"result": {"success": False, "code": "E1", "message": "无权限"}},
    {"result": {"success": True, "result": {"success": False, "errorCode": "E1", "errorMessage": "无权限"}}},
])
def test_fenxiao_info_failures_keep_their_code_and_text(reply):
    with pytest.raises(BusinessFailure) as failed:
        FENXIAO_INFO.product_payload(reply)
    assert (failed.value.code, failed.value.message) == ("E1", "无权限")


def test_fenxiao_info_asks_by_id_or_by_encrypted_id():
    assert FENXIAO_INFO.params_for(str(OFFER)) == {"offerId": OFFER}
    assert FENXIAO_INFO.params_for(ENCRYPTED) == {"openOfferId": ENCRYPTED}


def test_an_offer_named_only_by_its_encrypted_id_is_stored_under_it():
    info = {key: value for key, value in DISTRIBUTED.items() if key != "productID"}
    product = normalize("fenxiao.info", through_json({**info, "openOfferId": ENCRYPTED}))
    assert (product.product_id, product.open_offer_id, product.detail_url) == (ENCRYPTED, ENCRYPTED, None)
    validate_product(product)
    with pytest.raises(InvalidProduct):  # no other API names an offer that way
        product.source_api = "fenxiao"
        validate_product(product)


@pytest.mark.parametrize(("product_id", "sent", "asked", "other"), [
    ("610784549587", None, ENCRYPTED, None),  # named by its id: any id will do, the encrypted one is kept
    ("610784549587", ENCRYPTED, ENCRYPTED, None),
    (ENCRYPTED, ENCRYPTED, ENCRYPTED, None),
    ("610784549587", "XqaVaLkB3RkcmbqJY4OFJg==", ENCRYPTED, "XqaVaLkB3RkcmbqJY4OFJg=="),
    ("XqaVaLkB3RkcmbqJY4OFJg==", "XqaVaLkB3RkcmbqJY4OFJg==", ENCRYPTED, "XqaVaLkB3RkcmbqJY4OFJg=="),
    ("610784549587", None, "610784549587", None),
    ("610784549588", None, "610784549587", "610784549588"),
])
def test_a_reply_about_another_offer_is_told_apart(product_id, sent, asked, other):
    from ali1688spider.aop.product import Product
    from ali1688spider.spiders.callbacks import _other_offer

    product = Product(product_id=product_id, source_api="fenxiao.info", open_offer_id=sent)
    assert _other_offer(product, asked) == other
    if other is None and not asked.isdigit():
        assert product.open_offer_id == asked


@pytest_twisted.ensureDeferred
async def test_a_crawl_by_encrypted_ids_stores_each_offer_once_and_skips_fresh_ones(emulator, database):
    """``-a api=fenxiao.info`` with encrypted ids (and plain ids) against the emulator, which sends
    every envelope and, for half the offers, hides the id: each offer stored, keyed by its id when
    the reply has one, and the encrypted id kept; a repeated encrypted id is a duplicate; a
    second run within ALI1688_FRESH_FOR skips them all, by either key."""
    uri, name, db = database
    ids = fresh_ids(60)
    encrypted = {open_ids.encrypt(SEED, int(offer_id)): offer_id for offer_id in ids[:40]}
    unknown = open_ids.encrypt(SEED + 1, int(ids[0]))  # well formed, but no offer of this catalogue
    refs = [*encrypted, *ids[40:], next(iter(encrypted)), unknown]
    settings = crawl_settings(emulator.url, uri, name, ALI1688_FRESH_FOR="1h")
    crawler = await run_crawl(settings, ids=",".join(refs), api="fenxiao.info")
    stats = crawler.stats
    assert stats.get_value("ali1688/products") == 60 and stats.get_value("ali1688/input/duplicate") == 1
    assert db.failures.find_one({"_id": unknown})["reason"] == "business_failure"
    for open_id, offer_id in encrypted.items():
        shape = shape_of(SEED, int(offer_id))
        key = open_id if shape.hides_id else offer_id
        doc = db.products.find_one({"_id": key})
        assert doc is not None and doc["open_offer_id"] == open_id and doc["source_api"] == "fenxiao.info", offer_id
        assert doc["subject"] == CATALOGUE.offer(offer_id).subject
    for offer_id in ids[40:]:
        assert db.products.find_one({"_id": offer_id})["open_offer_id"] is None
    envelopes = {shape_of(SEED, int(offer_id)).info_envelope for offer_id in ids}
    assert envelopes == {"top", "wrapped", "bare"}
    again = await run_crawl(settings, ids=",".join(refs[:-1]), api="fenxiao.info")
    assert again.stats.get_value("ali1688/fresh") == 60 and again.stats.get_value("ali1688/request/sent") is None


# -- end to end: the emulator sends every variant, deterministically per offer ---------------------

@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("api", ["product.get", "crossborder", "fenxiao", "fenxiao.info"])
async def test_crawls_exercise_every_shape_of_every_api(emulator, database, api):
    uri, name, db = database
    ids = fresh_ids(120)
    shapes = {offer_id: shape_of(SEED, int(offer_id)) for offer_id in ids}
    extra = {"currency": "USD"} if api == "crossborder" else {}
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(ids), api=api, **extra)
    assert crawler.stats.get_value("ali1688/products") == len(ids)  # every shape read and valid
    docs = {doc["_id"]: doc for doc in db.products.find()}
    assert set(docs) == set(ids)
    for offer_id, doc in docs.items():
        shape, offer = shapes[offer_id], CATALOGUE.offer(offer_id)
        private = shape.reference_only and api != "crossborder"
        assert doc["price_source"] == ("reference" if private else "skus" if offer.quote_type == 1 and offer.skus
                                       else "tiers"), offer_id
        assert bool(doc["price_tiers"]) is not private
        if offer.status == "expired":
            assert doc["status"] == shape.expired_as and doc["available"] is False
        assert all(isinstance(sku["attributes"], list) for sku in doc["skus"])
        if offer.skus and api.startswith("fenxiao") and not private:  # both spellings give the same SKU attributes
            assert doc["skus"][0]["attributes"][0]["value"] == offer.skus[0].values[0].value
        if api == "crossborder":
            assert doc["foreign_currency"] == "USD" and doc["price_tiers"][0]["foreign_price"] is not None
            assert doc["main_video"] == (offer.main_video or None)  # mainVideo or mainVedio
            assert doc["month_sold"] == int(offer_id) % 20000 and doc["sold_out"] is (offer.amount_on_sale == 0)
    seen = {(shape.reference_only, shape.java_doubles, shape.real_fenxiao, shape.vedio) for shape in shapes.values()}
    assert {variant[0] for variant in seen} == {True, False} and {variant[2] for variant in seen} == {True, False}


async def crawl_rewritten(uri: str, name: str, ids: list[str], change: Any) -> Any:
    """Crawl ``ids`` through a proxy that lets ``change(offer id, reply)`` edit each decoded product reply."""
    def rewrite(offer_id: str, status: int, body: bytes) -> bytes | None:
        data = json.loads(body)
        change(offer_id, data)
        return json.dumps(data).encode()

    with gateway_emulator("--seed", str(SEED)) as gateway, gateway_proxy(gateway.url, rewrite) as proxy:
        return await run_crawl(crawl_settings(proxy.url, uri, name), ids=",".join(ids))


@pytest_twisted.ensureDeferred
async def test_an_unknown_status_is_counted_and_logged_once(database, caplog):
    uri, name, db = database
    ids = fresh_ids(6)

    def change(offer_id: str, data: dict[str, Any]) -> None:
        data["productInfo"]["status"] = "frozen-by-risk"

    crawler = await crawl_rewritten(uri, name, ids, change)
    assert crawler.stats.get_value("ali1688/status/unknown") == len(ids)
    assert db.products.count_documents({"status": "frozen-by-risk", "available": True}) == len(ids)
    assert sum("an offer status no rule knows: 'frozen-by-risk'" in r.getMessage() for r in caplog.records) == 1


# -- shape drift -------------------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["product.get", "crossborder", "fenxiao", "fenxiao.info"])
def test_the_emulators_replies_carry_no_key_the_rules_do_not_know(api):
    """Every key the emulator sends (in every shape) is read or knowingly kept in raw: a new key in
    a real reply stands out."""
    from ali1688spider.aop.apis import PRODUCT_APIS
    from ali1688spider.aop.shape import drift
    from ali1688spider.sandbox.views import ProductBodies

    bodies = ProductBodies(CATALOGUE)
    for offer_id in CATALOGUE.offer_ids(200, start=650_000_000_000):
        open_id = open_ids.encrypt(SEED, offer_id) if api == "fenxiao.info" and offer_id % 2 else ""
        body, found = bodies.body(api, offer_id, "en", 0, "USD", open_id)
        assert found
        payload = PRODUCT_APIS[api].product_payload(decode_json(body))
        assert drift(api, payload) == (set(), set()), offer_id


def test_drift_names_new_and_missing_keys():
    from ali1688spider.aop.shape import drift

    payload = through_json({**CROSSBORDER_DETAIL, "newField": 1, "subject": ""})
    payload["productSaleInfo"]["priceRangeList"][0]["tierBonus"] = "1"
    payload["productSkuInfos"][1]["skuWeightGram"] = 5
    del payload["status"]
    unknown, missing = drift("crossborder", payload)
    assert unknown == {"newField", "productSaleInfo.priceRangeList[].tierBonus", "productSkuInfos[].skuWeightGram"}
    assert missing == {"subject", "status"}


@pytest_twisted.ensureDeferred
async def test_a_new_key_and_a_missing_one_fail_the_shape_monitor(database, caplog):
    uri, name, db = database
    ids = fresh_ids(30)

    def change(offer_id: str, data: dict[str, Any]) -> None:
        if int(offer_id) % 3 == 0:  # a third of the replies: 1688 added a key and dropped another
            data["productInfo"]["saleInfo"]["priceAuthV2"] = True
            data["productInfo"].pop("status", None)

    crawler = await crawl_rewritten(uri, name, ids, change)
    stats = crawler.stats.get_stats()
    changed = sum(1 for offer_id in ids if int(offer_id) % 3 == 0)
    assert stats["ali1688/shape/product.get/sampled"] == len(ids)
    assert stats["ali1688/shape/product.get/unknown/saleInfo.priceAuthV2"] == changed
    assert stats["ali1688/shape/product.get/missing/status"] == changed
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("monitors at the end"))
    assert "FAIL  Reply shape" in summary and "new saleInfo.priceAuthV2" in summary and "missing status" in summary
    run = db.runs.find_one({})
    assert run["shape"]["product.get"]["unknown"] == {"saleInfo.priceAuthV2": changed}
