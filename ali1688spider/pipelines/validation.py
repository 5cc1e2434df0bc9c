"""What a valid product looks like (required fields, types, price sanity; pydantic v2), and the
pipeline that turns an invalid product into a failure."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError, model_validator
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from .. import stat_keys
from ..aop.product import PRICE_SOURCES, SOURCE_APIS, Product
from ..outcomes import FailureReason, FailureRecord, record_failure

#: Prices above this are taken for a parsing accident (yuan per unit).
MAX_PRICE = Decimal("10000000")

Price = Annotated[Decimal, Field(gt=0, lt=MAX_PRICE, allow_inf_nan=False)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TierModel(_Model):
    min_quantity: PositiveInt
    price: Price


class SkuModel(_Model):
    sku_id: str = Field(min_length=1)
    price: Price | None = None
    retail_price: Price | None = None
    stock: NonNegativeInt | None = None


class ProductModel(_Model):
    product_id: str = Field(pattern=r"^(?:[1-9][0-9]{8,14}|[A-Za-z0-9+/_-]{16,88}={0,2})$")  # or an openOfferId
    source_api: Literal[SOURCE_APIS]  # type: ignore[valid-type]
    subject: str = Field(min_length=1)
    status: str | None = None
    images: list[Url] = []
    price_tiers: list[TierModel] = []
    skus: list[SkuModel] = []
    min_price: Price | None = None
    max_price: Price | None = None
    price_source: Literal[PRICE_SOURCES] | None = None  # type: ignore[valid-type]
    stock: NonNegativeInt | None = None
    min_order_quantity: NonNegativeInt | None = None
    detail_url: Url | None  # None for an offer known only by its encrypted id

    @model_validator(mode="after")
    def _encrypted_ids_from_one_api(self) -> ProductModel:
        if not self.product_id.isdigit() and self.source_api != "fenxiao.info":
            raise ValueError("only fenxiao.info names an offer by its encrypted id")
        return self

    @model_validator(mode="after")
    def _prices_make_sense(self) -> ProductModel:
        if self.min_price is None or self.price_source is None:
            raise ValueError("no price: no price tiers, no SKU prices and no referencePrice")
        quantities = [tier.min_quantity for tier in self.price_tiers]
        if quantities != sorted(set(quantities)):
            raise ValueError("price tiers must have distinct, rising start quantities")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price is above max_price")
        return self


class InvalidProduct(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_product(data: Product | dict[str, Any]) -> None:
    """Raise :class:`InvalidProduct` naming the first field that fails. A :class:`Product` is read
    through its attributes, without a dict copy."""
    try:
        ProductModel.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "price"
        raise InvalidProduct(field, first["msg"]) from None


class ValidationPipeline:
    """Required fields, types and price sanity; an invalid product becomes a failure."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Product):
            return item
        try:
            validate_product(item)
        except InvalidProduct as exc:
            record_failure(self.crawler, FailureRecord(
                key=item.product_id, offer_id=item.product_id, reason=FailureReason.INVALID_ITEM, api=item.source_api,
                field=exc.field, message=exc.message,
            ))
            raise DropItem(f"invalid product {item.product_id}: {exc}") from None
        self.crawler.stats.inc_value(stat_keys.PRODUCTS)  # type: ignore[union-attr]
        return item
