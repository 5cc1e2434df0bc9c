"""``scrapy crawl product``: offer ids or URLs (argument or file) → products.

    scrapy crawl product -a ids=610784549587,https://detail.1688.com/offer/626644646828.html
    scrapy crawl product -a ids_file=ids.txt     # one id or URL per line; '#' comments, blanks ok
    scrapy crawl product -a ids=… -a api=crossborder -a country=en -a currency=USD
    scrapy crawl product -a refresh_older_than=6h   # re-fetch stored products older than that (30m, 2d)

With ``ALI1688_FRESH_FOR`` (seconds, or 6h/30m/2d) ids fetched more recently are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import scrapy

from .. import stat_keys
from ..aop.apis import ApiSpec, product_api
from ..aop.errors import InvalidOfferRef
from ..aop.refs import parse_offer_ref
from ..config import GatewayConfig, parse_duration
from ..gateway.call import api_request
from ..inputs import SeenIds, count_given, given_references, language
from ..inputs import currency as inputs_currency
from ..outcomes import FailureReason, FailureRecord, fatal_stop, is_stopping, record_failure
from ..store.fields import Selection
from ..store.freshness import FreshnessFilter
from ..store.mongo import MongoStore, StorageError
from .callbacks import ProductCallbacks, wait_for_room

FRESHNESS_BATCH = 200  # references parsed (and checked for freshness) at a time
async def _chunks(items: AsyncIterator[str], size: int) -> AsyncIterator[list[str]]:
    chunk: list[str] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ProductSpider(ProductCallbacks, scrapy.Spider):
    name = "product"

    def __init__(
        self, ids: str | None = None, ids_file: str | None = None, api: str = "product.get",
        country: str = "en", refresh_older_than: str | None = None, currency: str | None = None,
        fields: str | None = None, *args: Any, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ids, self.ids_file, self.older_than = ids, ids_file, None
        self.api: ApiSpec = product_api("product.get")
        self.api_options: dict[str, Any] = {}
        try:  # a refused argument stops the crawl in start(): one line, exit 2 (raising here is a traceback)
            if not ids and not ids_file and not refresh_older_than:
                raise ValueError("give offer ids: -a ids=ID,URL,…, -a ids_file=FILE or -a refresh_older_than=6h")
            if ids_file and not Path(ids_file).is_file():
                raise ValueError(f"ids_file {ids_file!r} does not exist")
            self.older_than = parse_duration(refresh_older_than) if refresh_older_than else None
            self.selection = Selection.parse(fields) if fields is not None else None
            self.api = product_api(api)
            if self.api.key == "crossborder":
                self.api_options = {"country": language(country)}
                if currency:
                    self.api_options["currency"] = inputs_currency(currency)
            elif currency:
                raise ValueError("currency applies to api=crossborder only")
        except ValueError as exc:
            self.argument_error = str(exc)

    async def references(self) -> AsyncIterator[str]:
        """The input, streamed: ``ids``, then ``ids_file``, then the stale products in MongoDB."""
        for ref in given_references(self.ids, self.ids_file):
            yield ref
        if self.older_than is not None:
            store = MongoStore.from_settings(self.crawler.settings)
            batches = store.fetched_before(self._stale_cutoff)
            try:
                while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                    for offer_id in batch:
                        yield offer_id
            finally:
                store.close()

    async def expected_total(self) -> int:
        total = count_given(self.ids, self.ids_file)
        if self.older_than is not None:
            store = MongoStore.from_settings(self.crawler.settings)
            try:
                total += await asyncio.to_thread(store.count_fetched_before, self._stale_cutoff)
            finally:
                store.close()
        return total

    async def start(self) -> AsyncIterator[scrapy.Request]:
        stats = self.crawler.stats
        assert stats is not None
        if self.refused_arguments():
            return
        if self.older_than is not None:
            self._stale_cutoff = datetime.now(UTC) - timedelta(seconds=self.older_than)
        try:
            stats.set_value(stat_keys.INPUT_TOTAL, await self.expected_total())
        except StorageError as exc:
            fatal_stop(self.crawler, "mongo_unreachable", f"{exc} (set MONGO_URI)")
            return
        config = GatewayConfig.from_settings(self.crawler.settings)
        buffered = 2 * self.crawler.settings.getint("CONCURRENT_REQUESTS")
        freshness = FreshnessFilter.from_crawler(self.crawler)
        seen = SeenIds()  # each offer fetched once (requests skip Scrapy's dupefilter: its memory grows ~100 B/id)
        try:
            async for chunk in _chunks(self.references(), FRESHNESS_BATCH):
                offers = []
                for ref in chunk:
                    stats.inc_value(stat_keys.INPUT_READ)
                    try:
                        offer_id = parse_offer_ref(ref, open_ids=self.api.open_ids)
                    except InvalidOfferRef as exc:
                        record_failure(self.crawler, FailureRecord(
                            key=ref, reason=FailureReason.INVALID_REFERENCE, message=str(exc)))
                        continue
                    if seen.add(offer_id):
                        offers.append((ref, offer_id))
                    else:
                        stats.inc_value(stat_keys.INPUT_DUPLICATE)
                fresh = await freshness.fresh([offer_id for _, offer_id in offers]) if freshness else set()
                for ref, offer_id in offers:
                    if offer_id in fresh:
                        stats.inc_value(stat_keys.FRESH)
                        continue
                    await wait_for_room(self.crawler, buffered)
                    if is_stopping(self.crawler):
                        return
                    yield self.product_request(config, offer_id, ref)
        finally:
            if freshness is not None:
                freshness.close()

    def product_request(self, config: GatewayConfig, offer_id: str, ref: str) -> scrapy.Request:
        return api_request(
            self.api, config.gateway_url, config.app_key, offer_id, ref=ref, options=self.api_options,
            callback=self.parse_product, errback=self.on_error, dont_filter=True,
        )
