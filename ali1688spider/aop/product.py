"""The one Product shape every product-detail API is normalised into (PROTOCOL.md §5).

Plain dataclasses, no Scrapy import. Money and weights are :class:`~decimal.Decimal`, times are
timezone-aware :class:`~datetime.datetime`; :meth:`Product.to_dict` keeps both as objects and
leaves their storage form (``Decimal128``, BSON dates) to the Mongo layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from .refs import offer_url

#: The values of :attr:`Product.source_api`, one per product-detail API.
SOURCE_APIS = ("product.get", "crossborder", "fenxiao", "fenxiao.info")
CURRENCY = "CNY"

#: Offer statuses that mean the offer is no longer for sale. 1688 does not publish the list; these
#: are the values seen in documentation samples and integrations (``published`` and ``auditing``
#: are for sale), compared lower-case with ``_``/``-`` read as spaces.
NOT_FOR_SALE = frozenset({
    "expired", "auto expired", "member expired", "deleted", "member deleted", "offline", "off shelf",
    "offshelf", "unpublished", "tbd", "to be delete", "to be deleted",
    "下架", "已下架", "删除", "已删除", "过期", "已过期",
})
#: Statuses seen for offers on sale (published, under review, just published or changed).
FOR_SALE = frozenset({"published", "auditing", "new", "modified", "上架", "已上架"})

#: ``quoteType`` (PROTOCOL.md §5): how the offer is priced. 0: no SKUs, quantity tiers; 1: each SKU
#: has its own price; 2: SKUs, but priced by quantity tiers.
QUOTE_BY_SKU = 1
#: Where ``min_price``/``max_price`` came from (:attr:`Product.price_source`).
PRICE_SOURCES = ("tiers", "skus", "reference")


def _status_key(status: str) -> str:
    return " ".join(status.lower().replace("_", " ").replace("-", " ").split())


def for_sale(status: str | None) -> bool:
    """Whether an offer of this ``status`` is for sale; an offer that states none is, and so is
    one whose status is not known (:func:`known_status` tells those apart)."""
    if not status:
        return True
    return _status_key(status) not in NOT_FOR_SALE


def known_status(status: str | None) -> bool:
    """Whether ``status`` is one of the documented values (or none at all)."""
    return not status or _status_key(status) in NOT_FOR_SALE | FOR_SALE


@dataclass(slots=True)
class Attribute:
    """One product property (material, brand, …), with its translation when the API gives one."""

    attribute_id: str | None = None
    name: str | None = None
    value: str | None = None
    name_trans: str | None = None
    value_trans: str | None = None


@dataclass(slots=True)
class PriceTier:
    """A quantity price: ``price`` per unit from ``min_quantity`` units on (CNY); the promotion
    price and the prices in the asked currency when the reply has them."""

    min_quantity: int
    price: Decimal
    promotion_price: Decimal | None = None
    foreign_price: Decimal | None = None
    foreign_promotion_price: Decimal | None = None


@dataclass(slots=True)
class Package:
    """Package size and weight: centimetres and kilograms (SKU weights sent in grams are converted)."""

    length: Decimal | None = None
    width: Decimal | None = None
    height: Decimal | None = None
    weight: Decimal | None = None


@dataclass(slots=True)
class SkuAttribute:
    """One dimension of a SKU (colour, size, …)."""

    attribute_id: str | None = None
    name: str | None = None
    value: str | None = None
    value_trans: str | None = None
    image: str | None = None


@dataclass(slots=True)
class Sku:
    """One orderable variant of a product. Prices are CNY; ``foreign_*`` are in the currency the
    crawl asked for (:attr:`Product.foreign_currency`)."""

    sku_id: str
    spec_id: str | None = None
    sku_code: str | None = None
    price: Decimal | None = None
    retail_price: Decimal | None = None
    consign_price: Decimal | None = None  # drop-shipping (代发) price
    promotion_price: Decimal | None = None
    channel_price: Decimal | None = None  # the channel's current price (channelPrice list)
    jxhy_price: Decimal | None = None  # the "selected supply" (精选货源) price
    one_piece_price: Decimal | None = None  # distribution: the price of a single piece
    distribution_price: Decimal | None = None  # distribution: the offer price (fenxiaoPriceInfo.offerPrice)
    foreign_price: Decimal | None = None
    foreign_promotion_price: Decimal | None = None
    foreign_retail_price: Decimal | None = None
    stock: int | None = None
    cargo_number: str | None = None
    attributes: list[SkuAttribute] = field(default_factory=list)
    image: str | None = None
    package: Package | None = None


@dataclass(slots=True)
class Seller:
    """Who sells the offer; each API knows a different subset of these ids. ``scores`` are the
    seller's ratings as the reply names them (``compositeServiceScore``…, decimals)."""

    login_id: str | None = None
    user_id: str | None = None
    open_id: str | None = None
    company_name: str | None = None
    trade_score: Decimal | None = None
    scores: dict[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class Shipping:
    """Where the goods ship from, the unit weight in kg, the freight template, the package and the
    shipping-time guarantee (as the reply words it, e.g. ``shipIn48Hours``)."""

    send_from: str | None = None
    weight: Decimal | None = None
    freight_template_id: str | None = None
    package: Package | None = None
    time_guarantee: str | None = None


@dataclass(slots=True)
class Product:
    """A 1688 offer, the same shape whichever API it was read from.

    ``min_price``/``max_price`` span one price source, named in ``price_source``: the quantity
    tiers, or the SKU prices when ``quote_type`` is 1 (priced per SKU), else whichever of the two
    the offer has, else ``referencePrice`` (one price or a range); all CNY. ``stock`` is the
    offer's amount on sale, or the sum of the SKU stock when the offer does not say. ``raw`` is the
    API payload as received (not compared, not shown in ``repr``).
    """

    product_id: str  # the offer id; an encrypted openOfferId when the reply holds no other
    source_api: str
    open_offer_id: str | None = None  # the encrypted id (fenxiao.info), when asked by it or sent
    subject: str | None = None
    subject_trans: str | None = None
    language: str | None = None
    category_id: str | None = None
    category_name: str | None = None
    top_category_id: str | None = None
    second_category_id: str | None = None
    third_category_id: str | None = None
    status: str | None = None
    available: bool = True  # for sale: False for a status in NOT_FOR_SALE (set from ``status``)
    images: list[str] = field(default_factory=list)
    white_image: str | None = None
    main_video: str | None = None
    detail_video: str | None = None
    cargo_number: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    quote_type: int | None = None
    price_tiers: list[PriceTier] = field(default_factory=list)
    skus: list[Sku] = field(default_factory=list)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    price_source: str | None = None
    currency: str = CURRENCY
    consign_price: Decimal | None = None  # offer-level prices beside the tiers (CNY), when sent
    retail_price: Decimal | None = None
    promotion_price: Decimal | None = None
    jxhy_price: Decimal | None = None
    one_piece_price: Decimal | None = None
    distribution_price: Decimal | None = None
    foreign_currency: str | None = None  # the currency the crawl asked for (crossborder ``currency``)
    foreign_price: Decimal | None = None
    foreign_retail_price: Decimal | None = None
    stock: int | None = None
    sold_out: bool | None = None
    month_sold: int | None = None
    unit: str | None = None
    min_order_quantity: int | None = None
    seller: Seller = field(default_factory=Seller)
    shipping: Shipping = field(default_factory=Shipping)
    description_html: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    detail_url: str | None = None  # the offer page; None for an offer known only by its encrypted id
    changed_by: dict[str, Any] | None = field(default=None, compare=False)  # the change message that asked for it
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.detail_url:
            self.detail_url = offer_url(self.product_id) or None
        self.available = for_sale(self.status)

    def to_dict(self, *, include_raw: bool = True) -> dict[str, Any]:
        """Plain dicts and lists all the way down; Decimal and datetime stay objects. Every field
        of the product is there; inside its parts (tiers, SKUs, seller, …) a field that is None
        is left out, so fifty SKUs do not carry a dozen empty prices each."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if include_raw or f.name != "raw"
        }


#: Types :func:`_plain` hands back as they are (most nodes of a product are one of these).
_SCALARS = frozenset({str, int, float, bool, Decimal, datetime, type(None)})


def _plain(value: Any) -> Any:
    """Turn dataclasses, mappings and sequences into dicts and lists; leave scalars alone.
    Called for every node of a product (~300 with its SKUs), so the common cases come first."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = getattr(kind, "__dataclass_fields__", None)  # our dataclasses declare no ClassVar or InitVar
    if names is not None:
        return {name: _plain(item) for name in names if (item := getattr(value, name)) is not None}
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
