"""Normalise a product API's payload into the one :class:`Product` shape (PROTOCOL.md §5).

:func:`normalize` takes what :meth:`ApiSpec.product_payload` returns: the whole reply for
``product.get``, the inner ``result.result`` for ``crossborder``, the ``productInfo`` object for
``fenxiao``. The readers are lenient about spelling (``retailPrice``/``retailprice``,
``attributeID``/``attributeId``, prices as numbers or strings) and strict about values: a price,
quantity, date or id that cannot be read raises :class:`NormalizationError` naming the field.
Money never goes through float.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from .errors import AopError
from .product import QUOTE_BY_SKU, Attribute, Package, PriceTier, Product, Seller, Shipping, Sku, SkuAttribute
from .refs import is_open_offer_id

#: 1688 times without an offset (crossborder ``createDate``) are Beijing time: a fixed +08:00.
CHINA_TZ = timezone(timedelta(hours=8))
#: The host that relative 1688 image paths (``img/ibank/…``) live on.
IMAGE_HOST = "https://cbu01.alicdn.com/"

#: Values from 10**15 on are no price, weight or stock: garbage (and too large for storage).
_MAX_ADJUSTED_EXPONENT = 14
_MAX_DIGITS = 34  # what BSON Decimal128 holds exactly

_OFFER_ID = re.compile(r"[1-9][0-9]{8,14}")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_AOP_TIME = re.compile(r"([0-9]{14})([0-9]{3})?([+-])([0-9]{2})([0-9]{2})")  # 20240501093000000+0800
_PLAIN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")  # 2024-05-01 09:30:00

_T = TypeVar("_T")
_Entries: TypeAlias = list[tuple[str, Mapping[str, Any]]]


class NormalizationError(AopError):
    """A payload value cannot be read; ``field`` is its path, e.g. ``productSkuInfos[0].price``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- scalar parsers ------------------------------------------------------------------------------

def parse_decimal(value: object, field: str = "price") -> Decimal | None:
    """A non-negative finite Decimal from int, Decimal or numeric text; None when missing.

    A float (which the decoder never produces) is read through its shortest text, so ``0.1``
    gives ``Decimal("0.1")``, never the binary ``0.1000000000000000055…``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (float, str)):
        text = str(value).strip()  # str(0.1) == "0.1": the shortest text of a float
        if not _NUMBER.fullmatch(text):
            raise NormalizationError(field, f"not a number: {value!r}")
        try:
            number = Decimal(text)
        except ArithmeticError:  # an exponent beyond what Decimal can hold
            raise NormalizationError(field, f"out of range: {value!r}") from None
    elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise NormalizationError(field, f"not a number: {value!r}")
    if not number.is_finite():
        raise NormalizationError(field, f"not a finite number: {value!r}")
    if number < 0:
        raise NormalizationError(field, f"negative: {value!r}")
    if number and number.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise NormalizationError(field, f"out of range: {value!r}")
    if len(number.as_tuple().digits) > _MAX_DIGITS or (number and number.adjusted() < -_MAX_DIGITS):
        raise NormalizationError(field, f"more precision than a price can have: {value!r}")
    return number


def parse_quantity(value: object, field: str = "quantity") -> int | None:
    """A non-negative whole number from int, integral Decimal/float or digit text; None when missing."""
    number = parse_decimal(value, field)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise NormalizationError(field, f"not a whole number: {value!r}")
    return int(number)


def parse_datetime(value: object, field: str = "date") -> datetime | None:
    """A timezone-aware datetime from ``yyyyMMddHHmmssSSS+zzzz`` or ``yyyy-MM-dd HH:mm:ss``
    (the latter is Beijing time, +08:00); None when missing."""
    if value is None or value == "":
        return None
    text = value.strip() if isinstance(value, str) else ""
    try:
        if match := _AOP_TIME.fullmatch(text):
            stamp, millis, sign, hours, minutes = match.groups()
            offset = timedelta(hours=int(hours), minutes=int(minutes))
            tz = timezone(-offset if sign == "-" else offset)
            parsed = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=tz)
            return parsed.replace(microsecond=int(millis or 0) * 1000)
        if _PLAIN_TIME.fullmatch(text):
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError as exc:  # month 13, offset of 24 hours or more, …
        raise NormalizationError(field, f"not a valid date: {value!r} ({exc})") from None
    raise NormalizationError(field, f"not a date in a known format: {value!r}")


def parse_product_id(value: object, field: str = "productID") -> str:
    """The offer id as text: a positive integer of 9–15 digits (int or digit text)."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _OFFER_ID.fullmatch(text):
        raise NormalizationError(field, f"not a 1688 offer id (9-15 digits): {value!r}")
    return text


def parse_open_offer_id(value: object, field: str = "openOfferId") -> str:
    """An encrypted offer id as sent (see :func:`~.refs.is_open_offer_id`)."""
    text = value.strip() if isinstance(value, str) else ""
    if not is_open_offer_id(text):
        raise NormalizationError(field, f"not an encrypted offer id: {str(value)[:80]!r}")
    return text


def image_url(path: str | None) -> str | None:
    """An absolute https URL for a 1688 image: ``img/ibank/…`` gets :data:`IMAGE_HOST`,
    ``//host/…`` gets ``https:``, ``http://`` is upgraded; None for an empty path."""
    text = (path or "").strip()
    lowered = text.lower()
    if not text:
        return None
    if lowered.startswith("https://"):
        return text
    if lowered.startswith("http://"):
        return "https://" + text[len("http://"):]
    if text.startswith("//"):
        return "https:" + text
    return IMAGE_HOST + text.lstrip("/")


# -- readers over one mapping --------------------------------------------------------------------

def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _pick(data: Mapping[str, Any], path: str, *keys: str) -> tuple[Any, str]:
    """The first present (not None, not empty text) value among ``keys``, and its path."""
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value, _join(path, key)
    return None, _join(path, keys[0])


def _text(data: Mapping[str, Any], *keys: str) -> str | None:
    value = _pick(data, "", *keys)[0]
    if value is None or isinstance(value, (Mapping, list)):
        return None
    return str(value).strip() or None


def _money(data: Mapping[str, Any], path: str, *keys: str) -> Decimal | None:
    return parse_decimal(*_pick(data, path, *keys))


def _quantity(data: Mapping[str, Any], path: str, *keys: str) -> int | None:
    return parse_quantity(*_pick(data, path, *keys))


def _required(value: _T | None, field: str) -> _T:
    if value is None:
        raise NormalizationError(field, "missing")
    return value


def _section(data: Mapping[str, Any], path: str, *keys: str) -> tuple[Mapping[str, Any], str]:
    """A nested object (``saleInfo``, …) and its path; an empty mapping when it is missing."""
    value, where = _pick(data, path, *keys)
    if value is None:
        return {}, where
    if not isinstance(value, Mapping):
        raise NormalizationError(where, f"expected an object, got {type(value).__name__}")
    return value, where


def _entries(data: Mapping[str, Any], path: str, *keys: str) -> _Entries:
    """The objects of a nested list, each with its path (``skuInfos[2]``); empty when missing."""
    value, where = _pick(data, path, *keys)
    if value is None:
        return []
    if not isinstance(value, list):
        raise NormalizationError(where, f"expected a list, got {type(value).__name__}")
    entries = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
    for item_path, item in entries:
        if not isinstance(item, Mapping):
            raise NormalizationError(item_path, "expected an object")
    return entries


# -- product parts -------------------------------------------------------------------------------

def _images(data: Mapping[str, Any], path: str, *keys: str) -> list[str]:
    """The absolute, de-duplicated URLs of the ``images`` of the image object under ``keys``."""
    section, section_path = _section(data, path, *keys)
    value, where = _pick(section, section_path, "images")
    if value is None:
        return []
    if not isinstance(value, list):
        raise NormalizationError(where, "expected a list of image paths")
    urls: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise NormalizationError(f"{where}[{index}]", "expected an image path")
        url = image_url(item)
        if url and url not in urls:
            urls.append(url)
    return urls


def _attributes(entries: _Entries) -> list[Attribute]:
    return [
        Attribute(
            attribute_id=_text(item, "attributeID", "attributeId"),
            name=_text(item, "attributeName"),
            value=_text(item, "value", "attributeValue"),
            name_trans=_text(item, "attributeNameTrans"),
            value_trans=_text(item, "valueTrans"),
        )
        for _, item in entries
    ]


def _price_tiers(entries: _Entries) -> list[PriceTier]:
    """Quantity prices sorted by their starting quantity; a tier needs both values."""
    tiers = [
        PriceTier(
            min_quantity=_required(_quantity(item, path, "startQuantity"), f"{path}.startQuantity"),
            price=_required(_money(item, path, "price"), f"{path}.price"),
            promotion_price=_money(item, path, "promotionPrice"),
            foreign_price=_money(item, path, "foreignCurrencyPrice"),
            foreign_promotion_price=_money(item, path, "foreignCurrencyPromotionPrice"),
        )
        for path, item in entries
    ]
    return sorted(tiers, key=lambda tier: tier.min_quantity)


def _reference_price(value: object, field: str) -> tuple[Decimal, Decimal] | None:
    """``referencePrice``: one price (``"66.0"``, a number) or a range (``"10.00-20.00"``, also
    with ``~``); None when empty."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9.]+\s*[-~～]\s*[0-9.]+\s*", value):
        low, high = (parse_decimal(part, field) for part in re.split(r"[-~～]", value))
        assert low is not None and high is not None
        return (low, high) if low <= high else (high, low)
    price = parse_decimal(value, field)
    return (price, price) if price is not None else None


def _package(data: Mapping[str, Any], path: str, *, grams: bool = False) -> Package | None:
    """Length, width and height (cm) and weight (kg; ``grams``: the reply gives grams); the
    ``official*`` figures when the plain ones are missing. None when there is none."""
    def figure(name: str) -> Decimal | None:
        return _money(data, path, name, "official" + name[0].upper() + name[1:])

    weight = figure("weight")
    if weight is not None and grams:
        weight = weight / 1000
    package = Package(length=figure("length"), width=figure("width"), height=figure("height"), weight=weight)
    return package if any(value is not None for value in (package.length, package.width, package.height,
                                                           package.weight)) else None


def _flag(value: object) -> bool | None:
    """A flag sent as a boolean or as text (``"true"``, ``"false"``, ``"1"``, ``"0"``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
    return {"true": True, "1": True, "y": True, "false": False, "0": False, "n": False}.get(text)


def _score(value: object) -> Decimal | None:
    """A rating (``"4.7"``, ``4.7``, ``"96%"``); None when it is not a number: scores are
    informational, an odd one does not cost the offer."""
    text = str(value).strip().rstrip("%") if isinstance(value, (str, int, float, Decimal)) else ""
    try:
        return parse_decimal(text) if text and not isinstance(value, bool) else None
    except NormalizationError:
        return None


def _sku_attribute(item: Mapping[str, Any], names: Mapping[str, str]) -> SkuAttribute:
    attribute_id = _text(item, "attributeID", "attributeId")
    return SkuAttribute(
        attribute_id=attribute_id,
        name=_text(item, "attributeName") or names.get(attribute_id or ""),
        value=_text(item, "attributeValue", "value"),
        value_trans=_text(item, "valueTrans"),
        image=image_url(_text(item, "skuImageUrl")),
    )


def _skus(entries: _Entries, attributes: list[Attribute], extras: _SkuExtras) -> list[Sku]:
    """The SKUs; a SKU attribute without a name borrows it from the product attribute of its id.
    ``extras`` are what the offer keeps per SKU elsewhere (channel prices, package sizes)."""
    names = {a.attribute_id: a.name for a in attributes if a.attribute_id and a.name}
    skus: list[Sku] = []
    for path, item in entries:
        parts = [_sku_attribute(a, names) for _, a in _entries(item, path, "attributes", "skuAttributes")]
        distribution, distribution_path = _section(item, path, "fenxiaoPriceInfo")
        sku_id = _required(_text(item, "skuId", "skuID"), f"{path}.skuId")
        spec_id = _text(item, "specId", "specID")
        skus.append(Sku(
            sku_id=sku_id,
            spec_id=spec_id,
            sku_code=_text(item, "skuCode"),
            price=_money(item, path, "price"),
            retail_price=_money(item, path, "retailPrice", "retailprice"),
            consign_price=_money(item, path, "consignPrice"),
            promotion_price=_money(item, path, "promotionPrice"),
            channel_price=extras.channel_prices.get(sku_id),
            jxhy_price=_money(item, path, "jxhyPrice"),
            one_piece_price=_money(distribution, distribution_path, "onePiecePrice"),
            distribution_price=_money(distribution, distribution_path, "offerPrice"),
            foreign_price=_money(item, path, "foreignCurrencyPrice"),
            foreign_promotion_price=_money(item, path, "foreignCurrencyPromotionPrice"),
            foreign_retail_price=_money(item, path, "foreignCurrencyRetailPrice"),
            stock=_quantity(item, path, "amountOnSale"),
            cargo_number=_text(item, "cargoNumber"),
            attributes=parts,
            image=image_url(_text(item, "skuImageUrl")) or next((a.image for a in parts if a.image), None),
            package=extras.packages.get(sku_id) or (extras.packages.get(spec_id) if spec_id else None),
        ))
    return skus


@dataclass
class _SkuExtras:
    channel_prices: dict[str, Decimal]
    packages: dict[str, Package]


def _sku_extras(data: Mapping[str, Any], path: str, shipping: Mapping[str, Any], shipping_path: str) -> _SkuExtras:
    """Per-SKU figures the offer keeps beside the SKUs: ``channelPrice.channelSkuPriceList``
    (``currentPrice``), ``skuShippingDetails`` (kg) and ``skuShippingInfoList`` (grams), by SKU
    id (and spec id)."""
    channel, channel_path = _section(data, path, "channelPrice")
    prices: dict[str, Decimal] = {}
    for item_path, item in _entries(channel, channel_path, "channelSkuPriceList"):
        sku_id, price = _text(item, "skuId", "skuID"), _money(item, item_path, "currentPrice", "price")
        if sku_id and price is not None:
            prices[sku_id] = price
    packages: dict[str, Package] = {}
    for key, grams in (("skuShippingInfoList", True), ("skuShippingDetails", False)):  # the kg list wins
        for item_path, item in _entries(shipping, shipping_path, key):
            package = _package(item, item_path, grams=grams)
            for name in ("skuId", "specId"):
                if package is not None and (ident := _text(item, name)):
                    packages[ident] = package
    return _SkuExtras(prices, packages)


def _seller(data: Mapping[str, Any]) -> Seller:
    ratings = data.get("sellerDataInfo")
    scores = {}
    if isinstance(ratings, Mapping):
        for name, value in ratings.items():
            score = _score(value)
            if score is not None:
                scores[str(name)] = score
    return Seller(
        login_id=_text(data, "supplierLoginId", "sellerLoginId", "loginId"),
        user_id=_text(data, "supplierUserId", "sellerUserId", "userId"),
        open_id=_text(data, "sellerOpenId", "openId"),
        company_name=_text(data, "companyName", "supplierCompanyName"),
        trade_score=_score(data.get("tradeScore")),
        scores=scores,
    )


def _shipping(data: Mapping[str, Any], shipping: Mapping[str, Any], where: str) -> Shipping:
    simple = data.get("productSimpleShippingInfo")
    guarantee = _text(shipping, "shippingTimeGuarantee") or (
        _text(simple, "shippingTimeGuarantee") if isinstance(simple, Mapping) else None)
    return Shipping(
        send_from=_text(shipping, "sendGoodsAddressText"),
        weight=_money(shipping, where, "unitWeight", "weight"),
        freight_template_id=_text(shipping, "freightTemplateID", "freightTemplateId"),
        package=_package(shipping, where),
        time_guarantee=guarantee,
    )


def _unit(sale: Mapping[str, Any], path: str) -> str | None:
    return _text(sale, "unit") or _text(_section(sale, path, "unitInfo")[0], "unit")


def _summarise(product: Product, sale_stock: int | None, reference: tuple[Decimal, Decimal] | None) -> Product:
    """Fill the price span from one source (``Product.price_source``) and the stock (the offer's
    own figure, else the SKU total)."""
    sources = {
        "tiers": [tier.price for tier in product.price_tiers],
        "skus": [sku.price for sku in product.skus if sku.price is not None],
        "reference": list(reference or ()),
    }
    order = ("skus", "tiers", "reference") if product.quote_type == QUOTE_BY_SKU else ("tiers", "skus", "reference")
    source = next((name for name in order if sources[name]), None)
    if source is not None:
        product.min_price, product.max_price = min(sources[source]), max(sources[source])
        product.price_source = source
    sku_stock = [sku.stock for sku in product.skus if sku.stock is not None]
    product.stock = sale_stock if sale_stock is not None else (sum(sku_stock) if sku_stock else None)
    return product


# -- one function per API ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Where one API keeps each part of an offer; every spelling listed is accepted."""

    source: str
    ids: tuple[str, ...]
    images: tuple[str, ...]
    attributes: tuple[str, ...]
    skus: tuple[str, ...]
    sale: tuple[str, ...]
    tiers: tuple[str, ...]
    shipping: tuple[str, ...]
    created: tuple[str, ...] = ("createTime", "createDate")
    updated: tuple[str, ...] = ("lastUpdateTime", "modifyDate")
    open_ids: bool = False  # the offer may carry an encrypted ``openOfferId`` (instead of its id)


_PRODUCT_GET = _Layout(
    source="product.get", ids=("productID", "productId"), images=("image",),
    attributes=("attributes",), skus=("skuInfos",), sale=("saleInfo",),
    tiers=("priceRanges", "priceRangeList"), shipping=("shippingInfo",),
)
_CROSSBORDER = _Layout(
    source="crossborder", ids=("offerId", "productID"), images=("productImage",),
    attributes=("productAttribute", "attributes"), skus=("productSkuInfos",), sale=("productSaleInfo",),
    tiers=("priceRangeList", "priceRanges"), shipping=("productShippingInfo",),
    created=("createDate", "createTime"),
)
_FENXIAO = _Layout(
    source="fenxiao", ids=("productID", "productId", "offerId"), images=("productImage", "image"),
    attributes=("attributes", "productAttribute"), skus=("productSkuInfos", "skuInfos"),
    sale=("productSaleInfo", "saleInfo"), tiers=("priceRanges", "priceRangeList"),
    shipping=("productShippingInfo", "shippingInfo"),
)
_FENXIAO_INFO = replace(_FENXIAO, source="fenxiao.info", open_ids=True)


def _read(layout: _Layout, data: Mapping[str, Any], path: str, language: str | None,
          currency: str | None = None) -> Product:
    """One offer object read through ``layout``; prices and stock summarised."""
    sale, sale_path = _section(data, path, *layout.sale)
    shipping, shipping_path = _section(data, path, *layout.shipping)
    distribution, distribution_path = _section(sale, sale_path, "fenxiaoSaleInfo", "fenxiaoPriceInfo")
    if not distribution:
        distribution, distribution_path = _section(data, path, "fenxiaoPriceInfo", "fenxiaoSaleInfo")
    images = _section(data, path, *layout.images)[0]
    attributes = _attributes(_entries(data, path, *layout.attributes))

    def offer_money(*keys: str) -> Decimal | None:  # on the sale info, else on the offer
        return _money(sale, sale_path, *keys) if _pick(sale, sale_path, *keys)[0] is not None \
            else _money(data, path, *keys)

    open_value, open_path = _pick(data, path, "openOfferId")
    open_id = parse_open_offer_id(open_value, open_path) if layout.open_ids and open_value is not None else None
    id_value, id_path = _pick(data, path, *layout.ids)
    reference_value, reference_path = _pick(data, path, "referencePrice")
    if reference_value is None:
        reference_value, reference_path = _pick(sale, sale_path, "referencePrice")
    foreign = [offer_money("foreignCurrencyPrice"), offer_money("foreignCurrencyRetailPrice")]
    product = Product(
        product_id=open_id if id_value is None and open_id else parse_product_id(id_value, id_path),
        source_api=layout.source,
        open_offer_id=open_id,
        subject=_text(data, "subject"),
        subject_trans=_text(data, "subjectTrans"),
        language=language,
        category_id=_text(data, "categoryID", "categoryId"),
        category_name=_text(data, "categoryName"),
        top_category_id=_text(data, "topCategoryId", "topCategoryID"),
        second_category_id=_text(data, "secondCategoryId", "secondCategoryID"),
        third_category_id=_text(data, "thirdCategoryId", "thirdCategoryID"),
        status=_text(data, "status"),  # as sent: ``available`` reads it in any case
        images=_images(data, path, *layout.images),
        white_image=image_url(_text(images, "whiteImage") or _text(data, "whiteImage")),
        main_video=_text(data, "mainVideo", "mainVedio"),
        detail_video=_text(data, "detailVideo", "detailVedio"),
        cargo_number=_text(data, "productCargoNumber", "cargoNumber"),
        attributes=attributes,
        quote_type=_quantity(sale, sale_path, "quoteType"),
        price_tiers=_price_tiers(_entries(sale, sale_path, *layout.tiers)),
        skus=_skus(_entries(data, path, *layout.skus), attributes,
                   _sku_extras(data, path, shipping, shipping_path)),
        consign_price=offer_money("consignPrice"),
        retail_price=offer_money("retailPrice", "retailprice"),
        promotion_price=offer_money("promotionPrice"),
        jxhy_price=offer_money("jxhyPrice"),
        one_piece_price=_money(distribution, distribution_path, "onePiecePrice"),
        distribution_price=_money(distribution, distribution_path, "offerPrice"),
        foreign_currency=currency.upper() if currency and any(value is not None for value in foreign) else None,
        foreign_price=foreign[0],
        foreign_retail_price=foreign[1],
        unit=_unit(sale, sale_path),
        min_order_quantity=_quantity(sale, sale_path, "minOrderQuantity")
        or _quantity(data, path, "minOrderQuantity"),
        sold_out=_flag(data.get("soldOut")),
        month_sold=_quantity(data, path, "monthSold") if _pick(data, path, "monthSold")[0] is not None
        else _quantity(sale, sale_path, "monthSold"),
        seller=_seller(data),
        shipping=_shipping(data, shipping, shipping_path),
        description_html=_text(data, "description"),
        created_at=parse_datetime(*_pick(data, path, *layout.created)),
        updated_at=parse_datetime(*_pick(data, path, *layout.updated)),
        raw=data,
    )
    return _summarise(product, _quantity(sale, sale_path, "amountOnSale"),
                      _reference_price(reference_value, reference_path))


def normalize_product_get(payload: Mapping[str, Any], language: str | None = None,
                          currency: str | None = None) -> Product:
    """``alibaba.product.get``: the whole reply, its ``productInfo`` and its times.

    ``productInfo.language`` is the offer's own language, not a translation: ``language`` stays None.
    """
    info, path = _section(payload, "", "productInfo")
    if not info:
        raise NormalizationError(path, "missing")
    product = _read(_PRODUCT_GET, info, path, None)
    product.created_at = parse_datetime(*_pick(payload, "", "createTime")) or product.created_at
    product.updated_at = parse_datetime(*_pick(payload, "", "lastUpdateTime")) or product.updated_at
    product.raw = payload
    return product


def normalize_crossborder(payload: Mapping[str, Any], language: str | None = None,
                          currency: str | None = None) -> Product:
    """``product.search.queryProductDetail``: the inner ``result.result`` object.

    ``language`` is the ``country`` the call asked for, ``currency`` the currency it asked
    ``foreignCurrency*`` prices in: the payload repeats neither.
    """
    return _read(_CROSSBORDER, payload, "", language or _text(payload, "language", "country"),
                 currency or _text(payload, "currency"))


def normalize_fenxiao(payload: Mapping[str, Any], language: str | None = None,
                      currency: str | None = None) -> Product:
    """``alibaba.fenxiao.productInfo.get``: the ``productInfo`` object (distributor view)."""
    return _read(_FENXIAO, payload, "", None)


def normalize_fenxiao_info(payload: Mapping[str, Any], language: str | None = None,
                           currency: str | None = None) -> Product:
    """``alibaba.fenxiao.product.info.get``: the offer object (the fenxiao spellings); its id,
    else its encrypted ``openOfferId``, is the product id."""
    return _read(_FENXIAO_INFO, payload, "", None)


_NORMALIZERS: dict[str, Callable[[Mapping[str, Any], str | None, str | None], Product]] = {
    "product.get": normalize_product_get,
    "crossborder": normalize_crossborder,
    "fenxiao": normalize_fenxiao,
    "fenxiao.info": normalize_fenxiao_info,
}


def normalize(api_key: str, payload: Mapping[str, Any], *, language: str | None = None,
              currency: str | None = None) -> Product:
    """The :class:`Product` for the payload of the product API ``api_key``
    (``product.get``, ``crossborder`` or ``fenxiao``, the keys of ``apis.PRODUCT_APIS``).

    ``language`` and ``currency`` are what the call asked ``crossborder`` for; other APIs ignore them.
    Raises :class:`NormalizationError` for a value that cannot be read, ``ValueError`` for an
    unknown API.
    """
    try:
        normalizer = _NORMALIZERS[api_key]
    except KeyError:
        raise ValueError(f"unknown api {api_key!r}: choose one of {', '.join(_NORMALIZERS)}") from None
    if not isinstance(payload, Mapping):
        raise NormalizationError("payload", f"expected an object, got {type(payload).__name__}")
    return normalizer(payload, language, currency)
