"""What the emulator's catalogue is made of: offers in integer cents, independent of any API's
field names (the API views in :mod:`.views` render them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_IMAGE_HOST = "https://cbu01.alicdn.com/"


def money_text(cents: int) -> str:
    """``1250`` → ``"12.50"``: the exact decimal text, always two fraction digits."""
    return f"{cents // 100}.{cents % 100:02d}"


def money_number(cents: int) -> int | float:
    """``1250`` → ``12.5``, ``1200`` → ``12``. The float is the one nearest the decimal with at most
    two fraction digits, so ``json`` writes it back exactly (``12.49``, never ``12.4899…``)."""
    return cents // 100 if cents % 100 == 0 else cents / 100


def absolute_image(path: str) -> str:
    """``img/ibank/…`` → ``https://cbu01.alicdn.com/img/ibank/…``."""
    return _IMAGE_HOST + path


@dataclass(frozen=True)
class Seller:
    user_id: int
    login_id: str
    open_id: str
    company: str
    province: str
    city: str
    trade_score: str


@dataclass(frozen=True)
class Attribute:
    attribute_id: int
    name: str
    value: str
    value_id: int
    is_custom: bool


@dataclass(frozen=True)
class SkuValue:
    attribute_id: int
    name: str
    value: str
    image: str | None  # relative path, only on the first axis


@dataclass(frozen=True)
class Sku:
    sku_id: int
    spec_id: str
    cargo_number: str
    amount_on_sale: int
    price_cents: int
    retail_cents: int | None
    consign_cents: int | None
    values: tuple[SkuValue, ...]


@dataclass(frozen=True)
class PriceTier:
    start_quantity: int
    price_cents: int


@dataclass(frozen=True)
class Offer:
    """One offer, independent of any API's field names (see :mod:`.views`)."""

    offer_id: int
    category_id: int
    category_name: str
    subject: str
    description: str
    status: str
    images: tuple[str, ...]  # relative paths img/ibank/…
    white_image: str | None
    main_video: str
    attributes: tuple[Attribute, ...]
    skus: tuple[Sku, ...]
    tiers: tuple[PriceTier, ...]
    quote_type: int
    mix_wholesale: bool
    unit: str
    min_order_quantity: int
    amount_on_sale: int
    retail_cents: int | None
    prices_as_text: bool  # product.get / fenxiao send "12.50" instead of 12.5
    weight_grams: int
    size_cm: tuple[int, int, int]  # length, width, height
    freight_template_id: int
    seller: Seller
    created: datetime  # wall clock of UTC+8
    updated: datetime
    quality_level: int
