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
SOURCE_APIS = ("product.get", "crossborder", "fenxiao")
CURRENCY = "CNY"

#: Offer statuses that mean the offer is no longer for sale. 1688 does not publish the list; these
#: are the values seen in documentation samples and integrations (``published`` and ``auditing``
#: are for sale), compared lower-case with ``_``/``-`` read as spaces.
NOT_FOR_SALE = frozenset({
    "expired", "auto expired", "member expired", "deleted", "member deleted", "offline", "off shelf",
    "offshelf", "unpublished", "下架", "已下架", "删除", "已删除", "过期", "已过期",
})


def for_sale(status: str | None) -> bool:
    """Whether an offer of this ``status`` is for sale; an offer that states none is."""
    if not status:
        return True
    return " ".join(status.lower().replace("_", " ").replace("-", " ").split()) not in NOT_FOR_SALE


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
    """A quantity price: ``price`` per unit from ``min_quantity`` units on."""

    min_quantity: int
    price: Decimal


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
    """One orderable variant of a product."""

    sku_id: str
    spec_id: str | None = None
    price: Decimal | None = None
    retail_price: Decimal | None = None
    consign_price: Decimal | None = None
    stock: int | None = None
    cargo_number: str | None = None
    attributes: list[SkuAttribute] = field(default_factory=list)
    image: str | None = None


@dataclass(slots=True)
class Seller:
    """Who sells the offer; each API knows a different subset of these ids."""

    login_id: str | None = None
    user_id: str | None = None
    open_id: str | None = None
    company_name: str | None = None


@dataclass(slots=True)
class Shipping:
    """Where the goods ship from, the unit weight in kg and the freight template."""

    send_from: str | None = None
    weight: Decimal | None = None
    freight_template_id: str | None = None


@dataclass(slots=True)
class Product:
    """A 1688 offer, the same shape whichever API it was read from.

    ``min_price``/``max_price`` span the price tiers and the SKU prices; ``stock`` is the offer's
    amount on sale, or the sum of the SKU stock when the offer does not say. ``raw`` is the API
    payload as received (not compared, not shown in ``repr``).
    """

    product_id: str
    source_api: str
    subject: str | None = None
    subject_trans: str | None = None
    language: str | None = None
    category_id: str | None = None
    category_name: str | None = None
    status: str | None = None
    available: bool = True  # for sale: False for a status in NOT_FOR_SALE (set from ``status``)
    images: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    price_tiers: list[PriceTier] = field(default_factory=list)
    skus: list[Sku] = field(default_factory=list)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str = CURRENCY
    stock: int | None = None
    unit: str | None = None
    min_order_quantity: int | None = None
    seller: Seller = field(default_factory=Seller)
    shipping: Shipping = field(default_factory=Shipping)
    description_html: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    detail_url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.detail_url:
            self.detail_url = offer_url(self.product_id)
        self.available = for_sale(self.status)

    def to_dict(self, *, include_raw: bool = True) -> dict[str, Any]:
        """Plain dicts and lists all the way down; Decimal and datetime stay objects."""
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
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
