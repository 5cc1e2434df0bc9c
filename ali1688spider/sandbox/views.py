"""The three product APIs' views of one :class:`~.catalogue.Offer`, in each API's own field names
(PROTOCOL.md §5), and their serialised bodies behind an LRU cache.

``product.get`` sends relative image paths and ``yyyyMMddHHmmssSSS+0800`` dates; ``crossborder``
sends absolute image URLs, translations and ``yyyy-MM-dd HH:mm:ss`` dates; ``fenxiao`` mirrors the
crossborder names with the ``productID``/``categoryID`` spelling of its own family.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from .catalogue import Catalogue, Offer, Sku, absolute_image, money_number, money_text
from .vocabulary import UNIT_TRANSLATIONS

PRODUCT_GET = "product.get"
CROSSBORDER = "crossborder"
FENXIAO = "fenxiao"

NOT_FOUND_MESSAGE = "商品不存在"
NOT_FOUND_BODIES: dict[str, dict[str, Any]] = {
    PRODUCT_GET: {"success": False, "errorCode": "500_004", "errMsg": NOT_FOUND_MESSAGE},
    CROSSBORDER: {"result": {"success": False, "code": "SP0056", "message": NOT_FOUND_MESSAGE}},
    FENXIAO: {"success": False, "errorCode": "OFFER_NOT_FOUND", "errorMsg": NOT_FOUND_MESSAGE},
}


def dumps(data: object) -> bytes:
    """Compact UTF-8 JSON, as the gateway sends it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + "000+0800"


def _price(offer: Offer, cents: int) -> str | int | float:
    return money_text(cents) if offer.prices_as_text else money_number(cents)


def _kilograms(grams: int) -> int | float:
    return grams // 1000 if grams % 1000 == 0 else grams / 1000


def _tr(country: str, text: str) -> str:
    return f"[{country}] {text}" if text else ""


# -- alibaba.product.get -----------------------------------------------------------------------

def _product_get_sku(offer: Offer, sku: Sku) -> dict[str, Any]:
    item: dict[str, Any] = {
        "attributes": [
            {"attributeID": v.attribute_id, "attributeValue": v.value,
             **({"skuImageUrl": v.image} if v.image else {})}
            for v in sku.values
        ],
        "cargoNumber": sku.cargo_number,
        "amountOnSale": sku.amount_on_sale,
        "price": _price(offer, sku.price_cents),
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
    }
    return _with_optional_prices(item, offer, sku)


def _price_ranges(offer: Offer) -> list[dict[str, Any]]:
    """The price tiers as crossborder and fenxiao send them (``priceRangeList``)."""
    return [{"startQuantity": t.start_quantity, "price": _price(offer, t.price_cents)} for t in offer.tiers]


def _with_optional_prices(item: dict[str, Any], offer: Offer, sku: Sku) -> dict[str, Any]:
    """Add ``retailPrice`` / ``consignPrice`` when the SKU has them (product.get and fenxiao)."""
    if sku.retail_cents is not None:
        item["retailPrice"] = _price(offer, sku.retail_cents)
    if sku.consign_cents is not None:
        item["consignPrice"] = _price(offer, sku.consign_cents)
    return item


def product_get_view(offer: Offer) -> dict[str, Any]:
    """``alibaba.product.get``: ``{"productInfo": {…}, "bizGroupInfos": [], "createTime", …}``."""
    sale_info: dict[str, Any] = {
        "supportOnlineTrade": True,
        "mixWholeSale": offer.mix_wholesale,
        "saleType": "normal",
        "priceRanges": [{"startQuantity": t.start_quantity, "price": _price(offer, t.price_cents)}
                        for t in offer.tiers],
        "amountOnSale": offer.amount_on_sale,
        "unit": offer.unit,
        "minOrderQuantity": offer.min_order_quantity,
        "quoteType": offer.quote_type,
    }
    if offer.retail_cents is not None:
        sale_info["retailprice"] = _price(offer, offer.retail_cents)
    info: dict[str, Any] = {
        "productID": offer.offer_id,
        "productType": "wholesale",
        "categoryID": offer.category_id,
        "attributes": [
            {"attributeID": a.attribute_id, "attributeName": a.name, "valueID": a.value_id,
             "value": a.value, "isCustom": a.is_custom}
            for a in offer.attributes
        ],
        "status": offer.status,
        "subject": offer.subject,
        "description": offer.description,
        "language": "CHINESE",
        "image": {"images": list(offer.images)},
        "skuInfos": [_product_get_sku(offer, sku) for sku in offer.skus],
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
    return {"productInfo": info, "bizGroupInfos": [], "createTime": _stamp(offer.created),
            "lastUpdateTime": _stamp(offer.updated)}


# -- product.search.queryProductDetail (cross-border) ------------------------------------------

def _crossborder_sku(sku: Sku, country: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "amountOnSale": sku.amount_on_sale,
        "price": money_text(sku.price_cents),
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
        "cargoNumber": sku.cargo_number,
        "skuAttributes": [
            {"attributeId": v.attribute_id, "attributeName": v.name, "attributeNameTrans": _tr(country, v.name),
             "value": v.value, "valueTrans": _tr(country, v.value),
             **({"skuImageUrl": absolute_image(v.image)} if v.image else {})}
            for v in sku.values
        ],
    }
    if sku.consign_cents is not None:
        item["consignPrice"] = money_text(sku.consign_cents)
    return item


def crossborder_view(offer: Offer, country: str) -> dict[str, Any]:
    """``product.search.queryProductDetail``: ``{"result": {"success": true, …, "result": {…}}}``."""
    length, width, height = offer.size_cm
    detail: dict[str, Any] = {
        "offerId": offer.offer_id,
        "categoryId": offer.category_id,
        "categoryName": offer.category_name,
        "subject": offer.subject,
        "subjectTrans": _tr(country, offer.subject),
        "description": offer.description,
        "mainVideo": offer.main_video,
        "productImage": {
            "images": [absolute_image(path) for path in offer.images],
            "whiteImage": absolute_image(offer.white_image) if offer.white_image else "",
        },
        "productAttribute": [
            {"attributeId": a.attribute_id, "attributeName": a.name, "value": a.value,
             "attributeNameTrans": _tr(country, a.name), "valueTrans": _tr(country, a.value)}
            for a in offer.attributes
        ],
        "productSkuInfos": [_crossborder_sku(sku, country) for sku in offer.skus],
        "productSaleInfo": {
            "amountOnSale": offer.amount_on_sale,
            "priceRangeList": _price_ranges(offer),
            "quoteType": offer.quote_type,
            "unitInfo": {"unit": offer.unit, "transUnit": UNIT_TRANSLATIONS.get(offer.unit, "piece")},
        },
        "productShippingInfo": {
            "sendGoodsAddressText": f"{offer.seller.province} {offer.seller.city}",
            "weight": _kilograms(offer.weight_grams),
            "width": width,
            "height": height,
            "length": length,
        },
        "minOrderQuantity": offer.min_order_quantity,
        "status": offer.status,
        "sellerOpenId": offer.seller.open_id,
        "companyName": offer.seller.company,
        "createDate": offer.created.strftime("%Y-%m-%d %H:%M:%S"),
        "tradeScore": offer.seller.trade_score,
    }
    return {"result": {"success": True, "code": "200", "message": "成功", "result": detail}}


# -- alibaba.fenxiao.productInfo.get -----------------------------------------------------------

def _fenxiao_sku(offer: Offer, sku: Sku) -> dict[str, Any]:
    item: dict[str, Any] = {
        "skuId": sku.sku_id,
        "specId": sku.spec_id,
        "cargoNumber": sku.cargo_number,
        "amountOnSale": sku.amount_on_sale,
        "price": _price(offer, sku.price_cents),
        "skuAttributes": [
            {"attributeId": v.attribute_id, "attributeName": v.name, "value": v.value,
             **({"skuImageUrl": absolute_image(v.image)} if v.image else {})}
            for v in sku.values
        ],
    }
    return _with_optional_prices(item, offer, sku)


def fenxiao_view(offer: Offer) -> dict[str, Any]:
    """``alibaba.fenxiao.productInfo.get``: ``{"success": true, "productInfo": {…}}``."""
    length, width, height = offer.size_cm
    info: dict[str, Any] = {
        "productID": offer.offer_id,
        "subject": offer.subject,
        "categoryID": offer.category_id,
        "categoryName": offer.category_name,
        "description": offer.description,
        "productImage": {"images": [absolute_image(path) for path in offer.images]},
        "productAttribute": [
            {"attributeId": a.attribute_id, "attributeName": a.name, "value": a.value}
            for a in offer.attributes
        ],
        "productSkuInfos": [_fenxiao_sku(offer, sku) for sku in offer.skus],
        "productSaleInfo": {
            "amountOnSale": offer.amount_on_sale,
            "priceRangeList": _price_ranges(offer),
            "quoteType": offer.quote_type,
            "unit": offer.unit,
            "minOrderQuantity": offer.min_order_quantity,
        },
        "productShippingInfo": {
            "sendGoodsAddressText": f"{offer.seller.province} {offer.seller.city}",
            "weight": _kilograms(offer.weight_grams),
            "width": width,
            "height": height,
            "length": length,
            "freightTemplateID": offer.freight_template_id,
        },
        "minOrderQuantity": offer.min_order_quantity,
        "status": offer.status,
        "supplierLoginId": offer.seller.login_id,
        "companyName": offer.seller.company,
        "createTime": _stamp(offer.created),
        "lastUpdateTime": _stamp(offer.updated),
    }
    return {"success": True, "productInfo": info}


_RENDERERS: dict[str, Callable[[Offer, str], dict[str, Any]]] = {
    PRODUCT_GET: lambda offer, _country: product_get_view(offer),
    CROSSBORDER: crossborder_view,
    FENXIAO: lambda offer, _country: fenxiao_view(offer),
}
_NOT_FOUND_BYTES = {api: dumps(body) for api, body in NOT_FOUND_BODIES.items()}


class ProductBodies:
    """Serialised replies of the product APIs, computed once per (api, offer id, country, drift).

    The cache is keyed on the epoch in which the offer last drifted
    (:meth:`~.catalogue.Catalogue.drift_epoch`), not on the epoch asked for: a new epoch is served
    at once, and the bodies of the offers it leaves alone stay cached.
    """

    def __init__(self, catalogue: Catalogue, cache_size: int = 8192) -> None:
        self.catalogue = catalogue
        self._cached_body = lru_cache(maxsize=cache_size)(self._body)

    @staticmethod
    def not_found(api: str) -> bytes:
        """The API's "no such offer" reply."""
        return _NOT_FOUND_BYTES[api]

    def body(self, api: str, offer_id: int, country: str = "", epoch: int = 0) -> tuple[bytes, bool]:
        """``(body, found)`` of the offer at ``epoch``: ``found`` is False for the API's "no such
        offer" reply. ``KeyError`` for an API that is not a product API."""
        return self._cached_body(api, offer_id, country, self.catalogue.drift_epoch(offer_id, epoch))

    def _body(self, api: str, offer_id: int, country: str, drift_epoch: int) -> tuple[bytes, bool]:
        render = _RENDERERS[api]
        offer = self.catalogue.offer(offer_id, drift_epoch)
        if offer is None:
            return _NOT_FOUND_BYTES[api], False
        return dumps(render(offer, country if api == CROSSBORDER else "")), True
