"""``scrapy crawl search``: a keyword → its hits in ``listings``; with details, the offers found in
``products`` (or ``failures``) as ``scrapy crawl product`` stores them.

    scrapy crawl search -a q=保温杯 -a country=en [-a max_results=200] [-a sort=price:asc]
                        [-a price=10-50] [-a category=ID] [-a filter=shipIn48Hours,certifiedFactory]
                        [-a details=true|false] [-a api=crossborder] [-a page_size=50]

Pages are gateway calls like any other (token, signature, quota, retries). Paging stops at
``max_results``, at an empty page or at the last page the gateway reports. A found offer whose
listing ``modifyDate`` is not newer than its stored product is not fetched again (``unchanged``).
``spiders/shop.py`` and ``spiders/image.py`` are this spider with another target; the search
itself is run by :mod:`.searching`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy

from .. import stat_keys
from ..aop.search import Listing
from ..config import GatewayConfig
from ..gateway.call import api_request
from ..inputs import SeenIds
from ..store.freshness import ListingChanges
from .callbacks import ProductCallbacks
from .searching import OPTIONS, Search, SearchCallbacks, make_search, search_id


class SearchSpider(SearchCallbacks, ProductCallbacks, scrapy.Spider):
    name = "search"
    kind = "keyword"  # what the target is: a keyword, a seller's open id, an image (subclasses)
    target_argument = "q"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        target = kwargs.pop(self.target_argument, None)
        options = {name: kwargs.pop(name) for name in OPTIONS if name in kwargs}
        super().__init__(*args, **kwargs)
        try:
            self.search: Search = make_search(self.kind, target, options, search_id(self.name))
        except ValueError as exc:
            self.argument_error = str(exc)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.refused_arguments():
            return
        self.gateway = GatewayConfig.from_settings(self.crawler.settings)
        self.seen = SeenIds()
        self.changes = ListingChanges.from_crawler(self.crawler) if self.search.details else None
        self.crawler.stats.inc_value(stat_keys.INPUT_READ)  # the search is one input; its hits are more
        yield self.first_request(self.search)

    async def found(self, search: Search, listings: list[Listing]) -> AsyncIterator[Any]:
        """Detail requests for the offers not fetched yet in this crawl and changed since stored."""
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
        search.unchanged += len(unchanged)
        stats.inc_value(stat_keys.UNCHANGED, len(unchanged))
        for listing in new:
            if listing.offer_id not in unchanged:
                search.fetched += 1
                yield api_request(search.detail_api, self.gateway.gateway_url, self.gateway.app_key,
                                  listing.offer_id, options=search.detail_options, callback=self.parse_product,
                                  errback=self.on_error, dont_filter=True)

    def search_ended(self, search: Search, reason: str) -> None:
        if self.changes is not None:
            self.changes.close()
