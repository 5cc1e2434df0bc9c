"""Reply shape drift: keys a product payload carries that no rule knows, and expected keys that
stopped coming (1688 changes its replies over time, without notice).

:func:`drift` looks at one payload (what :mod:`.normalize` receives) at the levels the normaliser
reads: the offer, its sale block, its SKUs, tiers, attributes and shipping block. A key is known
when the normaliser reads it or when it is a documented field the project keeps only in ``raw``.
Paths are written ``productSaleInfo.fooBar``, ``productSkuInfos[].fooBar``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_OFFER = frozenset({
    # identity, text, category
    "productID", "productId", "offerId", "openOfferId", "productType", "categoryID", "categoryId", "categoryName",
    "topCategoryId", "secondCategoryId", "thirdCategoryId", "subject", "subjectTrans", "description",
    "descriptionTrans", "language", "status",
    # parts
    "attributes", "productAttribute", "image", "productImage", "productImageTrans", "skuInfos", "productSkuInfos",
    "saleInfo", "productSaleInfo", "shippingInfo", "productShippingInfo", "productSimpleShippingInfo",
    # seller
    "supplierUserId", "supplierLoginId", "sellerLoginId", "sellerUserId", "loginId", "userId", "sellerOpenId",
    "openId", "companyName", "supplierCompanyName", "tradeScore", "sellerDataInfo", "sellerMixSetting",
    # times
    "createTime", "createDate", "lastUpdateTime", "modifyDate", "expireTime", "approvedTime",
    # prices, sales and media
    "referencePrice", "minOrderQuantity", "batchNumber", "mainVideo", "mainVedio", "detailVideo", "detailVedio",
    "whiteImage", "productCargoNumber", "cargoNumber", "soldOut", "monthSold", "channelPrice", "fenxiaoPriceInfo",
    "fenxiaoSaleInfo", "promotionModel", "productTradeInfo",
    # documented, kept in raw only
    "qualityLevel", "bizGroupInfos", "tagInfoList", "traceInfo", "sellingPoint", "offerIdentities", "isJxhy",
    "isSelect", "certificateList", "promotionUrl", "promotionURL", "invoiceInfo", "success",
    "groupID", "mainVedioCoverImg", "extendInfos", "isDistribution", "isPrivateOffer",
})
_SALE = frozenset({
    "supportOnlineTrade", "mixWholeSale", "saleType", "priceRanges", "priceRangeList", "amountOnSale", "unit",
    "unitInfo", "minOrderQuantity", "quoteType", "retailprice", "retailPrice", "consignPrice", "jxhyPrice",
    "pfJxhyPrice", "promotionPrice", "foreignCurrencyPrice", "foreignCurrencyRetailPrice", "fenxiaoSaleInfo",
    "fenxiaoPriceInfo", "referencePrice", "monthSold", "batchNumber", "priceAuth", "deliveryLimit",
})
_SKU = frozenset({
    "attributes", "skuAttributes", "cargoNumber", "amountOnSale", "retailPrice", "retailprice", "price", "skuId",
    "skuID", "specId", "specID", "consignPrice", "promotionPrice", "jxhyPrice", "pfJxhyPrice", "fenxiaoPriceInfo",
    "foreignCurrencyPrice", "foreignCurrencyPromotionPrice", "foreignCurrencyRetailPrice", "skuCode", "skuImageUrl",
})
_TIER = frozenset({"startQuantity", "price", "promotionPrice", "foreignCurrencyPrice", "foreignCurrencyPromotionPrice"})
_SHIPPING = frozenset({
    "sendGoodsAddressText", "unitWeight", "weight", "width", "height", "length", "freightTemplateID",
    "freightTemplateId", "shippingTimeGuarantee", "skuShippingDetails", "skuShippingInfoList", "pkgSizeSource",
    "officialLength", "officialWidth", "officialHeight", "officialWeight", "sendGoodsAddressId", "volume",
    "handlingTime", "channelPrice",
})

#: The keys every reply of an API carries (its id, subject, status and sale block).
EXPECTED = {
    "product.get": ("productID", "subject", "status", "saleInfo"),
    "crossborder": ("offerId", "subject", "status", "productSaleInfo"),
    "fenxiao": ("productID", "subject", "status", "productSaleInfo"),
    "fenxiao.info": ("subject", "status", "productSaleInfo"),  # asked by openOfferId, the id may be hidden
}
#: Where each API keeps its offer object inside the payload the normaliser receives.
_OFFER_KEY = {"product.get": "productInfo"}


def _unknown(data: Any, known: frozenset[str], path: str, found: set[str]) -> None:
    if isinstance(data, Mapping):
        found.update(f"{path}{key}" for key in data if isinstance(key, str) and key not in known)


def _items(data: Mapping[str, Any], *keys: str) -> list[tuple[str, Any]]:
    return [(key, item) for key in keys if isinstance(data.get(key), list) for item in data[key]]


def drift(api: str, payload: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """``(unknown, missing)`` key paths of one payload of ``api``."""
    offer = payload.get(_OFFER_KEY[api], {}) if api in _OFFER_KEY else payload
    if not isinstance(offer, Mapping):
        return set(), set(EXPECTED.get(api, ()))
    unknown: set[str] = set()
    _unknown(offer, _OFFER, "", unknown)
    for block_key in ("saleInfo", "productSaleInfo"):
        sale = offer.get(block_key)
        if isinstance(sale, Mapping):
            _unknown(sale, _SALE, f"{block_key}.", unknown)
            for key, tier in _items(sale, "priceRanges", "priceRangeList"):
                _unknown(tier, _TIER, f"{block_key}.{key}[].", unknown)
    for key, sku in _items(offer, "skuInfos", "productSkuInfos"):
        _unknown(sku, _SKU, f"{key}[].", unknown)
    for block_key in ("shippingInfo", "productShippingInfo"):
        _unknown(offer.get(block_key), _SHIPPING, f"{block_key}.", unknown)
    missing = {key for key in EXPECTED.get(api, ()) if offer.get(key) in (None, "")}
    return unknown, missing
