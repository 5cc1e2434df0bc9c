"""The MongoDB pipeline: products and failures written in bulk, kept and retried while MongoDB is away."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import json_util
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from .. import config, stat_keys
from ..aop.product import Product
from ..gateway.middlewares import quota_report
from ..outcomes import FailureReason, FailureRecord, documents_stored, failure_recorded, fatal_stop, record_failure
from ..store.fields import product_view
from ..store.mongo import MongoStore, StorageError, product_document, storable_failure, storable_product

logger = logging.getLogger(__name__)


#: Products buffered (in batches of ``MONGO_BATCH_SIZE``) before an item waits for the writer.
BUFFERED_BATCHES = 4


class MongoPipeline:
    """Buffers documents and writes them with ``bulk_write``: when a batch is full, every
    ``MONGO_FLUSH_SECONDS`` and when the spider closes. If a write fails, the documents are kept
    and retried for up to ``MONGO_RETRY_SECONDS``; after that the crawl stops with one clear line
    and the unwritten documents are saved to a JSON-lines file."""

    def __init__(self, crawler: Crawler, store: MongoStore, batch_size: int, flush_seconds: float) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.store: MongoStore | None = store
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._products: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self.retry_seconds = config.MONGO_RETRY_SECONDS.get(crawler.settings)
        self.started = datetime.now(UTC)  # a failure yields to a product fetched since (MongoStore.write)
        crawler.signals.connect(self.on_failure, signal=failure_recorded)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoPipeline:
        settings = crawler.settings
        if not config.MONGO_ENABLED.get(settings):
            raise NotConfigured
        return cls(crawler, MongoStore.from_settings(settings), config.MONGO_BATCH_SIZE.get(settings),
                   config.MONGO_FLUSH_SECONDS.get(settings))

    async def open_spider(self) -> None:
        assert self.store is not None
        try:
            await asyncio.to_thread(self.store.open)
        except StorageError as exc:
            self.store = None
            fatal_stop(self.crawler, "mongo_unreachable", f"{exc} (set MONGO_URI)")
            return
        logger.info("writing to MongoDB %s", self.store.where)
        self._ticker = asyncio.ensure_future(self._tick())

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, Product):
            document = product_view(item, self.crawler)  # raw as received: made storable only if BSON refuses it
            await self._wait_for_room()
            self._products.append(product_document(document, datetime.now(UTC)))
            self.stats.max_value(stat_keys.MONGO_MAX_BUFFERED, len(self._products))  # type: ignore[union-attr]
            if len(self._products) >= self.batch_size and self._down_since is None and not self._lock.locked():
                await self.flush()  # while a write runs, items gather for the next batch
        return item

    def _full(self) -> bool:
        return len(self._products) >= BUFFERED_BATCHES * self.batch_size and self.store is not None

    async def _wait_for_room(self) -> None:
        """With ``BUFFERED_BATCHES`` full batches waiting (the writer is behind, or MongoDB is away
        and only the ticker retries), an item waits for the writer, and the crawl behind it slows
        to the writer's pace: memory stays bounded whatever MongoDB does."""
        if self._full():
            self.stats.inc_value(stat_keys.MONGO_ITEMS_WAITED)  # type: ignore[union-attr]
        while self._full():
            if self._down_since is None:
                await self.flush()
            else:
                await asyncio.sleep(min(0.5, self.flush_seconds))

    def on_failure(self, failure: FailureRecord) -> None:
        self._failures.append(failure.to_document())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception as exc:  # the writer must outlive any one batch
                logger.error("writing to MongoDB failed (%s: %s); trying again", type(exc).__name__, str(exc)[:300])

    async def flush(self, *, final: bool = False) -> None:
        async with self._lock:
            products, self._products = self._products, []
            failures, self._failures = self._failures, []
            if not products and not failures:
                return
            if self.store is None:
                self._save_unwritten(products, failures)
                return
            try:
                written, failed, products, failures = await self._write(products, failures)
            except StorageError as exc:
                self._write_failed(exc, products, failures, final=final)
                return
            except Exception as exc:  # refused again, for a reason nobody foresaw: keep it in a file
                logger.error("MongoDB refused a batch three times (%s: %s)", type(exc).__name__, str(exc)[:300])
                self._save_unwritten(products, failures)
                return
            if self._down_since is not None:
                logger.warning("MongoDB is back after %.0f s", time.monotonic() - self._down_since)
                self._down_since = None
            self.stats.inc_value(stat_keys.MONGO_BULK_WRITES)  # type: ignore[union-attr]
            self.stats.inc_value(stat_keys.MONGO_PRODUCTS_WRITTEN, written)  # type: ignore[union-attr]
            self.stats.inc_value(stat_keys.MONGO_FAILURES_WRITTEN, failed)  # type: ignore[union-attr]
            self.stats.set_value(stat_keys.MONGO_HISTORY_WRITTEN, self.store.history_written)  # type: ignore[union-attr]
            if self.store.failures_yielded:
                self.stats.set_value(stat_keys.MONGO_FAILURES_YIELDED, self.store.failures_yielded)  # type: ignore[union-attr]
            self._count_unavailable()
            keys = [doc["_id"] for doc in products] + [doc["_id"] for doc in failures]
            self.crawler.signals.send_catch_log(signal=documents_stored, keys=keys)

    def _count_unavailable(self) -> None:
        """Gone offers that were kept as unavailable products are counted there, not as failures."""
        assert self.store is not None
        new = self.store.marked_unavailable - self.stats.get_value(stat_keys.UNAVAILABLE, 0)  # type: ignore[union-attr]
        if new > 0:
            self.stats.inc_value(stat_keys.UNAVAILABLE, new)  # type: ignore[union-attr]
            self.stats.inc_value(stat_keys.failed(FailureReason.BUSINESS_FAILURE), -new)  # type: ignore[union-attr]
            logger.info("%d offer(s) the API says are gone kept as unavailable products", new)

    async def _write(self, products: list[dict[str, Any]], failures: list[dict[str, Any]],
                     ) -> tuple[int, int, list[dict[str, Any]], list[dict[str, Any]]]:
        """Write a batch; ``StorageError`` when MongoDB is away. Documents MongoDB refuses (BSON
        cannot encode them, or over its size limit) are split out: written again in storable form
        (escaped, without a raw payload over the limit), then, if MongoDB still refuses them,
        recorded as ``unstorable_product`` failures. The rest of the batch is always written.
        Returns the counts written and the documents as written."""
        refuse: set[Any] | None = None
        for attempt in range(3):
            try:
                written, failed = await asyncio.to_thread(self.store.write, products, failures, since=self.started)
                return written, failed, products, failures
            except StorageError:
                raise
            except Exception as exc:
                if attempt == 2:
                    raise
                logger.warning("MongoDB refused documents of a batch (%s): writing the rest", str(exc)[:300])
                if attempt == 1:
                    refuse = getattr(exc, "ids", None)
                products, failures, refused = await asyncio.to_thread(split_storable, products, failures, refuse)
                for record in refused:
                    record_failure(self.crawler, record)  # buffered again: written by the next flush
        raise AssertionError("unreachable")

    def _write_failed(self, exc: StorageError, products: list[dict[str, Any]], failures: list[dict[str, Any]],
                      *, final: bool) -> None:
        """Keep the documents and try again at the next flush, for up to ``MONGO_RETRY_SECONDS``;
        then stop the crawl and save them to a file."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            logger.error("%s: keeping %d documents and retrying for up to %.0f s",
                         exc, len(products) + len(failures), self.retry_seconds)
        if now - self._down_since < self.retry_seconds and not final:
            self._products[:0] = products
            self._failures[:0] = failures
            self.stats.inc_value(stat_keys.MONGO_WRITE_RETRIES)  # type: ignore[union-attr]
            return
        self.store = None
        fatal_stop(self.crawler, "mongo_write_failed", f"{exc} (for {now - self._down_since:.0f} s)")
        self._save_unwritten(products, failures)

    async def close_spider(self) -> None:
        if self._ticker is not None:
            async with self._lock:  # never cancel a write in progress: wait for it, then stop the ticker
                self._ticker.cancel()
        await self.flush()
        while (self._products or self._failures) and self.store is not None:
            await asyncio.sleep(min(1.0, self.flush_seconds))  # MongoDB is away: wait, within the retry limit
            left = self.retry_seconds - (time.monotonic() - (self._down_since or time.monotonic()))
            await self.flush(final=left <= 0)

    async def spider_closed(self, spider: Any, reason: str) -> None:
        """Record the run (after the last flush: the stats are final), then let go of MongoDB."""
        if self.store is None:
            return
        stats = self.crawler.stats.get_stats()  # type: ignore[union-attr]
        try:
            run = run_document(spider.name, stats, reason, quota=quota_report(self.crawler))
            await asyncio.to_thread(self.store.record_run, run)
        except StorageError as exc:
            logger.error("%s (the run summary was not stored)", exc)
        self.store.close()

    def _save_unwritten(self, products: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        save_unwritten(self.crawler, {"products": products, "failures": failures})


def save_unwritten(crawler: Crawler, documents: dict[str, list[dict[str, Any]]]) -> None:
    """Keep what MongoDB could not take: one JSON document per line (``{"collection", "document"}``),
    in ``ALI1688_UNSAVED_DIR``, to load later."""
    total = sum(len(docs) for docs in documents.values())
    if not total:
        return
    folder = Path(config.UNSAVED_DIR.get(crawler.settings))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"unsaved-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        for collection, docs in documents.items():
            for doc in docs:
                handle.write(json_util.dumps({"collection": collection, "document": doc}) + "\n")
    crawler.stats.inc_value(stat_keys.MONGO_UNSAVED, total)  # type: ignore[union-attr]
    counts = ", ".join(f"{len(docs)} {collection}" for collection, docs in documents.items())
    logger.error("MongoDB unavailable: %s saved to %s", counts, path)


def split_storable(products: list[dict[str, Any]], failures: list[dict[str, Any]], refuse: set[Any] | None = None,
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[FailureRecord]]:
    """After a batch was refused: the products and failures as MongoDB can take them (escaped,
    a product over the size limit without its raw payload), and an ``unstorable_product`` failure
    for each product that cannot be made storable or whose ``_id`` is in ``refuse``."""
    storable, refused = [], []
    for doc in products:
        try:
            if refuse is not None and doc["_id"] in refuse:
                raise ValueError("MongoDB refused it in storable form too")
            storable.append(storable_product(doc))
        except Exception as exc:
            refused.append(FailureRecord(
                key=doc["_id"], offer_id=doc["_id"], reason=FailureReason.UNSTORABLE_PRODUCT,
                api=doc.get("source_api"), message=f"{type(exc).__name__}: {exc}"[:300]))
    return storable, [storable_failure(doc) for doc in failures], refused


def run_document(spider: str, stats: dict[str, Any], reason: str,
                 quota: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``runs`` document of one crawl, from its final stats (and the adaptive quota's report)."""
    started = stats.get("start_time")
    finished = datetime.now(UTC)
    elapsed = (finished - started).total_seconds() if started else 0.0
    failed = stat_keys.failures_by_reason(stats)
    fetched = stat_keys.count(stats, stat_keys.PRODUCTS)
    return {
        "_id": f"{spider}-{finished:%Y%m%dT%H%M%S.%fZ}-{os.getpid()}", "spider": spider,
        "started_at": started, "finished_at": finished, "finish_reason": reason,
        "fetched": fetched, "failed": sum(failed.values()), "failed_by_reason": failed,
        "fresh": stat_keys.count(stats, stat_keys.FRESH), "unavailable": stat_keys.count(stats, stat_keys.UNAVAILABLE),
        "retried": stat_keys.count(stats, stat_keys.RETRY_COUNT),
        "searches": stat_keys.count(stats, stat_keys.SEARCHES),
        "unchanged": stat_keys.count(stats, stat_keys.UNCHANGED),  # detail calls saved by change detection
        "token_refreshes": stat_keys.count(stats, stat_keys.TOKEN_REFRESH),
        "changed": stat_keys.count(stats, stat_keys.MONGO_HISTORY_WRITTEN),
        "elapsed_seconds": round(elapsed, 3), "products_per_second": round(fetched / elapsed, 2) if elapsed else 0.0,
        "latency": stat_keys.latency_figures(stats),
        "shape": stat_keys.shape_counts(stats),
        "quota": quota,
    }
