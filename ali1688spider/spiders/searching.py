"""Running searches inside a crawl: what the ``search``/``shop``/``image`` spiders and the queue
worker (``product_redis``, for queued searches) share.

A :class:`Search` is one search in flight: its query and counters. Its calls go as the requests
of :class:`SearchCallbacks`: the upload of an image (after its download, for a URL), then the
pages. Each page's hits become a :class:`~..store.listings.FoundPage` item; the offers found are
handed to :meth:`SearchCallbacks.found`, which the spider fetches and the queue worker queues;
the search's end is a :class:`~..store.listings.SearchRun` item.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response

from .. import stat_keys
from ..aop.apis import ApiSpec, product_api
from ..aop.classify import Outcome
from ..aop.normalize import NormalizationError
from ..aop.search import (
    IMAGE_UPLOAD,
    Listing,
    SearchPage,
    SearchQuery,
    parse_filters,
    parse_price_range,
    parse_sort,
    read_listing,
    read_page,
    upload_params,
)
from ..config import MASK, GatewayConfig, redact_uri
from ..gateway.call import META, RESULT, attempts_of, call_request
from ..inputs import language
from ..outcomes import FailureReason, FailureRecord, record_failure
from ..store.listings import FoundPage, SearchRun

#: A search's options, as spider arguments and as the keys of a queued search.
OPTIONS = ("country", "max_results", "sort", "price", "category", "filter", "details", "api", "page_size",
           "keyword")
_YES, _NO = ("true", "1", "yes", "y", "on"), ("false", "0", "no", "n", "off")


def yes_no(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in _YES or text in _NO:
        return text in _YES
    raise ValueError(f"{name} must be true or false, got {str(value)[:40]!r}")


def _whole(name: str, value: object, low: int, high: int) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number within {low}..{high}, got {text[:40]!r}")
    return int(text)


@dataclass
class Search:
    """One search in flight. ``image`` holds the upload's parameter of a local image; ``image_url``
    an image to download first."""

    query: SearchQuery
    search_id: str
    details: bool
    detail_api: ApiSpec
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    image: dict[str, object] | None = None
    image_url: str | None = None
    found: int = 0
    pages: int = 0
    unchanged: int = 0
    fetched: int = 0
    total_records: int | None = None
    pending: set[int] = field(default_factory=set)  # pages asked for, not answered yet
    empty_page: bool = False  # a page came back empty
    failed: bool = False  # a call of it failed (recorded once)

    @property
    def detail_options(self) -> dict[str, Any]:
        return {"country": self.query.country} if self.detail_api.key == "crossborder" else {}


def make_search(kind: str, target: object, options: dict[str, Any], search_id: str) -> Search:
    """A search from its arguments (spider arguments or a queued entry's keys); ``ValueError``
    says which argument is wrong. An image path is read and checked here, before any call."""
    if target is None or not str(target).strip():
        raise ValueError(f"give {TARGET_HELP[kind]}")
    country = options.get("country")
    if country is None:
        raise ValueError("country is required: the language of the translated fields (en, ja, ru, …)")
    most = _whole("max_results", options.get("max_results", 200), 1, 2000)
    size = options.get("page_size")
    text = str(target).strip()
    image, image_url, digest = None, None, None
    if kind == "image":
        if text.lower().startswith(("http://", "https://")):
            image_url, text = text, redact_uri(text)  # what is stored names the URL without a password
        else:
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"image {text[:200]!r} is not a file")
            data = path.read_bytes()
            image = upload_params(data)  # ValueError: too large, not an image
            digest = text = image_digest(data)
    keyword = options.get("keyword")
    query = SearchQuery(
        kind=kind, target=text, country=language(country), max_results=most,
        page_size=_whole("page_size", size, 1, 50) if size is not None else min(50, most),
        sort=parse_sort(options.get("sort")), price=parse_price_range(options.get("price")),
        category=_whole("category", options["category"], 1, 10**15) if options.get("category") else None,
        filters=parse_filters(options.get("filter")),
        keyword=str(keyword).strip() if keyword and str(keyword).strip() else None, image_digest=digest,
    )
    return Search(query, search_id, yes_no("details", options.get("details", "true")),
                  product_api(str(options.get("api") or "crossborder")), image=image, image_url=image_url)


TARGET_HELP = {"keyword": "a keyword: -a q=保温杯", "seller": "a seller: -a seller=SELLER_OPEN_ID (seller.open_id "
               "of a crossborder product)", "image": "an image: -a image=photo.jpg or -a image=https://…/photo.jpg"}


def image_digest(data: bytes) -> str:
    """How a searched image is named in ``listings`` and ``searches``: never its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def search_id(spider: str, number: int = 0) -> str:
    now = datetime.now(UTC)
    return f"{spider}-{now:%Y%m%dT%H%M%S.%fZ}-{os.getpid()}" + (f"-{number}" if number else "")


class SearchCallbacks:
    """The calls of searches and what their replies become: a mixin of the spiders that search,
    next to :class:`~.callbacks.ProductCallbacks` (``fail_call``, ``fail_reply``, ``on_error``)."""

    crawler: Any
    gateway: GatewayConfig
    fail_call: Any
    fail_reply: Any
    on_error: Any

    async def found(self, search: Search, listings: list[Listing]) -> AsyncIterator[Any]:
        """What the offers of a page become: detail requests (the spiders) or queued entries."""
        raise NotImplementedError
        yield

    def search_ended(self, search: Search, reason: str) -> None:
        """Told when a search ends (the queue worker lets go of its entry once the run is stored)."""

    # -- the calls ---------------------------------------------------------------------------

    def first_request(self, search: Search) -> scrapy.Request:
        if search.image_url is not None:
            return scrapy.Request(search.image_url, callback=self.downloaded, errback=self.not_downloaded,
                                  dont_filter=True, cb_kwargs={"search": search},
                                  meta={"handle_httpstatus_all": True})
        if search.query.kind == "image":
            assert search.image is not None
            return call_request(IMAGE_UPLOAD, self.gateway.gateway_url, self.gateway.app_key, search.image,
                                key=search.search_id, callback=self.uploaded, errback=self.search_error,
                                dont_filter=True, cb_kwargs={"search": search})
        return self.page_request(search, 1)

    def page_request(self, search: Search, page: int) -> scrapy.Request:
        search.pending.add(page)
        return call_request(search.query.api, self.gateway.gateway_url, self.gateway.app_key,
                            search.query.params(page), key=search.search_id, callback=self.parse_page,
                            errback=self.search_error, dont_filter=True, cb_kwargs={"search": search, "number": page})

    # -- an image: downloaded (a URL), then uploaded -----------------------------------------

    def downloaded(self, response: Response, search: Search) -> Any:
        problem = f"HTTP {response.status}" if response.status != 200 else None
        if problem is None:
            try:
                search.image = upload_params(response.body)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            return self.image_refused(search, problem)
        digest = image_digest(response.body)
        search.query = replace(search.query, target=digest, image_digest=digest)
        search.image_url = None
        return self.first_request(search)

    def not_downloaded(self, failure: Any) -> Any:
        search = failure.request.cb_kwargs["search"]
        return self.image_refused(search, f"{type(failure.value).__name__}: {str(failure.value)[:200]}")

    def image_refused(self, search: Search, why: str) -> SearchRun:
        """An image that cannot be searched with: one failure (naming the URL without its
        password, also where the error repeats it), the search ends."""
        url = search.image_url or ""
        password = urlsplit(url).password
        if password:
            why = why.replace(password, MASK)
        record_failure(self.crawler, FailureRecord(
            key=search.search_id, reason=FailureReason.INVALID_REFERENCE, api=IMAGE_UPLOAD.key,
            message=f"the image at {redact_uri(url)!r} cannot be searched with: {why}"[:500]))
        return self.ended(search, "failed")

    def uploaded(self, response: Response, search: Search) -> Any:
        result = response.meta.get(RESULT)
        if not self._answered(response, search):
            return self.ended(search, "failed")
        search.query = replace(search.query, target=str(result.payload["imageId"]))
        return self.page_request(search, 1)

    # -- the pages ---------------------------------------------------------------------------

    async def parse_page(self, response: Response, search: Search, number: int) -> AsyncIterator[Any]:
        """One page: its hits stored and handed on. Once the first page tells how many there
        are, the others are asked for at once (the quota, not the round trips, sets the pace);
        a reply without totals is followed page by page. The search ends with its last reply
        (this page stays pending until it is done: other pages are handled while it waits)."""
        page = self._page(response, search, number)
        if page is not None:
            search.pages += 1
            self.crawler.stats.inc_value(stat_keys.SEARCH_PAGES)
            search.empty_page |= not page.items
            listings = self.read_hits(search, page, number)
            if listings:
                yield FoundPage(search.search_id, search.query.describe(), listings, datetime.now(UTC))
            if search.details:
                async for output in self.found(search, listings):
                    yield output
            if not search.failed:
                for request in self._next_pages(search, page, number):
                    yield request
        search.pending.discard(number)
        if not search.pending:
            yield self.ended(search, "failed" if search.failed else "max_results"
                             if search.found >= search.query.max_results else "empty_page" if search.empty_page
                             else "last_page")

    def _page(self, response: Response, search: Search, number: int) -> SearchPage | None:
        if not self._answered(response, search):
            return None
        try:
            page = read_page(response.meta[RESULT].payload, number)
        except NormalizationError as exc:
            if not search.failed:
                search.failed = True
                self.fail_call(response.meta[META], FailureReason.UNREADABLE_PRODUCT, 1, None, str(exc),
                               field=exc.field)
            return None
        if number == 1 or search.total_records is None:
            search.total_records = page.total_records
        return page

    def _next_pages(self, search: Search, page: SearchPage, number: int) -> list[scrapy.Request]:
        wanted = -(-search.query.max_results // search.query.size)
        if number == 1 and page.counted:
            last = min(search.query.last_page(page), wanted)
            pages = range(2, last + 1)
        elif not page.counted and page.items and number < wanted:
            pages = range(number + 1, number + 2)
        else:
            pages = range(0)
        search.pending.update(pages)
        return [self.page_request(search, n) for n in pages]

    def _answered(self, response: Response, search: Search) -> bool:
        """Whether the gateway answered the call; else its failure is recorded, once per search
        (keyed by the search)."""
        result = response.meta.get(RESULT)
        if result is not None and result.outcome is Outcome.OK:
            return True
        if not search.failed:
            search.failed = True
            self.fail_reply(response.meta[META], result, attempts_of(response.request) if response.request else 1)
        return False

    def read_hits(self, search: Search, page: SearchPage, number: int) -> list[Listing]:
        """The page's hits, ranked by their place in the results, up to ``max_results``; a hit
        that cannot be read is a failure of its own."""
        first = (number - 1) * search.query.size + 1
        listings = []
        for rank, item in enumerate(page.items[: max(0, search.query.max_results - first + 1)], start=first):
            search.found += 1
            try:
                listings.append(read_listing(item, rank, number))
            except NormalizationError as exc:
                self.crawler.stats.inc_value(stat_keys.INPUT_READ)
                record_failure(self.crawler, FailureRecord(
                    key=f"{search.search_id}:{rank}", reason=FailureReason.UNREADABLE_PRODUCT,
                    api=search.query.api.key, message=str(exc)[:300], field=exc.field))
        self.crawler.stats.inc_value(stat_keys.SEARCH_HITS, len(listings))
        return listings

    def search_error(self, failure: Any) -> Any:
        """A call of the search that could not be downloaded: one failure for the search; it
        ends with its last call."""
        search: Search = failure.request.cb_kwargs["search"]
        search.pending.discard(failure.request.cb_kwargs.get("number", 0))
        if not search.failed:
            search.failed = True
            self.on_error(failure)
        return self.ended(search, "failed") if not search.pending else None

    def ended(self, search: Search, reason: str) -> SearchRun:
        """The ``searches`` document of a search that ended."""
        if reason != "failed":
            self.crawler.stats.inc_value(stat_keys.SEARCHES)
        self.search_ended(search, reason)
        return SearchRun(
            search_id=search.search_id, query=search.query.describe(), spider=self.crawler.spider.name,
            started_at=search.started, finished_at=datetime.now(UTC), finish_reason=reason,
            total_records=search.total_records, pages=search.pages, hits=search.found, unchanged=search.unchanged,
            details=search.fetched,
        )
