"""The discovery APIs (PROTOCOL.md §7): keyword, shop and image search, as data and parsers.

A search is a :class:`SearchQuery` (what is searched and how), sent page by page as
``offerQueryParam``; each reply page is read into a :class:`SearchPage`, each of its hits into a
:class:`Listing`. Only the pages' envelope decides success: a hit that cannot be read costs that
hit, never the page.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .apis import ApiSpec, failure_fields
from .errors import BusinessFailure
from .normalize import NormalizationError, parse_datetime, parse_decimal, parse_product_id, parse_quantity

NAMESPACE = "com.alibaba.fenxiao.crossborder"
#: The most a page may hold (imageQuery's documented limit; clients keep keywordQuery to it too).
MAX_PAGE_SIZE = 50
#: The most records a query reports (every live reply seen says 2,000: unverified).
MAX_RECORDS = 2000
#: The largest image the upload takes: not published; a proxy documents 3 MB (unverified).
IMAGE_MAX_BYTES = 3 * 2**20
#: What an uploaded image may be, by its first bytes (JPG, PNG, WEBP; GIF is accepted too).
IMAGE_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif"}
SORT_KEYS = {"price": "price", "monthsold": "monthSold", "repurchaserate": "rePurchaseRate"}
_FILTER = re.compile(r"[A-Za-z0-9]{1,40}")
_KINDS = ("keyword", "seller", "image")


def _succeeded(body: Mapping[str, Any]) -> bool:
    return body.get("success") in (True, "true")


def _failure(body: Mapping[str, Any], default: str) -> BusinessFailure:
    code, message = failure_fields(body)
    return BusinessFailure(code or "no_result", message or default)


def _page_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    """``result.result`` of a search reply: the page. ``success`` may be true or "true"."""
    outer = reply.get("result")
    if isinstance(outer, Mapping) and _succeeded(outer):
        page = outer.get("result")
        if isinstance(page, Mapping):
            return page
        raise BusinessFailure("no_result", "the reply says success but has no page")
    raise _failure(outer if isinstance(outer, Mapping) else reply, "reply has no result page")


def _upload_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    """``{"imageId": …}`` from an upload reply, whose ``result.result`` is the id as text."""
    outer = reply.get("result")
    if isinstance(outer, Mapping) and _succeeded(outer):
        image_id = outer.get("result")
        if isinstance(image_id, (str, int)) and not isinstance(image_id, bool) and str(image_id).strip():
            return {"imageId": str(image_id).strip()}
        raise BusinessFailure("no_result", "the upload says success but gives no image id")
    raise _failure(outer if isinstance(outer, Mapping) else reply, "the upload gave no image id")


KEYWORD_QUERY = ApiSpec(key="search.keyword", namespace=NAMESPACE, name="product.search.keywordQuery",
                        extract=_page_extract)
SELLER_QUERY = ApiSpec(key="search.seller", namespace=NAMESPACE, name="product.search.querySellerOfferList",
                       extract=_page_extract)
IMAGE_QUERY = ApiSpec(key="search.image", namespace=NAMESPACE, name="product.search.imageQuery",
                      extract=_page_extract)
IMAGE_UPLOAD = ApiSpec(key="image.upload", namespace=NAMESPACE, name="product.image.upload",
                       extract=_upload_extract)
SEARCH_APIS: dict[str, ApiSpec] = {spec.key: spec for spec in (KEYWORD_QUERY, SELLER_QUERY, IMAGE_QUERY, IMAGE_UPLOAD)}
QUERY_API = {"keyword": KEYWORD_QUERY, "seller": SELLER_QUERY, "image": IMAGE_QUERY}


# -- what is searched ---------------------------------------------------------------------------

def parse_sort(text: str | None) -> tuple[str, str] | None:
    """``price:asc``, ``monthSold:desc``, ``rePurchaseRate:desc`` (any case) → (key, order)."""
    if text is None or not str(text).strip():
        return None
    key, _, order = str(text).strip().partition(":")
    name = SORT_KEYS.get(key.strip().lower())
    order = (order or "desc").strip().lower()
    if name is None or order not in ("asc", "desc"):
        raise ValueError(f"sort must be price, monthSold or rePurchaseRate with :asc or :desc, got {str(text)[:40]!r}")
    return name, order


def parse_price_range(text: str | None) -> tuple[Decimal | None, Decimal | None] | None:
    """``10-50``, ``10-`` or ``-50`` (yuan) → (low, high)."""
    if text is None or not str(text).strip():
        return None
    match = re.fullmatch(r"\s*([0-9.]*)\s*[-~]\s*([0-9.]*)\s*", str(text))
    try:
        low, high = (parse_decimal(part or None) for part in match.groups()) if match else (None, None)
    except NormalizationError:
        match = None
    if not match or (low is None and high is None) or (low is not None and high is not None and low > high):
        raise ValueError(f"price must be a range of yuan such as 10-50, 10- or -50, got {str(text)[:40]!r}")
    return low, high


def parse_filters(text: str | None) -> tuple[str, ...]:
    """``shipIn48Hours,certifiedFactory`` → the names (the gateway knows which it takes)."""
    names = tuple(part.strip() for part in str(text or "").split(",") if part.strip())
    for name in names:
        if not _FILTER.fullmatch(name):
            raise ValueError(f"filter names are letters and digits, such as shipIn48Hours, got {name[:40]!r}")
    return names


@dataclass(frozen=True)
class SearchQuery:
    """One search: ``kind`` (keyword, seller or image) and its ``target`` (the keyword, the seller's
    open id, or the uploaded image's id), the language, and the options every search takes."""

    kind: str
    target: str
    country: str
    max_results: int = 200
    page_size: int = MAX_PAGE_SIZE
    sort: tuple[str, str] | None = None
    price: tuple[Decimal | None, Decimal | None] | None = None
    category: int | None = None
    filters: tuple[str, ...] = ()
    keyword: str | None = None  # shop and image searches: only hits that match it as well
    image_digest: str | None = None  # image searches: what identifies the photo in the stored query

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}")
        if not self.target.strip():
            raise ValueError({"keyword": "the keyword (q) is empty", "seller": "the seller id is empty",
                              "image": "the image id is empty"}[self.kind])
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {self.page_size}")
        if not 1 <= self.max_results <= MAX_RECORDS:
            raise ValueError(f"max_results must be within 1..{MAX_RECORDS}, got {self.max_results}")

    @property
    def api(self) -> ApiSpec:
        return QUERY_API[self.kind]

    @property
    def size(self) -> int:
        """The page size asked for: no more than the results wanted."""
        return min(self.page_size, self.max_results)

    def last_page(self, first: SearchPage) -> int:
        """The last page worth asking for, from what the first page reported."""
        return min(first.pages_holding(self.size), -(-self.max_results // self.size))

    def params(self, page: int) -> dict[str, object]:
        """The business parameters of page ``page`` (1-based)."""
        query: dict[str, object] = {
            {"keyword": "keyword", "seller": "sellerOpenId", "image": "imageId"}[self.kind]: self.target,
            "beginPage": page, "pageSize": self.size, "country": self.country,
        }
        if self.keyword and self.kind != "keyword":
            query["keyword"] = self.keyword
        if self.sort:
            query["sort"] = json.dumps({self.sort[0]: self.sort[1]})
        if self.price and self.price[0] is not None:
            query["priceStart"] = str(self.price[0])
        if self.price and self.price[1] is not None:
            query["priceEnd"] = str(self.price[1])
        if self.category is not None:
            query["categoryId"] = self.category
        if self.filters:
            query["filter"] = ",".join(self.filters)
        return {"offerQueryParam": query}

    def describe(self) -> dict[str, Any]:
        """The query as stored with each hit and search: plain values, no image bytes."""
        described: dict[str, Any] = {"kind": self.kind, "country": self.country}
        if self.kind == "image":
            described["image"] = self.image_digest or self.target
        else:
            described[self.kind] = self.target
        if self.keyword and self.kind != "keyword":
            described["keyword"] = self.keyword
        if self.sort:
            described["sort"] = f"{self.sort[0]}:{self.sort[1]}"
        if self.price:
            described["price"] = [str(value) if value is not None else None for value in self.price]
        if self.category is not None:
            described["category"] = self.category
        if self.filters:
            described["filters"] = list(self.filters)
        return described


def upload_params(image: bytes) -> dict[str, object]:
    """The upload's parameter; ``ValueError`` for what the gateway would refuse anyway."""
    if len(image) > IMAGE_MAX_BYTES:
        raise ValueError(f"the image is {len(image) / 2**20:.1f} MiB; the upload takes at most "
                         f"{IMAGE_MAX_BYTES / 2**20:.0f} MiB")
    if image_kind(image) is None:
        raise ValueError("the image is not a JPEG, PNG, WEBP or GIF file")
    return {"uploadImageParam": {"imageBase64": base64.b64encode(image).decode("ascii")}}


def image_kind(image: bytes) -> str | None:
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in IMAGE_MAGIC.items() if image.startswith(magic)), None)


# -- what comes back ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchPage:
    total_records: int
    total_pages: int
    current_page: int
    items: list[Mapping[str, Any]]
    counted: bool = True  # the reply gave its totals (else they are guessed from this page)

    @property
    def last(self) -> bool:
        """No page after this one: an empty page, or the last of ``total_pages``."""
        return not self.items or self.current_page >= self.total_pages

    def pages_holding(self, page_size: int) -> int:
        """How many pages hold records: ``totalPage`` is one too high when the records fill the
        last page (2,000 by 50 → 41), so the records' count decides when it is smaller."""
        return max(1, min(self.total_pages, -(-self.total_records // page_size)))


def read_page(payload: Mapping[str, Any], asked_page: int) -> SearchPage:
    """The page of a search reply (``_page_extract``'s payload); ``NormalizationError`` when its
    counts or its list cannot be read."""
    items = payload.get("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise NormalizationError("data", f"expected a list, got {type(items).__name__}")
    total = parse_quantity(payload.get("totalRecords"), "totalRecords")
    pages = parse_quantity(payload.get("totalPage"), "totalPage")
    current = parse_quantity(payload.get("currentPage"), "currentPage")
    return SearchPage(total_records=total if total is not None else len(items),
                      total_pages=pages if pages is not None else asked_page + (1 if items else 0),
                      current_page=current or asked_page,
                      items=[item for item in items if isinstance(item, Mapping)],
                      counted=total is not None and pages is not None)


@dataclass
class Listing:
    """One hit of a search (``listings`` in MongoDB): where it ranked and what the page said."""

    offer_id: str
    rank: int
    page: int
    subject: str | None = None
    subject_trans: str | None = None
    image: str | None = None
    price: Decimal | None = None
    consign_price: Decimal | None = None
    promotion_price: Decimal | None = None
    month_sold: int | None = None
    repurchase_rate: float | None = None  # percent: "13%" → 13.0
    trade_score: Decimal | None = None
    seller_scores: dict[str, Decimal] = field(default_factory=dict)
    company_name: str | None = None
    modify_date: datetime | None = None  # UTC
    create_date: datetime | None = None


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return str(value).strip() or None if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _percent(value: object, where: str) -> float | None:
    text = str(value).strip().rstrip("%") if isinstance(value, (str, int, float, Decimal)) else ""
    number = parse_decimal(text, where) if text and not isinstance(value, bool) else None
    return float(number) if number is not None else None


def _utc(value: object, where: str) -> datetime | None:
    moment = parse_datetime(value, where)
    return moment.astimezone(UTC) if moment is not None else None


def read_listing(item: Mapping[str, Any], rank: int, page: int) -> Listing:
    """One hit; every field but ``offerId`` is optional (live hits omit many or send null).
    ``NormalizationError`` names the field that cannot be read."""
    prices = item.get("priceInfo")
    prices = prices if isinstance(prices, Mapping) else {}
    ratings = item.get("sellerDataInfo")
    scores: dict[str, Decimal] = {}
    if isinstance(ratings, Mapping):
        for name, value in ratings.items():
            try:
                number = parse_decimal(str(value).rstrip("%")) if isinstance(value, (str, int, Decimal)) else None
            except NormalizationError:
                number = None  # a score that is no number is left out, as for products
            if number is not None and not isinstance(value, bool):
                scores[str(name)] = number
    trade = item.get("tradeScore")
    try:
        trade_score = parse_decimal(trade, "tradeScore") if not isinstance(trade, bool) else None
    except NormalizationError:
        trade_score = None
    return Listing(
        offer_id=parse_product_id(item.get("offerId"), "offerId"),
        rank=rank, page=page,
        subject=_text(item, "subject"),
        subject_trans=_text(item, "subjectTrans"),
        image=_text(item, "imageUrl"),
        price=parse_decimal(prices.get("price"), "priceInfo.price"),
        consign_price=parse_decimal(prices.get("consignPrice"), "priceInfo.consignPrice"),
        promotion_price=parse_decimal(prices.get("promotionPrice"), "priceInfo.promotionPrice"),
        month_sold=parse_quantity(item.get("monthSold"), "monthSold"),
        repurchase_rate=_percent(item.get("repurchaseRate"), "repurchaseRate"),
        trade_score=trade_score,
        seller_scores=scores,
        company_name=_text(item, "companyName"),
        modify_date=_utc(item.get("modifyDate"), "modifyDate"),
        create_date=_utc(item.get("createDate"), "createDate"),
    )

