"""The pipeline of the collections beside products: each page of hits into ``listings``, each
ended search into ``searches`` (search, shop, image), each follow call's offers into ``follows``.

These items are few (at most 40 pages per search, one per follow call) and written as they come,
in a thread. When MongoDB cannot take them they are saved to ``ALI1688_UNSAVED_DIR`` like
products, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from .. import config
from ..outcomes import documents_stored
from ..store.follows import Follow, FollowStore
from ..store.listings import FoundPage, ListingStore, SearchRun, listing_document
from ..store.mongo import MongoStore, StorageError
from .mongo import save_unwritten

logger = logging.getLogger(__name__)


class ListingsPipeline:
    """Connects to MongoDB at the first item of its own: a product crawl never opens it."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.store: ListingStore | None = None
        self.follows: FollowStore | None = None
        self._down = False
        self._opening = asyncio.Lock()  # items come concurrently: one connection for all

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ListingsPipeline:
        if not config.MONGO_ENABLED.get(crawler.settings):
            raise NotConfigured
        return cls(crawler)

    async def _open(self) -> ListingStore | None:
        async with self._opening:
            return await self._open_once()

    async def _open_once(self) -> ListingStore | None:
        if self.store is None and not self._down:
            store = ListingStore(MongoStore.from_settings(self.crawler.settings))
            try:
                await asyncio.to_thread(store.open)
                follows = FollowStore(store.store)
                follows.create_indexes()
                self.store, self.follows = store, follows
            except StorageError as exc:  # the product pipeline stops the crawl; here, keep pages on disk
                logger.error("%s (search results are saved to files)", exc)
                store.close()
                self._down = True
        return self.store

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, FoundPage):
            documents = [listing_document(listing, item.search_id, item.query, item.seen_at)
                         for listing in item.listings]
            await self._write("listings", documents, lambda store: store.write_hits(documents))
        elif isinstance(item, SearchRun):
            document = item.document()
            if await self._write("searches", [document], lambda store: store.record_search(document)):
                # a queued search's entry is let go of once its run is stored (spiders/product_redis.py)
                self.crawler.signals.send_catch_log(signal=documents_stored, keys=[item.search_id])
        elif isinstance(item, Follow):
            await self._write("follows", [{"offer_ids": item.offer_ids, "followed": item.followed, "api": item.api,
                                           "at": item.at}], lambda _: self.follows.record(item))
        return item

    async def _write(self, collection: str, documents: list[dict[str, Any]], write: Any) -> bool:
        """Whether MongoDB took the documents; else they are saved to a file."""
        store = await self._open()
        if store is not None:
            try:
                await asyncio.to_thread(write, store)
                return True
            except StorageError as exc:
                logger.error("%s", exc)
        save_unwritten(self.crawler, {collection: documents})
        return False

    def close_spider(self) -> None:
        if self.store is not None:
            self.store.close()
