"""``scrapy crawl search``: a keyword → its hits in ``listings``; with details, the offers found in
``products`` (or ``failures``) as ``scrapy crawl product`` stores them.

    scrapy crawl search -a q=保温杯 -a country=en [-a max_results=200] [-a sort=price:asc]
                        [-a price=10-50] [-a category=ID] [-a filter=shipIn48Hours,certifiedFactory]
                        [-a details=true|false] [-a api=crossborder]

Pages are gateway calls like any other (token, signature, quota, retries). Paging stops at
``max_results``, at an empty page or at the last page the gateway reports. A found offer whose
listing ``modifyDate`` is not newer than its stored product is not fetched again (``unchanged``).
``spiders/shop.py`` and ``spiders/image.py`` are this spider with another target.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from .. import stat_keys
from ..aop.apis import ApiSpec, product_api
from ..aop.classify import Outcome
from ..aop.normalize import NormalizationError
from ..aop.search import (
    Listing,
    SearchPage,
    SearchQuery,
    parse_filters,
    parse_price_range,
    parse_sort,
    read_listing,
    read_page,
)
from ..config import GatewayConfig
from ..gateway.call import META, RESULT, api_request, attempts_of, call_request
from ..inputs import SeenIds, language
from ..outcomes import FailureReason, FailureRecord, record_failure
from ..store.freshness import ListingChanges
from ..store.listings import FoundPage, SearchRun
from .callbacks import ProductCallbacks

PAGE = "ali1688_page"  # request.meta: the page number of a search call
_YES, _NO = ("true", "1", "yes", "y", "on"), ("false", "0", "no", "n", "off")


def _flag(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in _YES or text in _NO:
        return text in _YES
    raise ValueError(f"{name} must be true or false, got {str(value)[:40]!r}")


def _whole(name: str, value: object, low: int, high: int) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number within {low}..{high}, got {text[:40]!r}")
    return int(text)


class SearchSpider(ProductCallbacks, scrapy.Spider):
    name = "search"
    kind = "keyword"  # what the target is: a keyword, a seller's open id, an image (subclasses)

    def __init__(
        self, q: str | None = None, country: str | None = None, max_results: str = "200",
        sort: str | None = None, price: str | None = None, category: str | None = None,
        filter: str | None = None, details: str = "true", api: str = "crossborder",
        page_size: str | None = None, keyword: str | None = None, *args: Any, **kwargs: Any,
    ) -> None:
        target = kwargs.pop(self.target_argument, None) if self.target_argument != "q" else q
        super().__init__(*args, **kwargs)
        self.query: SearchQuery | None = None
        try:
            if target is None or not str(target).strip():
                raise ValueError(f"give {self.target_help}")
            if country is None:
                raise ValueError("country is required: the language of the translated fields (en, ja, ru, …)")
            most = _whole("max_results", max_results, 1, 2000)
            self.query = SearchQuery(
                kind=self.kind, target=self.target_of(str(target)), country=language(country),
                max_results=most, page_size=_whole("page_size", page_size, 1, 50) if page_size else min(50, most),
                sort=parse_sort(sort), price=parse_price_range(price),
                category=_whole("category", category, 1, 10**15) if category else None,
                filters=parse_filters(filter), keyword=keyword.strip() if keyword and keyword.strip() else None,
                image_digest=self.image_digest,
            )
            self.details = _flag("details", details)
            self.detail_api: ApiSpec = product_api(api)
            self.detail_options = {"country": self.query.country} if self.detail_api.key == "crossborder" else {}
        except ValueError as exc:
            self.argument_error = str(exc)

    # -- what subclasses change ---------------------------------------------------------------

    target_argument = "q"
    target_help = "a keyword: -a q=保温杯"
    image_digest: str | None = None

    def target_of(self, text: str) -> str:
        """The searched target from its argument (the image spider reads a file here)."""
        return text.strip()

    async def first_requests(self, config: GatewayConfig) -> AsyncIterator[scrapy.Request]:
        yield self.page_request(config, 1)

    # -- the search -----------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.refused_arguments():
            return
        assert self.query is not None
        self.started = datetime.now(UTC)
        self.search_id = f"{self.name}-{self.started:%Y%m%dT%H%M%S.%fZ}-{os.getpid()}"
        self.seen, self.found, self.pages, self.unchanged, self.fetched = SeenIds(), 0, 0, 0, 0
        self.total_records: int | None = None
        self.changes = ListingChanges.from_crawler(self.crawler) if self.details else None
        self.gateway = GatewayConfig.from_settings(self.crawler.settings)
        self.crawler.stats.inc_value(stat_keys.INPUT_READ)  # the search is one input; its hits are more
        async for request in self.first_requests(self.gateway):
            yield request

    def page_request(self, config: GatewayConfig, page: int) -> scrapy.Request:
        assert self.query is not None
        return call_request(self.query.api, config.gateway_url, config.app_key, self.query.params(page),
                            key=self.search_id, callback=self.parse_page, errback=self.on_search_error,
                            dont_filter=True, meta={PAGE: page})

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        assert self.query is not None
        call, result, number = response.meta[META], response.meta.get(RESULT), response.meta[PAGE]
        if result is None or result.outcome is not Outcome.OK:
            reason = FailureReason.BUSINESS_FAILURE if result is not None and result.outcome is Outcome.BUSINESS \
                else FailureReason.UNKNOWN_ERROR if result is not None and result.outcome is Outcome.UNKNOWN \
                else FailureReason.GAVE_UP
            self.fail_call(call, reason, attempts_of(response.request) if response.request else 1,
                           result.error_code if result else None, result.message if result else "no classification")
            yield self.ended("failed")
            return
        try:
            page = read_page(result.payload, number)
        except NormalizationError as exc:
            self.fail_call(call, FailureReason.UNREADABLE_PRODUCT, 1, None, str(exc), field=exc.field)
            yield self.ended("failed")
            return
        self.pages += 1
        self.total_records = page.total_records
        self.crawler.stats.inc_value(stat_keys.SEARCH_PAGES)
        listings = self.read_hits(page, number)
        if listings:
            yield FoundPage(self.search_id, self.query.describe(), listings, datetime.now(UTC))
        if self.details:
            async for request in self.detail_requests(listings):
                yield request
        if self.found >= self.query.max_results:
            yield self.ended("max_results")
        elif page.last:
            yield self.ended("empty_page" if not page.items else "last_page")
        else:
            yield self.page_request(self.gateway, number + 1)

    def read_hits(self, page: SearchPage, number: int) -> list[Listing]:
        """The page's hits up to ``max_results``; a hit that cannot be read is a failure of its own."""
        assert self.query is not None
        listings = []
        for item in page.items[: self.query.max_results - self.found]:
            self.found += 1
            try:
                listings.append(read_listing(item, self.found, number))
            except NormalizationError as exc:
                self.crawler.stats.inc_value(stat_keys.INPUT_READ)
                record_failure(self.crawler, FailureRecord(
                    key=f"{self.search_id}:{self.found}", reason=FailureReason.UNREADABLE_PRODUCT,
                    api=self.query.api.key, message=str(exc)[:300], field=exc.field))
        self.crawler.stats.inc_value(stat_keys.SEARCH_HITS, len(listings))
        return listings

    async def detail_requests(self, listings: list[Listing]) -> AsyncIterator[scrapy.Request]:
        """The found offers not fetched yet in this crawl and changed since stored (or never stored)."""
        stats = self.crawler.stats
        stats.inc_value(stat_keys.INPUT_READ, len(listings))
        new = []
        for listing in listings:
            if self.seen.add(listing.offer_id):
                new.append(listing)
            else:
                stats.inc_value(stat_keys.INPUT_DUPLICATE)
        assert self.changes is not None
        unchanged = await self.changes.unchanged({listing.offer_id: listing.modify_date for listing in new})
        self.unchanged += len(unchanged)
        stats.inc_value(stat_keys.UNCHANGED, len(unchanged))
        for listing in new:
            if listing.offer_id not in unchanged:
                self.fetched += 1
                yield api_request(self.detail_api, self.gateway.gateway_url, self.gateway.app_key, listing.offer_id,
                                  options=self.detail_options, callback=self.parse_product, errback=self.on_error,
                                  dont_filter=True)

    def on_search_error(self, failure: Any) -> Any:
        self.on_error(failure)  # one failure record for the search (a download error)
        return self.ended("failed")

    def ended(self, reason: str) -> SearchRun:
        """The ``searches`` document of this search."""
        assert self.query is not None
        if reason != "failed":
            self.crawler.stats.inc_value(stat_keys.SEARCHES)
        if self.changes is not None:
            self.changes.close()
        return SearchRun(
            search_id=self.search_id, query=self.query.describe(), spider=self.name, started_at=self.started,
            finished_at=datetime.now(UTC), finish_reason=reason, total_records=self.total_records,
            pages=self.pages, hits=self.found, unchanged=self.unchanged, details=self.fetched,
        )
