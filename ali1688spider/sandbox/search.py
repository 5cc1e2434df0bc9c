"""The discovery APIs (PROTOCOL.md §7) over the catalogue: keyword, shop and image search, and the
image upload that image search starts from.

What can be found is a fixed *universe*: the first :data:`SEARCH_UNIVERSE` ids of
``Catalogue.offer_ids`` (default start). Building a whole offer is costly, so the universe is kept
as an index of offer heads (:meth:`~.catalogue.Catalogue.head`: category, seller, subject, base
price tiers), built once, on the first search; only the offers of the page being answered are
built, at the gateway's epoch, so every value of a hit is the detail APIs' value at that epoch.

- ``keywordQuery``: the keyword (stripped) is a substring of an offer's Chinese subject or of its
  translation (:func:`~.views.translate`), ignoring case.
- ``querySellerOfferList``: the offers of one seller (``sellerOpenId``), optionally with a keyword.
- ``image.upload``: the image's id is a digest of its bytes (19 digits), so nothing is stored and
  the same image always gets the same id. ``imageQuery``: an image "shows" one category, drawn from
  the id; the hits are that category's offers, and any id of 1-20 digits is answered.

Every query takes ``sort`` (``price``, ``monthSold`` or ``rePurchaseRate``, ``asc``/``desc``; ties
by offer id), ``priceStart``/``priceEnd`` (yuan, on the first tier's price at the epoch),
``categoryId`` (the leaf or one of its :func:`~.views.category_levels`) and ``filter``
(``isOnePsale``: minimum order 1; ``certifiedFactory``: 3 sellers in 10; ``shipIn48Hours``: the
offers whose ``shippingTimeGuarantee`` says so, a third; unknown names are ignored). Without a sort
hits come in a relevance order: a hash of the query and the offer id.

Pages are the live gateway's: at most :data:`MAX_RECORDS` records a query,
``totalPage = totalRecords // pageSize + 1`` (the last page may be empty). A hit carries the
fields of :func:`_hit_view`; one in four omits its optional fields or sends them null, as live hits do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any

from . import vocabulary as vocab
from .catalogue import Catalogue, Offer, OfferHead, absolute_image, money_text
from .views import category_levels, dated, dumps, shipping_guarantee, translate

NAMESPACE = "com.alibaba.fenxiao.crossborder"
KEYWORD = "search.keyword"
SELLER = "search.seller"
IMAGE = "search.image"
UPLOAD = "image.upload"
#: (namespace, apiName) of the discovery APIs → the short name used here.
SEARCH_APIS = {
    (NAMESPACE, "product.search.keywordQuery"): KEYWORD,
    (NAMESPACE, "product.search.querySellerOfferList"): SELLER,
    (NAMESPACE, "product.search.imageQuery"): IMAGE,
    (NAMESPACE, "product.image.upload"): UPLOAD,
}
#: The one parameter each API takes: a JSON object as text.
PARAMS = {KEYWORD: "offerQueryParam", SELLER: "offerQueryParam", IMAGE: "offerQueryParam",
          UPLOAD: "uploadImageParam"}

SEARCH_UNIVERSE = 20_000  # offers that can be found: Catalogue.offer_ids(SEARCH_UNIVERSE)
MAX_RECORDS = 2000  # the most a query reports and pages through
MAX_PAGE_SIZE = 50
IMAGE_MAX_BYTES = 3 * 2**20
IMAGE_ID_DIGITS = 20  # imageQuery takes ids of 1 to 20 digits
SORT_FIELDS = ("price", "monthSold", "rePurchaseRate")
FILTERS = ("isOnePsale", "certifiedFactory", "shipIn48Hours")
PROMOTION_URL = "https://detail.1688.com/offer/{}.html?fromkv=refer:HVEV&kjSource=pc"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Beijing wall clock, as the detail's createDate
#: What a sparse hit (1 in 4, as live hits) leaves out, and what it sends as null (besides a
#: ``priceInfo.consignPrice``).
SPARSE_OMITTED = ("whiteImage", "secondCategoryId", "thirdCategoryId", "createDate", "sellerDataInfo", "promotionURL")
SPARSE_NULL = ("monthSold", "repurchaseRate", "tradeScore")

PARAM_ERROR = "PARAM_ERROR"
SELLER_NOT_FOUND = "SELLER_NOT_FOUND"
IMAGE_NOT_FOUND = "IMAGE_NOT_FOUND"
IMAGE_INVALID = "IMAGE_INVALID"
OK_CODE, OK_MESSAGE = "200", "成功"
_FAILURE_MESSAGES = {SELLER_NOT_FOUND: "卖家不存在", IMAGE_NOT_FOUND: "图片不存在"}

#: What an uploaded image may be, by its first bytes (WEBP is told by RIFF….WEBP).
_IMAGE_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))
_SORT_NAMES = {name.lower(): name for name in SORT_FIELDS}


class QueryError(Exception):
    """A business failure of a search call: its ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _param_error(message: str) -> QueryError:
    return QueryError(PARAM_ERROR, message)


def query_param(api: str, params: Mapping[str, str]) -> dict[str, Any] | str:
    """The API's JSON parameter as an object, or the message of a ``gw.ParamMissing`` when it is
    missing or not a JSON object (the gateway refuses those before the call is served)."""
    name = PARAMS[api]
    raw = params.get(name)
    if not raw:
        return f"{name} is required"
    try:
        value = json.loads(raw)
    except ValueError:
        return f"{name} must be a JSON object"
    return value if isinstance(value, dict) else f"{name} must be a JSON object"


# -- what is asked ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Criteria:
    """Which offers a query finds and in what order, whatever the page (hashable: the ranked
    hits of a query are cached while a client pages through them)."""

    country: str
    salt: str  # what the relevance order hashes beside the offer id: the API and what it asks for
    keyword: str = ""  # casefolded; "" = any
    seller_index: int | None = None
    image_category: int | None = None  # the category id an image shows
    sort: tuple[str, bool] | None = None  # (field, descending)
    low_cents: int | None = None
    high_cents: int | None = None
    category_id: int | None = None
    filters: frozenset[str] = frozenset()

    @property
    def uses_prices(self) -> bool:
        """Whether the hits depend on prices, hence on the epoch."""
        by_price = self.sort is not None and self.sort[0] == "price"
        return by_price or self.low_cents is not None or self.high_cents is not None


def _integer(query: Mapping[str, Any], name: str) -> int | None:
    """An integer field (a JSON number or its digits as text); ``None`` when it is absent."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _param_error(f"offerQueryParam.{name} must be an integer")
    text = str(value).strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise _param_error(f"offerQueryParam.{name} must be an integer")
    return int(text)


def _text(query: Mapping[str, Any], name: str, *, required: bool) -> str:
    value = query.get(name)
    if value is not None and not isinstance(value, str):
        raise _param_error(f"offerQueryParam.{name} must be a string")
    text = (value or "").strip()
    if required and not text:
        raise _param_error(f"offerQueryParam.{name} is required")
    return text


def _paging(query: Mapping[str, Any]) -> tuple[int, int]:
    page, size = _integer(query, "beginPage"), _integer(query, "pageSize")
    if page is None:
        raise _param_error("offerQueryParam.beginPage is required")
    if size is None:
        raise _param_error("offerQueryParam.pageSize is required")
    if page < 1:
        raise _param_error("offerQueryParam.beginPage must be 1 or more")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _param_error(f"offerQueryParam.pageSize must be within 1..{MAX_PAGE_SIZE}")
    return page, size


def _sort(query: Mapping[str, Any]) -> tuple[str, bool] | None:
    """``sort``: ``{"price": "asc"}`` as JSON text (as documented) or as an object; empty = none."""
    value = query.get("sort")
    problem = f'offerQueryParam.sort must be like {{"price":"asc"}} with one of {", ".join(SORT_FIELDS)}'
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise _param_error(problem) from None
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise _param_error(problem)
    (key, order), = value.items()
    name = _SORT_NAMES.get(str(key).lower())
    if name is None or not isinstance(order, str) or order.lower() not in ("asc", "desc"):
        raise _param_error(problem)
    return name, order.lower() == "desc"


def _price(query: Mapping[str, Any], name: str) -> Decimal | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    problem = f"offerQueryParam.{name} must be a price in yuan, such as \"12.5\""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _param_error(problem)
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise _param_error(problem) from None
    if not price.is_finite() or price < 0:
        raise _param_error(problem)
    return price


def _target(api: str, query: Mapping[str, Any]) -> str:
    """What a shop or image search is about: ``sellerOpenId`` or ``imageId`` (as text)."""
    if api == SELLER:
        return _text(query, "sellerOpenId", required=True)
    value = query.get("imageId")
    if value is None or value == "":
        raise _param_error("offerQueryParam.imageId is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QueryError(IMAGE_NOT_FOUND, _FAILURE_MESSAGES[IMAGE_NOT_FOUND])
    return str(value).strip()


def _filters(query: Mapping[str, Any]) -> frozenset[str]:
    value = query.get("filter")
    if value is None:
        return frozenset()
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        names = value
    else:
        raise _param_error("offerQueryParam.filter must be a comma-separated list")
    return frozenset(name.strip() for name in names) & frozenset(FILTERS)  # unknown names are ignored


# -- the index ------------------------------------------------------------------------------------

class _Index:
    """The universe's offer heads, in id order, and what searches filter and sort on."""

    def __init__(self, catalogue: Catalogue, size: int) -> None:
        self.catalogue = catalogue
        self.ids = catalogue.offer_ids(size)
        heads = [catalogue.head(offer_id) for offer_id in self.ids]
        self.heads: list[OfferHead] = [head for head in heads if head is not None]
        assert len(self.heads) == len(self.ids)  # offer_ids lists existing offers only
        self.folded = [head.subject.casefold() for head in self.heads]
        self.by_seller: dict[int, list[int]] = {}  # seller index → positions
        for position, head in enumerate(self.heads):
            self.by_seller.setdefault(head.seller_index, []).append(position)
        self.factories = frozenset(index for index in self.by_seller if _certified_factory(catalogue.seed, index))
        self._prices = lru_cache(maxsize=4)(self._first_prices)

    @cached_property
    def open_ids(self) -> dict[str, int]:
        """The open id of every seller with offers in the universe → its index (built when a shop is
        first asked for: it builds all those sellers)."""
        return {self.catalogue.seller(index).open_id: index for index in self.by_seller}

    def prices(self, epoch: int) -> list[int]:
        """The first tier's price (cents) of every offer at ``epoch``, by position."""
        return self._prices(epoch)

    def _first_prices(self, epoch: int) -> list[int]:
        return [self.catalogue.tiers(head, epoch)[0].price_cents for head in self.heads]


def _digest(*parts: object, size: int = 8) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size).digest(), "big")


def _certified_factory(seed: int, seller_index: int) -> bool:
    return _digest(seed, "factory", seller_index) % 10 < 3


def _image_category(seed: int, image: str) -> int:
    """The category an image "shows": its search finds that category's offers."""
    return vocab.CATEGORIES[_digest(seed, "image", image) % len(vocab.CATEGORIES)].category_id


@dataclass(frozen=True)
class _Traits:
    """What a hit shows beyond the offer, drawn from its id apart from the catalogue's draws."""

    sparse: bool  # optional fields left out or null (1 in 4)
    selected: bool  # isSelect (1 in 5)
    scores: tuple[str, ...]  # dispute, offer, consulting and after-sales experience scores


def _traits(seed: int, offer_id: int) -> _Traits:
    digest = hashlib.blake2b(f"{seed}:hit:{offer_id}".encode(), digest_size=8).digest()
    return _Traits(sparse=digest[0] % 4 == 0, selected=digest[1] % 5 == 0,
                   scores=tuple(f"{3 + byte % 21 / 10:.1f}" for byte in digest[2:6]))  # 3.0 to 5.0


def image_id(image: bytes) -> str:
    """The id ``image.upload`` gives these bytes: 19 decimal digits of their digest."""
    number = int.from_bytes(hashlib.blake2b(image, digest_size=8).digest(), "big")
    return str(10**18 + number % (9 * 10**18))


def image_kind(image: bytes) -> str | None:
    """``jpeg``, ``png``, ``gif`` or ``webp`` by the magic number, else ``None``."""
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in _IMAGE_MAGIC if image.startswith(magic)), None)


# -- answering ------------------------------------------------------------------------------------

class Discovery:
    """The discovery APIs of one catalogue. :meth:`answer` gives ``(body, success)``."""

    def __init__(self, catalogue: Catalogue, universe: int = SEARCH_UNIVERSE,
                 epoch_set_at: Mapping[int, datetime] | None = None) -> None:
        self.catalogue = catalogue
        self.universe = universe
        self._ranked = lru_cache(maxsize=128)(self._rank)
        self.epoch_set_at = epoch_set_at if epoch_set_at is not None else {}  # see views.dated()

    @cached_property
    def index(self) -> _Index:
        """The universe's index, built on first use (a few tenths of a second)."""
        return _Index(self.catalogue, self.universe)

    def answer(self, api: str, query: Mapping[str, Any], epoch: int) -> tuple[bytes, bool]:
        """The reply to a call of ``api`` (one of :data:`SEARCH_APIS`' values) whose parameter is
        ``query`` (from :func:`query_param`), at the catalogue's ``epoch``."""
        try:
            if api == UPLOAD:
                return success_body(api, image_id(_image(query))), True
            criteria, page, size = self._criteria(api, query)
            ranked = self._ranked(criteria, epoch if criteria.uses_prices else 0)
        except QueryError as failure:
            return failure_body(api, failure.code, failure.message), False
        start = (page - 1) * size
        hits = [self._hit(api, offer_id, criteria.country, epoch) for offer_id in ranked[start:start + size]]
        result: dict[str, Any] = {"totalRecords": len(ranked), "totalPage": len(ranked) // size + 1,
                                  "pageSize": size, "currentPage": page, "data": hits}
        if api == IMAGE:
            result["picRegionInfo"] = _regions(self.catalogue.seed, _target(api, query))
        return success_body(api, result), True

    def sellers(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` sellers with the most offers in the universe, largest first (ties by open id):
        ``[{"open_id", "offers"}, …]``."""
        index = self.index
        counts = Counter({open_id: len(index.by_seller[number]) for open_id, number in index.open_ids.items()})
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [{"open_id": open_id, "offers": count} for open_id, count in ranked[:n]]

    # -- queries ------------------------------------------------------------------------------

    def _criteria(self, api: str, query: Mapping[str, Any]) -> tuple[Criteria, int, int]:
        """What the query finds, its page and its page size; ``QueryError`` says what is wrong. The
        shop or image asked for is looked up last: a malformed query is a PARAM_ERROR whatever it
        names."""
        target = "" if api == KEYWORD else _target(api, query)
        keyword = _text(query, "keyword", required=api == KEYWORD).casefold()
        page, size = _paging(query)
        country = _text(query, "country", required=True)
        sort = _sort(query)
        low, high = _price(query, "priceStart"), _price(query, "priceEnd")
        if low is not None and high is not None and low > high:
            raise _param_error("offerQueryParam.priceStart must not be above priceEnd")
        category_id = _integer(query, "categoryId")
        filters = _filters(query)
        seller_index = image_category = None
        if api == SELLER:
            seller_index = self.index.open_ids.get(target)
            if seller_index is None:
                raise QueryError(SELLER_NOT_FOUND, _FAILURE_MESSAGES[SELLER_NOT_FOUND])
        elif api == IMAGE:
            if not (target.isascii() and target.isdigit() and 1 <= len(target) <= IMAGE_ID_DIGITS):
                raise QueryError(IMAGE_NOT_FOUND, _FAILURE_MESSAGES[IMAGE_NOT_FOUND])
            image_category = _image_category(self.catalogue.seed, target)
        criteria = Criteria(
            country=country, salt=f"{api}:{target}:{keyword}", keyword=keyword, seller_index=seller_index,
            image_category=image_category, sort=sort,
            low_cents=None if low is None else int((low * 100).to_integral_value(ROUND_CEILING)),
            high_cents=None if high is None else int((high * 100).to_integral_value(ROUND_FLOOR)),
            category_id=category_id, filters=filters,
        )
        return criteria, page, size

    def _rank(self, criteria: Criteria, epoch: int) -> tuple[int, ...]:
        """The ids of the first :data:`MAX_RECORDS` hits of ``criteria``, in order; ``epoch`` only
        matters to a query on prices (the caller passes 0 for the others, which shares the cache)."""
        index = self.index
        prices = index.prices(epoch) if criteria.uses_prices else []
        found = [position for position in self._candidates(criteria) if self._matches(criteria, position, prices)]
        ids = index.ids
        if criteria.sort is None:
            seed, salt = self.catalogue.seed, criteria.salt
            found.sort(key=lambda p: (_digest(seed, "rank", salt, ids[p]), ids[p]))
        else:
            name, descending = criteria.sort
            sign = -1 if descending else 1
            if name == "price":
                found.sort(key=lambda p: (sign * prices[p], ids[p]))
            else:  # monthSold and repurchaseRate are made from the id, as in the detail replies
                modulus = 20000 if name == "monthSold" else 30
                found.sort(key=lambda p: (sign * (ids[p] % modulus), ids[p]))
        return tuple(ids[p] for p in found[:MAX_RECORDS])

    def _candidates(self, criteria: Criteria) -> list[int] | range:
        """The positions worth testing: the shop's offers, or the whole universe."""
        if criteria.seller_index is not None:
            return self.index.by_seller.get(criteria.seller_index, [])
        return range(len(self.index.ids))

    def _matches(self, criteria: Criteria, position: int, prices: list[int]) -> bool:
        index, head = self.index, self.index.heads[position]
        keyword = criteria.keyword
        if keyword and keyword not in index.folded[position]:
            # the translation is the subject behind a prefix: only a keyword across both is left
            if keyword not in translate(criteria.country, index.folded[position]).casefold():
                return False
        category = head.category.category_id
        if criteria.image_category is not None and category != criteria.image_category:
            return False
        if criteria.category_id is not None and criteria.category_id not in category_levels(category):
            return False
        if criteria.low_cents is not None and prices[position] < criteria.low_cents:
            return False
        if criteria.high_cents is not None and prices[position] > criteria.high_cents:
            return False
        return not criteria.filters or self._passes(criteria.filters, head)

    def _passes(self, filters: frozenset[str], head: OfferHead) -> bool:
        if "isOnePsale" in filters and head.tiers[0].start_quantity != 1:
            return False
        if "certifiedFactory" in filters and head.seller_index not in self.index.factories:
            return False
        return not ("shipIn48Hours" in filters and shipping_guarantee(head.offer_id) != "shipIn48Hours")

    # -- replies ------------------------------------------------------------------------------

    def _hit(self, api: str, offer_id: int, country: str, epoch: int) -> dict[str, Any]:
        offer = self.catalogue.offer(offer_id, epoch)
        assert offer is not None  # the universe holds existing offers only
        offer = dated(offer, self.catalogue.drift_epoch(offer_id, epoch), self.epoch_set_at)
        return _hit_view(api, offer, country, _traits(self.catalogue.seed, offer_id))


def success_body(api: str, result: object) -> bytes:
    """The API's answer: ``{"result": {"success": true, "code": "200", "message": "成功",
    "result": …}}``, ``success`` the text "true" for the image APIs."""
    success: bool | str = "true" if api in (IMAGE, UPLOAD) else True
    return dumps({"result": {"success": success, "code": OK_CODE, "message": OK_MESSAGE, "result": result}})


def failure_body(api: str, code: str, message: str = "") -> bytes:
    """The API's business failure (HTTP 200): ``{"result": {"success": false, "code", "message"}}``,
    ``success`` the text "false" for the image APIs."""
    success: bool | str = "false" if api in (IMAGE, UPLOAD) else False
    text = message or _FAILURE_MESSAGES.get(code, code)
    return dumps({"result": {"success": success, "code": code, "message": text}})


def missing_body(api: str) -> bytes | None:
    """What the API answers when what it asks about is gone (the ``gone`` fault): the shop or the
    image no longer exists. ``None`` for the APIs that ask about nothing in particular."""
    code = {SELLER: SELLER_NOT_FOUND, IMAGE: IMAGE_NOT_FOUND}.get(api)
    return None if code is None else failure_body(api, code)


def _image(query: Mapping[str, Any]) -> bytes:
    """The uploaded image's bytes; ``QueryError`` when they are not base64, too large or no image."""
    value = query.get("imageBase64")
    if not isinstance(value, str) or not value.strip():
        raise _param_error("uploadImageParam.imageBase64 is required")
    text = "".join(value.split())  # line breaks of MIME base64 are fine
    try:
        image = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise QueryError(IMAGE_INVALID, "imageBase64 is not valid base64 (send it without a data: prefix)") from None
    if len(image) > IMAGE_MAX_BYTES:
        raise QueryError(IMAGE_INVALID, f"the image is {len(image)} bytes, more than the {IMAGE_MAX_BYTES} "
                                        "bytes (3 MB) allowed")
    if image_kind(image) is None:
        raise QueryError(IMAGE_INVALID, "the image is not a JPEG, PNG, WEBP or GIF file")
    return image


def _regions(seed: int, image: str) -> dict[str, str]:
    """``picRegionInfo``: the objects "detected" in the image (x1,x2,y1,y2), the first one searched."""
    rng = random.Random(f"{seed}:regions:{image}")
    boxes = []
    for _ in range(rng.randint(1, 3)):
        left, top = rng.randint(0, 500), rng.randint(0, 600)
        boxes.append(f"{left},{left + rng.randint(60, 400)},{top},{top + rng.randint(60, 400)}")
    return {"currentRegion": boxes[0], "yoloCropRegion": ";".join(boxes)}


def _hit_view(api: str, offer: Offer, country: str, traits: _Traits) -> dict[str, Any]:
    """One hit of a search, in the field names of the live replies.

    ``keywordQuery`` and ``imageQuery`` hits carry a ``promotionPrice`` (the detail's SKU promotion
    price, for the same offers) and ``sellerDataInfo``; ``imageQuery`` adds ``companyName`` and
    ``companyAddress``; ``querySellerOfferList`` hits have neither and send ``isSelect`` as text. A
    sparse hit (1 in 4) leaves out :data:`SPARSE_OMITTED` and sends :data:`SPARSE_NULL` as null:
    the price, ``modifyDate`` and the ids are always there.
    """
    seller, first = offer.seller, offer.tiers[0].price_cents
    consign = offer.skus[0].consign_cents if offer.skus else None
    prices: dict[str, Any] = {"price": money_text(first)}
    if consign is not None:
        prices["consignPrice"] = money_text(consign)
    if api != SELLER and offer.offer_id % 2:
        prices["promotionPrice"] = money_text(max(1, first * 95 // 100))
    prices["jxhyPrice"] = None
    top, second, third = category_levels(offer.category_id)
    hit: dict[str, Any] = {
        "offerId": offer.offer_id,
        "subject": offer.subject,
        "subjectTrans": translate(country, offer.subject),
        "imageUrl": absolute_image(offer.images[0]),
        "whiteImage": absolute_image(offer.white_image) if offer.white_image else None,
        "priceInfo": prices,
        "monthSold": offer.offer_id % 20000,
        "repurchaseRate": f"{offer.offer_id % 30}%",
        "tradeScore": seller.trade_score,
        "minOrderQuantity": offer.min_order_quantity,
        "isOnePsale": offer.min_order_quantity == 1,
        "isJxhy": False,
        "isSelect": ("true" if traits.selected else "false") if api == SELLER else traits.selected,
        "topCategoryId": top,
        "secondCategoryId": second,
        "thirdCategoryId": third,
        "createDate": offer.created.strftime(DATE_FORMAT),
        "modifyDate": offer.updated.strftime(DATE_FORMAT),
    }
    if api != SELLER:
        dispute, experience, consulting, after_sales = traits.scores
        hit["sellerDataInfo"] = {  # the detail's sellerDataInfo, and more scores
            "tradeMedalLevel": "gold", "compositeServiceScore": seller.trade_score,
            "logisticsExperienceScore": "4.0", "disputeComplaintScore": dispute,
            "offerExperienceScore": experience, "consultingExperienceScore": consulting,
            "afterSalesExperienceScore": after_sales, "repeatPurchasePercent": f"{offer.offer_id % 30}%",
        }
    hit["promotionURL"] = PROMOTION_URL.format(offer.offer_id)
    if api == IMAGE:
        hit["companyName"] = seller.company
        hit["companyAddress"] = f"{seller.province} {seller.city}"
    if hit["whiteImage"] is None:
        del hit["whiteImage"]
    if traits.sparse:
        for name in SPARSE_OMITTED:
            hit.pop(name, None)
        for name in SPARSE_NULL:
            hit[name] = None
        if "consignPrice" in prices:
            prices["consignPrice"] = None
    return hit
