"""Normalisation of the three product-detail payloads into one Product (PROTOCOL.md §5)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from ali1688spider.aop.apis import CROSSBORDER, FENXIAO, PRODUCT_GET
from ali1688spider.aop.classify import decode_json
from ali1688spider.aop.errors import AopError
from ali1688spider.aop.normalize import (
    NormalizationError,
    image_url,
    normalize,
    parse_datetime,
    parse_decimal,
    parse_product_id,
    parse_quantity,
)
from ali1688spider.aop.product import Attribute, Package, PriceTier, Product, Seller, Shipping

OFFER_ID = "610784549587"
CST = timezone(timedelta(hours=8))
SKU_IDS = ["4567890123451", "4567890123452", "4567890123453"]

# alibaba.product.get, as the gateway sends it: prices are JSON numbers, images relative paths,
# SKU attributes carry only attributeID + attributeValue, tiers arrive unsorted.
PRODUCT_GET_REPLY = """{
  "success": true,
  "productInfo": {
    "productID": 610784549587,
    "productType": "wholesale",
    "categoryID": 127380009,
    "subject": "2024夏季新款纯棉短袖T恤男宽松圆领打底衫",
    "description": "<p><img src=\\"https://cbu01.alicdn.com/img/ibank/O1CN01desc.jpg\\"/>精梳棉，不起球</p>",
    "language": "CHINESE",
    "status": "published",
    "attributes": [
      {"attributeID": 2176, "attributeName": "品牌", "valueID": 0, "value": "其他", "isCustom": false},
      {"attributeID": 287, "attributeName": "材质", "valueID": 3228, "value": "棉", "isCustom": false},
      {"attributeID": 3216, "attributeName": "颜色", "valueID": 28320, "value": "白色", "isCustom": false},
      {"attributeID": 450, "attributeName": "尺码", "valueID": 28314, "value": "L", "isCustom": false}
    ],
    "image": {"images": [
      "img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg",
      "//cbu01.alicdn.com/img/ibank/O1CN01d4e5f6_!!2207654321-0-cib.jpg",
      "img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg"
    ]},
    "skuInfos": [
      {"attributes": [{"attributeID": 3216, "attributeValue": "白色", "skuImageUrl": "img/ibank/O1CN01white.jpg"},
                      {"attributeID": 450, "attributeValue": "L"}],
       "cargoNumber": "TX-W-L", "amountOnSale": 1200, "retailPrice": 25.00, "price": 12.50,
       "skuId": 4567890123451, "specId": "b6c1f1e0a7d34e5f9c8b7a6d5e4f3a21", "consignPrice": 13.80},
      {"attributes": [{"attributeID": 3216, "attributeValue": "白色", "skuImageUrl": "img/ibank/O1CN01white.jpg"},
                      {"attributeID": 450, "attributeValue": "XL"}],
       "cargoNumber": "TX-W-XL", "amountOnSale": 800, "retailprice": 25.00, "price": 12.50,
       "skuId": 4567890123452, "specId": "c7d2a3b4e5f60718293a4b5c6d7e8f90", "consignPrice": 13.80},
      {"attributes": [{"attributeID": 3216, "attributeValue": "黑色", "skuImageUrl": "img/ibank/O1CN01black.jpg"},
                      {"attributeID": 1627207, "attributeValue": "L"}],
       "cargoNumber": "TX-B-L", "amountOnSale": 1000, "retailPrice": 26.00, "price": 13.00,
       "skuId": 4567890123453, "specId": "d8e3b4c5f6a7081920a1b2c3d4e5f6a7", "consignPrice": 14.30}
    ],
    "saleInfo": {
      "supportOnlineTrade": true, "mixWholeSale": true, "saleType": "normal",
      "priceRanges": [{"startQuantity": 100, "price": 11.00}, {"startQuantity": 2, "price": 12.50},
                      {"startQuantity": 500, "price": 10.20}],
      "amountOnSale": 3000, "unit": "件", "minOrderQuantity": 2, "quoteType": 1, "retailprice": 25.00
    },
    "shippingInfo": {"freightTemplateID": 18273645, "unitWeight": 0.25,
                     "sendGoodsAddressText": "浙江省 杭州市 余杭区"},
    "supplierUserId": 2207654321,
    "supplierLoginId": "杭州优品服饰",
    "qualityLevel": 3
  },
  "bizGroupInfos": [],
  "createTime": "20240501093000000+0800",
  "lastUpdateTime": "20240612184512345+0800"
}"""


def _crossborder_sku(sku_id: int, colour: str, colour_en: str, size: str, price: str, stock: int) -> dict[str, Any]:
    return {
        "amountOnSale": stock, "price": price, "consignPrice": "13.80", "skuId": sku_id,
        "specId": f"spec-{sku_id}", "cargoNumber": f"TX-{colour_en[0]}-{size}",
        "skuAttributes": [
            {"attributeId": 3216, "attributeName": "颜色", "value": colour, "valueTrans": colour_en,
             "skuImageUrl": f"https://cbu01.alicdn.com/img/ibank/O1CN01{colour_en.lower()}.jpg"},
            {"attributeId": 450, "attributeName": "尺码", "value": size, "valueTrans": size},
        ],
    }


# product.search.queryProductDetail (cross-border), the whole reply: prices are strings.
CROSSBORDER_REPLY: dict[str, Any] = {"result": {"success": True, "code": "200", "message": "成功", "result": {
    "offerId": 610784549587,
    "categoryId": 127380009,
    "categoryName": "T恤",
    "subject": "2024夏季新款纯棉短袖T恤男宽松圆领打底衫",
    "subjectTrans": "2024 Summer New Cotton Short Sleeve T-shirt Men Loose Round Neck Base Shirt",
    "description": "<p>精梳棉，不起球</p>",
    "mainVideo": "https://cloud.video.taobao.com/play/u/2207654321/p/1/e/6/t/1/400000000.mp4",
    "productImage": {
        "images": ["https://cbu01.alicdn.com/img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg",
                   "https://cbu01.alicdn.com/img/ibank/O1CN01d4e5f6_!!2207654321-0-cib.jpg"],
        "whiteImage": "https://cbu01.alicdn.com/img/ibank/O1CN01white_bg.jpg",
    },
    "productAttribute": [
        {"attributeId": "287", "attributeName": "材质", "value": "棉",
         "attributeNameTrans": "Material", "valueTrans": "Cotton"},
        {"attributeId": "2176", "attributeName": "品牌", "value": "其他",
         "attributeNameTrans": "Brand", "valueTrans": "Other"},
    ],
    "productSkuInfos": [
        _crossborder_sku(4567890123451, "白色", "White", "L", "12.50", 1200),
        _crossborder_sku(4567890123452, "白色", "White", "XL", "12.50", 800),
        _crossborder_sku(4567890123453, "黑色", "Black", "L", "13.00", 1000),
    ],
    "productSaleInfo": {
        "amountOnSale": 3000, "quoteType": 1,
        "priceRangeList": [{"startQuantity": 2, "price": "12.50"}, {"startQuantity": 100, "price": "11.00"},
                           {"startQuantity": 500, "price": "10.20"}],
        "unitInfo": {"unit": "件", "transUnit": "piece"},
    },
    "productShippingInfo": {"sendGoodsAddressText": "浙江省 杭州市 余杭区", "weight": "0.25",
                            "width": 25, "height": 3, "length": 30},
    "minOrderQuantity": 2,
    "status": "published",
    "sellerOpenId": "BBBx3kVJ0n6Kp9QhYf2wGmTrA",
    "companyName": "杭州优品服饰有限公司",
    "createDate": "2024-05-01 09:30:00",
    "tradeScore": "4.5",
}}}


# alibaba.fenxiao.productInfo.get: prices as numbers in tiers, as text in SKUs, no SKU stock
# figure on the offer (stock is the SKU total), upper-case status.
FENXIAO_REPLY: dict[str, Any] = {"success": True, "productInfo": {
    "productID": "610784549587",
    "subject": "2024夏季新款纯棉短袖T恤男宽松圆领打底衫",
    "categoryID": 127380009,
    "productImage": {"images": ["/img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg"]},
    "productSkuInfos": [
        {"skuId": 4567890123451, "specId": "s1", "price": "12.5", "retailPrice": "25", "amountOnSale": 1200,
         "attributes": [{"attributeID": 3216, "attributeName": "颜色", "attributeValue": "白色"}]},
        {"skuId": "4567890123452", "specId": "s2", "price": "12.50", "amountOnSale": 800,
         "attributes": [{"attributeID": 3216, "attributeName": "颜色", "attributeValue": "白色"}]},
        {"skuId": 4567890123453, "specId": "s3", "price": Decimal("13"), "amountOnSale": 1000,
         "attributes": [{"attributeID": 3216, "attributeName": "颜色", "attributeValue": "黑色"}]},
    ],
    "productSaleInfo": {"priceRanges": [{"startQuantity": 500, "price": Decimal("10.2")},
                                        {"startQuantity": 100, "price": 11},
                                        {"startQuantity": 2, "price": Decimal("12.50")}],
                        "unit": "件", "minOrderQuantity": 2, "quoteType": "1"},  # a string here
    "productShippingInfo": {"sendGoodsAddressText": "浙江省 杭州市", "unitWeight": Decimal("0.25")},
    "status": "PUBLISHED",
}}


def product_get_payload() -> dict[str, Any]:
    payload = PRODUCT_GET.product_payload(decode_json(PRODUCT_GET_REPLY))
    assert isinstance(payload, dict)
    return payload


def crossborder_payload() -> dict[str, Any]:
    # Through JSON text like the gateway's body, so prices arrive as the decoder gives them.
    reply = decode_json(json.dumps(CROSSBORDER_REPLY, ensure_ascii=False))
    payload = CROSSBORDER.product_payload(reply)
    assert isinstance(payload, dict)
    return payload


def fenxiao_payload() -> dict[str, Any]:
    payload = FENXIAO.product_payload(copy.deepcopy(FENXIAO_REPLY))
    assert isinstance(payload, dict)
    return payload


PAYLOADS = {"product.get": product_get_payload, "crossborder": crossborder_payload, "fenxiao": fenxiao_payload}


def assert_decimal(value: object, expected: str) -> None:
    assert isinstance(value, Decimal), f"{value!r} is not a Decimal"
    assert value == Decimal(expected)


# -- alibaba.product.get -------------------------------------------------------------------------

def test_product_get_identity_and_text() -> None:
    payload = product_get_payload()
    product = normalize("product.get", payload)
    assert product.product_id == OFFER_ID
    assert product.source_api == "product.get"
    assert product.subject == "2024夏季新款纯棉短袖T恤男宽松圆领打底衫"
    assert product.subject_trans is None
    assert product.language is None  # productInfo.language is the offer's own, not a translation
    assert product.category_id == "127380009"
    assert product.category_name is None
    assert product.status == "published"
    assert product.description_html is not None and "精梳棉" in product.description_html
    assert product.currency == "CNY"
    assert product.detail_url == "https://detail.1688.com/offer/610784549587.html"
    assert product.raw is payload


def test_product_get_images_are_absolute_and_unique() -> None:
    product = normalize("product.get", product_get_payload())
    assert product.images == [
        "https://cbu01.alicdn.com/img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg",
        "https://cbu01.alicdn.com/img/ibank/O1CN01d4e5f6_!!2207654321-0-cib.jpg",
    ]


def test_product_get_attributes() -> None:
    product = normalize("product.get", product_get_payload())
    assert product.attributes[:2] == [
        Attribute(attribute_id="2176", name="品牌", value="其他"),
        Attribute(attribute_id="287", name="材质", value="棉"),
    ]
    assert len(product.attributes) == 4


def test_product_get_price_tiers_sorted_as_decimal() -> None:
    product = normalize("product.get", product_get_payload())
    assert product.price_tiers == [
        PriceTier(2, Decimal("12.50")), PriceTier(100, Decimal("11.00")), PriceTier(500, Decimal("10.20")),
    ]
    for tier in product.price_tiers:
        assert_decimal(tier.price, str(tier.price))
        assert isinstance(tier.min_quantity, int)
    # quoteType 1: each SKU has its own price, so the span is the SKU prices', not the tiers'
    assert product.quote_type == 1 and product.price_source == "skus"
    assert_decimal(product.min_price, "12.50")
    assert_decimal(product.max_price, "13.00")


def test_product_get_skus() -> None:
    product = normalize("product.get", product_get_payload())
    assert [sku.sku_id for sku in product.skus] == SKU_IDS
    first, second, third = product.skus
    assert first.spec_id == "b6c1f1e0a7d34e5f9c8b7a6d5e4f3a21"
    assert_decimal(first.price, "12.50")
    assert_decimal(first.retail_price, "25.00")
    assert_decimal(second.retail_price, "25.00")  # spelled ``retailprice`` in the payload
    assert_decimal(first.consign_price, "13.80")
    assert_decimal(third.price, "13.00")
    assert (first.stock, second.stock, third.stock) == (1200, 800, 1000)
    assert first.cargo_number == "TX-W-L"
    assert first.image == "https://cbu01.alicdn.com/img/ibank/O1CN01white.jpg"
    colour, size = first.attributes
    assert (colour.attribute_id, colour.name, colour.value) == ("3216", "颜色", "白色")
    assert colour.image == "https://cbu01.alicdn.com/img/ibank/O1CN01white.jpg"
    assert (size.attribute_id, size.name, size.value, size.image) == ("450", "尺码", "L", None)
    # An attribute id with no name anywhere in the payload keeps a None name, no crash.
    assert (third.attributes[1].attribute_id, third.attributes[1].name) == ("1627207", None)


def test_product_get_sale_seller_shipping_dates() -> None:
    product = normalize("product.get", product_get_payload())
    assert product.stock == 3000
    assert product.unit == "件"
    assert product.min_order_quantity == 2
    assert product.seller == Seller(login_id="杭州优品服饰", user_id="2207654321")
    assert product.shipping == Shipping(send_from="浙江省 杭州市 余杭区", weight=Decimal("0.25"),
                                        freight_template_id="18273645")
    assert isinstance(product.shipping.weight, Decimal)
    assert product.created_at == datetime(2024, 5, 1, 9, 30, tzinfo=CST)
    assert product.updated_at == datetime(2024, 6, 12, 18, 45, 12, 345000, tzinfo=CST)
    assert product.created_at is not None and product.created_at.utcoffset() == timedelta(hours=8)


# -- cross-border --------------------------------------------------------------------------------

def test_crossborder_fields() -> None:
    product = normalize("crossborder", crossborder_payload(), language="en")
    assert product.product_id == OFFER_ID
    assert product.source_api == "crossborder"
    assert product.subject_trans is not None and product.subject_trans.startswith("2024 Summer New Cotton")
    assert product.language == "en"
    assert (product.category_id, product.category_name) == ("127380009", "T恤")
    assert product.status == "published"
    assert len(product.images) == 2 and all(url.startswith("https://cbu01.alicdn.com/") for url in product.images)
    assert product.attributes[0] == Attribute("287", "材质", "棉", "Material", "Cotton")
    assert product.price_tiers == [
        PriceTier(2, Decimal("12.50")), PriceTier(100, Decimal("11.00")), PriceTier(500, Decimal("10.20")),
    ]
    black = product.skus[2]
    assert_decimal(black.price, "13.00")
    assert_decimal(black.consign_price, "13.80")
    assert black.retail_price is None
    assert [(a.name, a.value, a.value_trans) for a in black.attributes] == [
        ("颜色", "黑色", "Black"), ("尺码", "L", "L"),
    ]
    assert black.image == "https://cbu01.alicdn.com/img/ibank/O1CN01black.jpg"
    assert (product.stock, product.unit, product.min_order_quantity) == (3000, "件", 2)
    assert product.seller == Seller(open_id="BBBx3kVJ0n6Kp9QhYf2wGmTrA", company_name="杭州优品服饰有限公司",
                                    trade_score=Decimal("4.5"))
    assert product.shipping == Shipping(
        send_from="浙江省 杭州市 余杭区", weight=Decimal("0.25"),
        package=Package(length=Decimal("30"), width=Decimal("25"), height=Decimal("3"), weight=Decimal("0.25")))
    assert product.created_at == datetime(2024, 5, 1, 9, 30, tzinfo=CST)
    assert product.created_at is not None and product.created_at.tzinfo is not None
    assert product.updated_at is None


def test_crossborder_without_language_argument() -> None:
    assert normalize("crossborder", crossborder_payload()).language is None


# -- fenxiao -------------------------------------------------------------------------------------

def test_fenxiao_fields() -> None:
    product = normalize("fenxiao", fenxiao_payload())
    assert product.product_id == OFFER_ID
    assert product.source_api == "fenxiao"
    assert product.status == "PUBLISHED" and product.available  # kept as sent; any case is read
    assert product.images == ["https://cbu01.alicdn.com/img/ibank/O1CN01a1b2c3_!!2207654321-0-cib.jpg"]
    assert [tier.min_quantity for tier in product.price_tiers] == [2, 100, 500]
    assert_decimal(product.skus[0].retail_price, "25")
    assert product.skus[0].attributes[0].value == "白色"
    assert product.stock == 3000  # no offer-level figure: the sum of the SKU stock
    assert (product.unit, product.min_order_quantity) == ("件", 2)
    assert product.created_at is None and product.updated_at is None
    assert product.seller == Seller()


# -- the same offer through the three APIs -------------------------------------------------------

def test_same_offer_same_prices_skus_and_stock_through_every_api() -> None:
    products = [normalize(api, make()) for api, make in PAYLOADS.items()]
    reference = products[0]
    for product in products[1:]:
        assert product.product_id == reference.product_id
        assert product.price_tiers == reference.price_tiers
        assert [sku.sku_id for sku in product.skus] == [sku.sku_id for sku in reference.skus] == SKU_IDS
        assert [sku.price for sku in product.skus] == [sku.price for sku in reference.skus]
        assert [sku.stock for sku in product.skus] == [sku.stock for sku in reference.skus]
        assert (product.stock, product.min_price, product.max_price) == (3000, Decimal("12.5"), Decimal("13"))
        assert product.shipping.weight == reference.shipping.weight
        assert product.detail_url == reference.detail_url
    assert {p.source_api for p in products} == {"product.get", "crossborder", "fenxiao"}


# -- bad values name their field -----------------------------------------------------------------

BAD_PRICES = ["abc", "-1", "-0.01", -3, "NaN", "nan", "Infinity", "-Infinity", "sNaN", "1,5", "¥12.5",
              "1_000", Decimal("NaN"), Decimal("Infinity"), float("nan"), float("inf"), True, [12], {"v": 1}, "1e20"]


@pytest.mark.parametrize("bad", BAD_PRICES, ids=repr)
def test_bad_tier_price_raises_naming_the_field(bad: object) -> None:
    payload = product_get_payload()
    payload["productInfo"]["saleInfo"]["priceRanges"][1]["price"] = bad
    with pytest.raises(NormalizationError) as info:
        normalize("product.get", payload)
    assert info.value.field == "productInfo.saleInfo.priceRanges[1].price"
    assert "productInfo.saleInfo.priceRanges[1].price" in str(info.value)
    assert isinstance(info.value, AopError)


def test_bad_sku_prices_name_the_field() -> None:
    payload = crossborder_payload()
    payload["productSkuInfos"][2]["price"] = "十二元"
    with pytest.raises(NormalizationError, match=r"productSkuInfos\[2\]\.price"):
        normalize("crossborder", payload)
    payload = product_get_payload()
    payload["productInfo"]["skuInfos"][1]["retailprice"] = "-25"
    with pytest.raises(NormalizationError) as info:
        normalize("product.get", payload)
    assert info.value.field == "productInfo.skuInfos[1].retailprice"


def test_bad_quantities_name_the_field() -> None:
    payload = fenxiao_payload()
    payload["productSkuInfos"][0]["amountOnSale"] = "很多"
    with pytest.raises(NormalizationError) as info:
        normalize("fenxiao", payload)
    assert info.value.field == "productSkuInfos[0].amountOnSale"
    payload = crossborder_payload()
    payload["productSaleInfo"]["priceRangeList"][0]["startQuantity"] = "2.5"
    with pytest.raises(NormalizationError, match="not a whole number"):
        normalize("crossborder", payload)


def test_tier_without_price_is_an_error() -> None:
    payload = crossborder_payload()
    del payload["productSaleInfo"]["priceRangeList"][0]["price"]
    with pytest.raises(NormalizationError) as info:
        normalize("crossborder", payload)
    assert info.value.field == "productSaleInfo.priceRangeList[0].price"


@pytest.mark.parametrize("bad", ["2024-13-01 09:30:00", "2024/05/01 09:30:00", "yesterday", "2024-05-01",
                                 "20240501093000000", "20240501093000000+2500", "20240230093000000+0800",
                                 20240501093000, "2024-05-01T09:30:00+08:00"], ids=repr)
def test_bad_dates_raise_naming_the_field(bad: object) -> None:
    payload = crossborder_payload()
    payload["createDate"] = bad
    with pytest.raises(NormalizationError) as info:
        normalize("crossborder", payload)
    assert info.value.field == "createDate"


def test_bad_reply_time_of_product_get() -> None:
    payload = product_get_payload()
    payload["lastUpdateTime"] = "2024-06-12"
    with pytest.raises(NormalizationError) as info:
        normalize("product.get", payload)
    assert info.value.field == "lastUpdateTime"


@pytest.mark.parametrize("bad", [12345678, "12345678", "1234567890123456", "0123456789", "61078454958a",
                                 -610784549587, "", None, True, Decimal("610784549587"), 6.10784549587e11],
                         ids=repr)
def test_bad_product_ids(bad: object) -> None:
    payload = product_get_payload()
    payload["productInfo"]["productID"] = bad
    with pytest.raises(NormalizationError) as info:
        normalize("product.get", payload)
    assert info.value.field == "productInfo.productID"


def test_product_id_accepts_int_and_text() -> None:
    assert parse_product_id(610784549587) == OFFER_ID
    assert parse_product_id(" 610784549587 ") == OFFER_ID
    assert parse_product_id(123456789) == "123456789"
    assert parse_product_id(999999999999999) == "999999999999999"


def test_sku_without_id_is_an_error() -> None:
    payload = fenxiao_payload()
    del payload["productSkuInfos"][1]["skuId"]
    with pytest.raises(NormalizationError) as info:
        normalize("fenxiao", payload)
    assert info.value.field == "productSkuInfos[1].skuId"


def test_wrong_section_types_are_errors() -> None:
    payload = product_get_payload()
    payload["productInfo"]["saleInfo"] = "n/a"
    with pytest.raises(NormalizationError, match=r"productInfo\.saleInfo"):
        normalize("product.get", payload)
    payload = crossborder_payload()
    payload["productSkuInfos"] = {"skuId": 1}
    with pytest.raises(NormalizationError, match="expected a list"):
        normalize("crossborder", payload)
    payload = fenxiao_payload()
    payload["image"] = {"images": "img/ibank/O1CN01a1b2c3.jpg"}
    del payload["productImage"]
    with pytest.raises(NormalizationError) as info:
        normalize("fenxiao", payload)
    assert info.value.field == "image.images"


def test_product_get_without_product_info() -> None:
    with pytest.raises(NormalizationError) as info:
        normalize("product.get", {"createTime": "20240501093000000+0800"})
    assert info.value.field == "productInfo"


def test_unknown_api_and_non_mapping_payload() -> None:
    with pytest.raises(ValueError, match="unknown api"):
        normalize("product.search", {})
    with pytest.raises(NormalizationError):
        normalize("fenxiao", ["not", "an", "object"])  # type: ignore[arg-type]


# -- missing optional parts ----------------------------------------------------------------------

MINIMAL: dict[str, dict[str, Any]] = {
    "product.get": {"productInfo": {"productID": 610784549587}},
    "crossborder": {"offerId": 610784549587},
    "fenxiao": {"productID": 610784549587, "productSaleInfo": None, "productImage": {}, "status": ""},
}


@pytest.mark.parametrize("api", list(MINIMAL))
def test_missing_optional_sections_give_empty_values(api: str) -> None:
    product = normalize(api, MINIMAL[api])
    assert product.product_id == OFFER_ID
    assert product.images == [] and product.attributes == [] and product.price_tiers == [] and product.skus == []
    assert product.min_price is None and product.max_price is None and product.stock is None
    assert product.subject is None and product.status is None and product.unit is None
    assert product.min_order_quantity is None and product.description_html is None
    assert product.seller == Seller() and product.shipping == Shipping()
    assert product.created_at is None and product.updated_at is None
    assert product.currency == "CNY"
    assert product.detail_url == "https://detail.1688.com/offer/610784549587.html"


def test_empty_strings_and_nulls_are_missing() -> None:
    payload = crossborder_payload()
    payload["productSkuInfos"][0].update(price="", consignPrice=None, amountOnSale="  ")
    payload["productShippingInfo"]["weight"] = ""
    product = normalize("crossborder", payload)
    sku = product.skus[0]
    assert (sku.price, sku.consign_price, sku.stock) == (None, None, None)
    assert product.shipping.weight is None
    assert product.stock == 3000


def test_sku_prices_alone_give_the_price_span() -> None:
    payload = product_get_payload()
    del payload["productInfo"]["saleInfo"]
    product = normalize("product.get", payload)
    assert product.price_tiers == []
    assert_decimal(product.min_price, "12.50")
    assert_decimal(product.max_price, "13.00")
    assert product.stock == 3000  # the sum of the SKU stock


# -- floats, Decimal and text --------------------------------------------------------------------

def test_float_input_never_produces_a_binary_artefact() -> None:
    payload = crossborder_payload()
    payload["productSaleInfo"]["priceRangeList"] = [{"startQuantity": 1.0, "price": 0.1},
                                                     {"startQuantity": 10, "price": 0.07}]
    payload["productSkuInfos"][0]["price"] = 1.1
    product = normalize("crossborder", payload)
    price = product.price_tiers[0].price
    assert isinstance(price, Decimal)
    assert str(price) == "0.1" and price == Decimal("0.1") and price != Decimal.from_float(0.1)
    assert str(product.price_tiers[1].price) == "0.07"
    assert product.price_tiers[0].min_quantity == 1
    assert str(product.skus[0].price) == "1.1"
    assert str(product.min_price) == "1.1"  # quoteType 1: the SKU prices


@pytest.mark.parametrize(("raw", "expected"), [
    (12, "12"), ("12.50", "12.50"), (" 12.5 ", "12.5"), (Decimal("12.50"), "12.50"), ("0", "0"),
    (0.1, "0.1"), ("1E+2", "1E+2"), (".5", "0.5"), ("+3.20", "3.20"),
])
def test_parse_decimal_forms(raw: object, expected: str) -> None:
    value = parse_decimal(raw)
    assert isinstance(value, Decimal) and value == Decimal(expected)


def test_parse_decimal_and_quantity_missing() -> None:
    assert parse_decimal(None) is None and parse_decimal("") is None and parse_decimal("   ") is None
    assert parse_quantity(None) is None
    assert parse_quantity("3000") == 3000 and parse_quantity(Decimal("12.0")) == 12


def test_json_nan_is_rejected_by_the_decoder_and_the_normaliser() -> None:
    # json.loads accepts the non-standard NaN even with parse_float=Decimal; decode_json refuses it,
    # and a NaN that reaches the normaliser some other way is refused there too.
    text = '{"offerId": 610784549587, "productSaleInfo": {"priceRangeList": [{"startQuantity": 1, "price": NaN}]}}'
    with pytest.raises(ValueError, match="NaN"):
        decode_json(text)
    payload = {"offerId": 610784549587,
               "productSaleInfo": {"priceRangeList": [{"startQuantity": 1, "price": float("nan")}]}}
    with pytest.raises(NormalizationError, match="priceRangeList"):
        normalize("crossborder", payload)


# -- dates and images ----------------------------------------------------------------------------

def test_parse_datetime_forms() -> None:
    assert parse_datetime("20240501093000000+0800") == datetime(2024, 5, 1, 9, 30, tzinfo=CST)
    assert parse_datetime("20240501013000123+0000") == datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=CST)
    assert parse_datetime("20240501093000-0530") == datetime(2024, 5, 1, 15, 0, tzinfo=UTC)
    parsed = parse_datetime("2024-05-01 09:30:00")
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=8)
    assert parsed == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    assert parse_datetime(None) is None and parse_datetime("") is None


@pytest.mark.parametrize(("path", "url"), [
    ("img/ibank/O1CN01x.jpg", "https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg"),
    ("/img/ibank/O1CN01x.jpg", "https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg"),
    ("//cbu01.alicdn.com/img/ibank/O1CN01x.jpg", "https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg"),
    ("http://cbu01.alicdn.com/img/ibank/O1CN01x.jpg", "https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg"),
    ("https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg", "https://cbu01.alicdn.com/img/ibank/O1CN01x.jpg"),
    ("", None), (None, None),
])
def test_image_url(path: str | None, url: str | None) -> None:
    assert image_url(path) == url


# -- to_dict -------------------------------------------------------------------------------------

def test_to_dict_is_plain_and_keeps_decimal_and_datetime() -> None:
    product = normalize("product.get", product_get_payload())
    data = product.to_dict()
    assert type(data) is dict
    assert data["product_id"] == OFFER_ID and data["source_api"] == "product.get"
    assert data["price_tiers"][0] == {"min_quantity": 2, "price": Decimal("12.50")}
    assert isinstance(data["min_price"], Decimal)
    assert isinstance(data["created_at"], datetime) and data["created_at"].tzinfo is not None
    sku = data["skus"][0]
    assert type(sku) is dict and sku["sku_id"] == SKU_IDS[0] and isinstance(sku["price"], Decimal)
    assert type(sku["attributes"][0]) is dict and sku["attributes"][0]["value"] == "白色"
    # inside the parts a None field is left out (fifty SKUs, a dozen optional prices each)
    assert data["seller"] == {"login_id": "杭州优品服饰", "user_id": "2207654321", "scores": {}}
    assert "promotion_price" not in sku and "foreign_price" not in data["price_tiers"][0]
    assert data["shipping"]["weight"] == Decimal("0.25")
    assert data["raw"]["productInfo"]["productID"] == 610784549587
    assert "raw" not in product.to_dict(include_raw=False)
    assert set(data) == {f for f in Product.__dataclass_fields__}
