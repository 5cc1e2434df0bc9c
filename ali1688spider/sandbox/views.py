"""The three product APIs' views of one :class:`~.catalogue.Offer`, in each API's own field names
(PROTOCOL.md §5), and their serialised bodies behind an LRU cache.

``product.get`` sends relative image paths and ``yyyyMMddHHmmssSSS+0800`` dates; ``crossborder``
sends absolute image URLs, translations, ``yyyy-MM-dd HH:mm:ss`` dates, the prices beside the tiers
(consign, jxhy, distribution, channel, promotion) and, when the call names a ``currency``, the
``foreignCurrency*`` prices; ``fenxiao`` mirrors the crossborder names with the
``productID``/``categoryID`` spelling of its own family, or the spellings of real distribution
replies. Which variant an offer gets (a reference price only, Java doubles, …) is its
:class:`~.shapes.Shape`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from .catalogue import Catalogue, Offer, Sku, absolute_image, money_number, money_text
from .shapes import DEFAULT_RATE, EXCHANGE_RATES, Shape, message_key, shape_of
from .vocabulary import UNIT_TRANSLATIONS

PRODUCT_GET = "product.get"
CROSSBORDER = "crossborder"
FENXIAO = "fenxiao"
FENXIAO_INFO = "fenxiao.info"

NOT_FOUND_MESSAGE = "商品不存在"
NOT_FOUND_BODIES: dict[str, dict[str, Any]] = {
    PRODUCT_GET: {"success": False, "errorCode": "500_004", "errMsg": NOT_FOUND_MESSAGE},
    CROSSBORDER: {"result": {"success": False, "code": "SP0056", "message": NOT_FOUND_MESSAGE}},
    FENXIAO: {"success": False, "errorCode": "OFFER_NOT_FOUND", "errorMsg": NOT_FOUND_MESSAGE},
    FENXIAO_INFO: {"success": False, "errorCode": "OFFER_NOT_FOUND", "errorMsg": NOT_FOUND_MESSAGE},
}
SHIPPING_GUARANTEES = ("shipIn24Hours", "shipIn48Hours", "shipIn72Hours")
PLAIN = Shape(reference_only=False, reference_range=False, reference_beside=False, java_doubles=False,
              real_fenxiao=False, vedio=False, expired_as="expired", message_key=0)


def not_found_body(api: str, shape: Shape = PLAIN) -> dict[str, Any]:
    """The API's "no such offer" reply, its text under the key this offer's shape uses."""
    body = json.loads(json.dumps(NOT_FOUND_BODIES[api]))
    if api == FENXIAO_INFO and shape.info_envelope != "top":
        body = {"result": {**body, "code": body.pop("errorCode")}}
    target = body["result"] if "result" in body else body
    documented = next(iter(key for key in ("errMsg", "errorMsg", "message") if key in target))
    target[message_key(api, shape)] = target.pop(documented)
    return body


def dumps(data: object) -> bytes:
    """Compact UTF-8 JSON, as the gateway sends it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + "000+0800"


def _price(offer: Offer, cents: int, shape: Shape = PLAIN) -> str | int | float:
    if offer.prices_as_text:
        return money_text(cents)
    number = money_number(cents)
    return float(number) if shape.java_doubles else number  # 12 → 12.0, as a Java double prints


def _count(number: int, shape: Shape) -> int | float:
    """A count, or the same count as a Java double (``2663.0``) for offers of that shape."""
    return float(number) if shape.java_doubles else number


def _status(offer: Offer, shape: Shape) -> str:
    return shape.expired_as if offer.status == "expired" else offer.status


def _reference(offer: Offer, shape: Shape) -> str:
    """``referencePrice``: the span of the tiers and SKU prices as "low-high" text (one price when
    they agree); a private-price offer whose shape says so sends its first tier's price alone.
    The same in every view of the offer."""
    if shape.reference_only and not shape.reference_range:
        return money_text(offer.tiers[0].price_cents)
    prices = [tier.price_cents for tier in offer.tiers] + [sku.price_cents for sku in offer.skus]
    low, high = min(prices), max(prices)
    return money_text(low) if low == high else f"{money_text(low)}-{money_text(high)}"


def _foreign(cents: int, currency: str) -> str:
    rate = Decimal(EXCHANGE_RATES.get(currency.upper(), DEFAULT_RATE))
    return str((Decimal(cents) / 100 * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _kilograms(grams: int) -> int | float:
    return grams // 1000 if grams % 1000 == 0 else grams / 1000


def translate(country: str, text: str) -> str:
    """The emulator's "translation" of Chinese ``text`` into the language ``country``:
    ``[en] 纯棉T恤`` (crossborder ``…Trans`` fields, and what the discovery APIs match)."""
    return f"[{country}] {text}" if text else ""


def shipping_guarantee(offer_id: int) -> str:
    """How fast the offer ships (crossborder ``shippingTimeGuarantee``): a third of the offers each
    ``shipIn24Hours``, ``shipIn48Hours``, ``shipIn72Hours``; the searches' ``shipIn48Hours`` filter."""
    return SHIPPING_GUARANTEES[offer_id % len(SHIPPING_GUARANTEES)]


def category_levels(category_id: int) -> tuple[int, int, int]:
    """``(topCategoryId, secondCategoryId, thirdCategoryId)`` of a leaf category, made up from its
    id (the catalogue knows leaves only); the same in the detail and the search replies."""
    return category_id // 1_000_000 or category_id, category_id // 1000 or category_id, category_id


# -- alibaba.product.get -----------------------------------------------------------------------

def _product_get_sku(offer: Offer, sku: Sku, shape: Shape = PLAIN) -> dict[str, Any]:
    item: dict[str, Any] = {
        "attributes": [
            {"attributeID": v.attribute_id, "attributeValue": v.value,
             **({"skuImageUrl": v.image} if v.image else {})}
            for v in sku.values
        ],
        "cargoNumber": sku.cargo_number,
        "amountOnSale": _count(sku.amount_on_sale, shape),
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
    }
    if shape.reference_only:
        return item  # a private-price offer shows no SKU prices
    item["price"] = _price(offer, sku.price_cents, shape)
    return _with_optional_prices(item, offer, sku, shape)


def _price_ranges(offer: Offer, currency: str = "", shape: Shape = PLAIN) -> list[dict[str, Any]]:
    """The price tiers as crossborder and fenxiao send them (``priceRangeList``); with the asked
    currency's prices when the call named one."""
    tiers = []
    for t in offer.tiers:
        tier: dict[str, Any] = {"startQuantity": t.start_quantity, "price": _price(offer, t.price_cents, shape)}
        if currency:
            tier["foreignCurrencyPrice"] = _foreign(t.price_cents, currency)
        tiers.append(tier)
    return tiers


def _with_optional_prices(item: dict[str, Any], offer: Offer, sku: Sku, shape: Shape = PLAIN) -> dict[str, Any]:
    """Add ``retailPrice`` / ``consignPrice`` when the SKU has them (product.get and fenxiao)."""
    if sku.retail_cents is not None:
        item["retailPrice"] = _price(offer, sku.retail_cents, shape)
    if sku.consign_cents is not None:
        item["consignPrice"] = _price(offer, sku.consign_cents, shape)
    return item


def product_get_view(offer: Offer, shape: Shape = PLAIN) -> dict[str, Any]:
    """``alibaba.product.get``: ``{"productInfo": {…}, "bizGroupInfos": [], "createTime", …}``."""
    sale_info: dict[str, Any] = {
        "supportOnlineTrade": True,
        "mixWholeSale": offer.mix_wholesale,
        "saleType": "normal",
        "priceRanges": [{"startQuantity": t.start_quantity, "price": _price(offer, t.price_cents, shape)}
                        for t in offer.tiers],
        "amountOnSale": _count(offer.amount_on_sale, shape),
        "unit": offer.unit,
        "minOrderQuantity": offer.min_order_quantity,
        "quoteType": offer.quote_type,
    }
    if offer.retail_cents is not None and not shape.reference_only:
        sale_info["retailprice"] = _price(offer, offer.retail_cents, shape)
    if shape.reference_only:
        del sale_info["priceRanges"]
    info: dict[str, Any] = {
        "productID": offer.offer_id,
        "productType": "wholesale",
        "categoryID": offer.category_id,
        "attributes": [
            {"attributeID": a.attribute_id, "attributeName": a.name, "valueID": a.value_id,
             "value": a.value, "isCustom": a.is_custom}
            for a in offer.attributes
        ],
        "status": _status(offer, shape),
        "subject": offer.subject,
        "description": offer.description,
        "language": "CHINESE",
        "image": {"images": list(offer.images)},
        "skuInfos": [_product_get_sku(offer, sku, shape) for sku in offer.skus],
        "saleInfo": sale_info,
        "shippingInfo": {
            "freightTemplateID": offer.freight_template_id,
            "unitWeight": _kilograms(offer.weight_grams),
            "sendGoodsAddressText": f"{offer.seller.province} {offer.seller.city}",
        },
        "supplierUserId": offer.seller.user_id,
        "supplierLoginId": offer.seller.login_id,
        "qualityLevel": offer.quality_level,
        "createTime": _stamp(offer.created),
        "lastUpdateTime": _stamp(offer.updated),
    }
    if shape.reference_only or shape.reference_beside:
        info["referencePrice"] = _reference(offer, shape)
    return {"productInfo": info, "bizGroupInfos": [], "createTime": _stamp(offer.created),
            "lastUpdateTime": _stamp(offer.updated)}


# -- product.search.queryProductDetail (cross-border) ------------------------------------------

def _crossborder_sku(offer: Offer, sku: Sku, country: str, currency: str, shape: Shape) -> dict[str, Any]:
    item: dict[str, Any] = {
        "amountOnSale": _count(sku.amount_on_sale, shape),
        "price": money_text(sku.price_cents),
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
        "cargoNumber": sku.cargo_number,
        "skuAttributes": [
            {"attributeId": v.attribute_id, "attributeName": v.name,
             "attributeNameTrans": translate(country, v.name), "value": v.value,
             "valueTrans": translate(country, v.value),
             **({"skuImageUrl": absolute_image(v.image)} if v.image else {})}
            for v in sku.values
        ],
        "fenxiaoPriceInfo": {"onePiecePrice": money_text(sku.consign_cents or sku.price_cents),
                             "offerPrice": money_text(sku.price_cents)},
    }
    if sku.cargo_number:
        item["skuCode"] = sku.cargo_number
    if sku.consign_cents is not None:
        item["consignPrice"] = money_text(sku.consign_cents)
    if sku.retail_cents is not None:
        item["retailPrice"] = money_text(sku.retail_cents)
    if offer.offer_id % 2:
        item["promotionPrice"] = money_text(max(1, sku.price_cents * 95 // 100))
    if currency:
        item["foreignCurrencyPrice"] = _foreign(sku.price_cents, currency)
        if sku.retail_cents is not None:
            item["foreignCurrencyRetailPrice"] = _foreign(sku.retail_cents, currency)
    return item


def _crossborder_shipping(offer: Offer) -> dict[str, Any]:
    length, width, height = offer.size_cm
    shipping: dict[str, Any] = {
        "sendGoodsAddressText": f"{offer.seller.province} {offer.seller.city}",
        "weight": _kilograms(offer.weight_grams),
        "width": width,
        "height": height,
        "length": length,
        "shippingTimeGuarantee": shipping_guarantee(offer.offer_id),
    }
    half = len(offer.skus) // 2  # the first half in grams (skuShippingInfoList), the rest in kg
    if offer.skus:
        shipping["skuShippingInfoList"] = [
            {"skuId": sku.sku_id, "specId": sku.spec_id, "weight": offer.weight_grams, "length": length,
             "width": width, "height": height} for sku in offer.skus[:half]]
        shipping["skuShippingDetails"] = [
            {"skuId": str(sku.sku_id), "weight": _kilograms(offer.weight_grams), "length": length,
             "width": width, "height": height} for sku in offer.skus[half:]]
    return shipping


def crossborder_view(offer: Offer, country: str, currency: str = "", shape: Shape = PLAIN) -> dict[str, Any]:
    """``product.search.queryProductDetail``: ``{"result": {"success": true, …, "result": {…}}}``."""
    first_tier = offer.tiers[0].price_cents
    consign = next((sku.consign_cents for sku in offer.skus if sku.consign_cents is not None), None)
    sale: dict[str, Any] = {
        "amountOnSale": _count(offer.amount_on_sale, shape),
        "priceRangeList": _price_ranges(offer, currency),
        "quoteType": offer.quote_type,
        "unitInfo": {"unit": offer.unit, "transUnit": UNIT_TRANSLATIONS.get(offer.unit, "piece")},
        "fenxiaoSaleInfo": {"onePiecePrice": money_text(consign or first_tier), "offerPrice": money_text(first_tier),
                            "startQuantity": 1, "onePieceFreePostage": offer.offer_id % 5 == 0},
    }
    if consign is not None:
        sale["consignPrice"] = money_text(consign)
    if offer.offer_id % 3 == 0:
        sale["jxhyPrice"] = money_text(max(1, first_tier * 95 // 100))
    if offer.retail_cents is not None:
        sale["retailPrice"] = money_text(offer.retail_cents)
    if currency:
        sale["foreignCurrencyPrice"] = _foreign(first_tier, currency)
        if offer.retail_cents is not None:
            sale["foreignCurrencyRetailPrice"] = _foreign(offer.retail_cents, currency)
    cargo = next((sku.cargo_number.rsplit("-", 1)[0] for sku in offer.skus if sku.cargo_number), "")
    top, second, third = category_levels(offer.category_id)
    detail: dict[str, Any] = {
        "offerId": offer.offer_id,
        "categoryId": offer.category_id,
        "categoryName": offer.category_name,
        "topCategoryId": top,
        "secondCategoryId": second,
        "thirdCategoryId": third,
        "subject": offer.subject,
        "subjectTrans": translate(country, offer.subject),
        "description": offer.description,
        ("mainVedio" if shape.vedio else "mainVideo"): offer.main_video,
        "productImage": {
            "images": [absolute_image(path) for path in offer.images],
            "whiteImage": absolute_image(offer.white_image) if offer.white_image else "",
        },
        "productAttribute": [
            {"attributeId": a.attribute_id, "attributeName": a.name, "value": a.value,
             "attributeNameTrans": translate(country, a.name), "valueTrans": translate(country, a.value)}
            for a in offer.attributes
        ],
        "productSkuInfos": [_crossborder_sku(offer, sku, country, currency, shape) for sku in offer.skus],
        "productSaleInfo": sale,
        "productShippingInfo": _crossborder_shipping(offer),
        "channelPrice": {"channelSkuPriceList": [
            {"skuId": sku.sku_id, "currentPrice": money_text(sku.price_cents)} for sku in offer.skus[:2]]},
        "minOrderQuantity": offer.min_order_quantity,
        "status": _status(offer, shape),
        "sellerOpenId": offer.seller.open_id,
        "companyName": offer.seller.company,
        "createDate": offer.created.strftime("%Y-%m-%d %H:%M:%S"),
        "tradeScore": offer.seller.trade_score,
        "sellerDataInfo": {"compositeServiceScore": offer.seller.trade_score, "logisticsExperienceScore": "4.0",
                           "repeatPurchasePercent": f"{offer.offer_id % 30}%", "tradeMedalLevel": "gold"},
        "soldOut": "true" if offer.amount_on_sale == 0 else "false",
        "monthSold": _count(offer.offer_id % 20000, shape),
    }
    if cargo:
        detail["productCargoNumber"] = cargo
    return {"result": {"success": True, "code": "200", "message": "成功", "result": detail}}


# -- alibaba.fenxiao.productInfo.get -----------------------------------------------------------

def _fenxiao_sku(offer: Offer, sku: Sku, shape: Shape = PLAIN) -> dict[str, Any]:
    item: dict[str, Any] = {
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
        "cargoNumber": sku.cargo_number,
        "amountOnSale": _count(sku.amount_on_sale, shape),
    }
    if shape.real_fenxiao:  # the spellings of real distribution replies
        item["attributes"] = [
            {"attributeID": v.attribute_id, "attributeValue": v.value,
             **({"skuImageUrl": absolute_image(v.image)} if v.image else {})}
            for v in sku.values
        ]
    else:
        item["skuAttributes"] = [
            {"attributeId": v.attribute_id, "attributeName": v.name, "value": v.value,
             **({"skuImageUrl": absolute_image(v.image)} if v.image else {})}
            for v in sku.values
        ]
    if shape.reference_only:
        return item
    item["price"] = _price(offer, sku.price_cents, shape)
    return _with_optional_prices(item, offer, sku, shape)


def fenxiao_view(offer: Offer, shape: Shape = PLAIN) -> dict[str, Any]:
    """``alibaba.fenxiao.productInfo.get``: ``{"success": true, "productInfo": {…}}``."""
    length, width, height = offer.size_cm
    tiers_key = "priceRanges" if shape.real_fenxiao else "priceRangeList"
    sale: dict[str, Any] = {
        "amountOnSale": _count(offer.amount_on_sale, shape),
        tiers_key: _price_ranges(offer, shape=shape),
        "quoteType": offer.quote_type,
        "unit": offer.unit,
        "minOrderQuantity": offer.min_order_quantity,
    }
    if shape.reference_only:
        del sale[tiers_key]
    attribute_id = "attributeID" if shape.real_fenxiao else "attributeId"
    info: dict[str, Any] = {
        "productID": offer.offer_id,
        "subject": offer.subject,
        "categoryID": offer.category_id,
        "categoryName": offer.category_name,
        "description": offer.description,
        "productImage": {"images": [absolute_image(path) for path in offer.images]},
        "productAttribute": [
            {attribute_id: a.attribute_id, "attributeName": a.name, "value": a.value}
            for a in offer.attributes
        ],
        "productSkuInfos": [_fenxiao_sku(offer, sku, shape) for sku in offer.skus],
        "productSaleInfo": sale,
        "productShippingInfo": {
            "sendGoodsAddressText": f"{offer.seller.province} {offer.seller.city}",
            "weight": _kilograms(offer.weight_grams),
            "width": width,
            "height": height,
            "length": length,
            "freightTemplateID": offer.freight_template_id,
        },
        "minOrderQuantity": offer.min_order_quantity,
        "status": _status(offer, shape),
        "supplierLoginId": offer.seller.login_id,
        "companyName": offer.seller.company,
        "createTime": _stamp(offer.created),
        "lastUpdateTime": _stamp(offer.updated),
    }
    if shape.reference_only:
        info["referencePrice"] = _reference(offer, shape)
    return {"success": True, "productInfo": info}


# -- alibaba.fenxiao.product.info.get ----------------------------------------------------------

def fenxiao_info_view(offer: Offer, shape: Shape = PLAIN, open_id: str = "") -> dict[str, Any]:
    """``alibaba.fenxiao.product.info.get``: the fenxiao offer in the envelope of this offer's
    shape. Asked by ``openOfferId``, the offer carries it, and half the offers drop their id."""
    info = fenxiao_view(offer, shape)["productInfo"]
    if open_id:
        info["openOfferId"] = open_id
        if shape.hides_id:
            del info["productID"]
    if shape.info_envelope == "top":
        return {"success": True, "productInfo": info}
    inner = {"productInfo": info} if shape.info_envelope == "wrapped" else info
    return {"result": {"success": True, "code": "200", "message": "成功", "result": inner}}


#: view(offer, country, currency, shape, open id): each API reads the arguments it has.
_RENDERERS: dict[str, Callable[[Offer, str, str, Shape, str], dict[str, Any]]] = {
    PRODUCT_GET: lambda offer, _country, _currency, shape, _open_id: product_get_view(offer, shape),
    CROSSBORDER: lambda offer, country, currency, shape, _open_id: crossborder_view(offer, country, currency, shape),
    FENXIAO: lambda offer, _country, _currency, shape, _open_id: fenxiao_view(offer, shape),
    FENXIAO_INFO: lambda offer, _country, _currency, shape, open_id: fenxiao_info_view(offer, shape, open_id),
}


def dated(offer: Offer, drift_epoch: int, epoch_set_at: Mapping[int, datetime]) -> Offer:
    """The offer with its update time moved to when the epoch of its drift was set while the
    emulator ran (Beijing wall clock), when that is later than its made-up one. On the platform a
    change made after a fetch carries a later ``lastUpdateTime``/``modifyDate``, which is what
    change detection by listing relies on; a drift's made-up date lies in the past."""
    moment = epoch_set_at.get(drift_epoch) if drift_epoch else None
    return replace(offer, updated=moment) if moment is not None and moment > offer.updated else offer


class ProductBodies:
    """Serialised replies of the product APIs, computed once per (api, offer id, country,
    currency, drift).

    The cache is keyed on the epoch in which the offer last drifted
    (:meth:`~.catalogue.Catalogue.drift_epoch`), not on the epoch asked for: a new epoch is served
    at once, and the bodies of the offers it leaves alone stay cached.
    """

    def __init__(self, catalogue: Catalogue, cache_size: int = 8192,
                 epoch_set_at: Mapping[int, datetime] | None = None) -> None:
        self.catalogue = catalogue
        self.epoch_set_at = epoch_set_at if epoch_set_at is not None else {}  # see dated()
        self._cached_body = lru_cache(maxsize=cache_size)(self._body)

    def shape(self, offer_id: int) -> Shape:
        return shape_of(self.catalogue.seed, offer_id)

    def not_found(self, api: str, offer_id: int = 0) -> bytes:
        """The API's "no such offer" reply (its text under the key this offer's shape uses)."""
        return dumps(not_found_body(api, self.shape(offer_id)))

    def body(self, api: str, offer_id: int, country: str = "", epoch: int = 0,
             currency: str = "", open_id: str = "") -> tuple[bytes, bool]:
        """``(body, found)`` of the offer at ``epoch``: ``found`` is False for the API's "no such
        offer" reply. ``open_id``: the ``openOfferId`` it was asked by (fenxiao.info). ``KeyError``
        for an API that is not a product API."""
        if api != CROSSBORDER:
            country = currency = ""
        return self._cached_body(api, offer_id, country, currency, open_id,
                                 self.catalogue.drift_epoch(offer_id, epoch))

    def _body(self, api: str, offer_id: int, country: str, currency: str, open_id: str,
              drift_epoch: int) -> tuple[bytes, bool]:
        render = _RENDERERS[api]
        offer = self.catalogue.offer(offer_id, drift_epoch)
        if offer is None:
            return self.not_found(api, offer_id), False
        offer = dated(offer, drift_epoch, self.epoch_set_at)
        return dumps(render(offer, country, currency, self.shape(offer_id), open_id)), True
