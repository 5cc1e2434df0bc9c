"""``scrapy crawl product_redis``: many workers share one Redis queue of offers.

Push ids, offer URLs or JSON objects ``{"id": "…", "api": "…", "country": "…"}`` to the list
``product_redis:start_urls`` (``REDIS_START_URLS_KEY`` overrides it) on ``REDIS_URL``, e.g. with
``scrapy enqueue ids.txt``. Every worker leases entries from it (cluster/leases.py) and acks an
entry only once its product or failure is stored, so an entry of a worker that dies is taken up
by another. Workers share one token and one quota.

Offers a change message named (``python -m ali1688spider listen``, ``scrapy crawl messages``) wait
in ``KEY:urgent`` and are taken before the list; their entries carry the reason and the message,
are fetched however fresh their product is, and the product keeps them as ``changed_by``.

Searches can be queued too: ``{"search": "保温杯", "country": "en", "max_results": 500}``,
``{"shop": "SELLER_OPEN_ID", …}`` or ``{"image": "https://…", …}`` with the options of
``scrapy crawl search``. A worker runs the search (its hits go to ``listings``), queues the offers
it found that changed since stored as product entries, and acks the search's entry once its
``searches`` document is stored. With ``MAX_IDLE_TIME_BEFORE_CLOSE`` set a
worker ends after that many seconds with nothing queued or leased anywhere, else it waits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import scrapy
from redis.exceptions import RedisError
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy_redis.spiders import RedisSpider

from .. import config, stat_keys
from ..aop.apis import ApiSpec, product_api
from ..aop.refs import parse_offer_ref
from ..aop.search import Listing
from ..cluster import async_redis, redis_url
from ..cluster.leases import LeaseQueue
from ..config import GatewayConfig, redact_uri
from ..gateway.call import META, api_request
from ..inputs import (
    NOT_A_REFERENCE,
    QUEUE_SPIDER,
    entry_text,
    language,
    parse_queue_entry,
    parse_search_entry,
    queued_by,
)
from ..outcomes import FailureReason, FailureRecord, documents_stored, input_key, is_stopping, record_failure
from ..store.fields import Selection
from ..store.freshness import FreshnessFilter, ListingChanges
from .callbacks import ProductCallbacks, wait_for_room
from .searching import Search, SearchCallbacks, make_search, search_id

logger = logging.getLogger(__name__)
MESSAGE_PRIORITY = 10  # Scrapy request priority of an offer a change message named
#: A fetch stored this long after a message's birth was sent after it (a reply takes well under
#: this; it also absorbs a small skew between 1688's clock and ours).
MESSAGE_SETTLE = timedelta(seconds=5)

class ProductRedisSpider(SearchCallbacks, ProductCallbacks, RedisSpider):
    name = QUEUE_SPIDER
    custom_settings: ClassVar[dict[str, Any]] = {config.SHARED_STATE.name: True}

    def __init__(self, api: str = "product.get", country: str = "en", fields: str | None = None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_api: ApiSpec = product_api("product.get")
        self.default_country = "en"
        try:  # a refused argument stops the crawl in start(): one line, exit 2 (raising here is a traceback)
            self.default_api, self.default_country = product_api(api), language(country)
            self.selection = Selection.parse(fields) if fields is not None else None
        except ValueError as exc:
            self.argument_error = str(exc)
        self._held: dict[str, set[bytes]] = {}  # input key → queue entries leased for it
        self._dead: set[bytes] = set()  # held entries to set aside (not ack) once their failure is stored
        self._alone: bytes | None = None  # a suspect in flight: nothing else is taken until it is done
        self._acks: set[asyncio.Task[None]] = set()
        self._redis_down_since: float | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._searches = itertools.count(1)
        self._lost: set[str] = set()  # searches whose found offers could not all be queued
        self.changes: ListingChanges | None = None  # opened by the first queued search or message

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ProductRedisSpider:
        spider: ProductRedisSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.queue = LeaseQueue(async_redis(settings), spider.redis_key,
                                  config.LEASE_SECONDS.get(settings), config.QUEUE_MAX_RECLAIMS.get(settings))
        spider.poll_seconds = config.QUEUE_POLL_SECONDS.get(settings)
        spider.max_idle_time = config.MAX_IDLE_TIME_BEFORE_CLOSE.get(settings)  # also from the environment
        if spider.redis_batch_size < 1:  # LRANGE 0 -1 would lease the whole queue to one worker
            spider.argument_error = f"redis_batch_size must be ≥ 1, got {spider.redis_batch_size}"
        spider.freshness = FreshnessFilter.from_crawler(crawler)
        crawler.signals.connect(spider.on_stored, signal=documents_stored)
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        return spider

    def spider_idle(self) -> None:
        """Closing is decided in ``start()``; never pop entries without a lease (as scrapy-redis does)."""

    # -- reading the queue ------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.refused_arguments():
            return
        config = self.gateway = GatewayConfig.from_settings(self.crawler.settings)
        buffered = 2 * self.crawler.settings.getint("CONCURRENT_REQUESTS")
        # renewed until on_closed: a stopping crawl (SIGINT, SIGTERM) still downloads and stores
        # what is in flight after start() has ended, and those entries must stay leased to it
        self._renewer = asyncio.ensure_future(self._renew_leases())
        idle_since: float | None = None
        while not is_stopping(self.crawler):
            await wait_for_room(self.crawler, buffered)
            try:
                entries = await self._next_entries()
                if not entries:
                    reclaimed, dead = await self.queue.reclaim()
                    self._set_aside(dead)
                    if reclaimed:
                        self.crawler.stats.inc_value(stat_keys.QUEUE_RECLAIMED, reclaimed)
                        logger.warning("took back %d entries whose worker stopped renewing them", reclaimed)
                    if reclaimed or dead:
                        continue
                    waiting, leased = await self.queue.pending()
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                await asyncio.sleep(self.poll_seconds)
                continue
            self._redis_ok()
            if entries:
                idle_since = None
                self.crawler.stats.inc_value(stat_keys.QUEUE_TAKEN, len(entries))
                searches: list[scrapy.Request] = []
                entries = [entry for entry in entries if not self._take_search(entry, searches)]
                for request in searches:
                    yield request
                calls = [call for call in map(self._parse, entries) if call is not None]
                origins = [queued_by(call[2]) for call in calls]  # the change message behind each, if any
                # an offer a change message names is fetched however fresh its stored product is,
                # unless it was fetched after the message was born
                fresh = await self._fresh([call[1] for call, why in zip(calls, origins, strict=True) if why is None])
                seen = await self._seen_after_message(
                    [(call[1], why) for call, why in zip(calls, origins, strict=True) if why is not None])
                for (entry, offer_id, text, api, country), why in zip(calls, origins, strict=True):
                    skip = (stat_keys.MESSAGE_SEEN if offer_id in seen else None) if why is not None else (
                        stat_keys.FRESH if offer_id in fresh else None)
                    request = self._request_for(config, entry, offer_id, text, api, country, skip, why)
                    if request is not None:
                        yield request
                continue
            if waiting == 0 and leased == 0 and not self._held:
                idle_since = idle_since or time.monotonic()
                if self.max_idle_time and time.monotonic() - idle_since >= self.max_idle_time:
                    logger.info("the queue %s is drained: closing", self.redis_key)
                    return
            else:
                idle_since = None
            await asyncio.sleep(self.poll_seconds)

    async def _next_entries(self) -> list[bytes]:
        """A batch from the queue; or, with nothing in flight, one suspect (an entry taken back
        from a worker that died), alone, so that if it kills this worker too no other entry is
        blamed. Nothing more is taken while that suspect is in flight."""
        if self._alone is not None:
            if any(self._alone in entries for entries in self._held.values()):
                return []
            self._alone = None
        if not self._held:
            entry = await self.queue.take_alone()
            if entry is not None:
                self._alone = entry
                return [entry]
        return await self.queue.take(self.redis_batch_size)

    # -- queued searches ---------------------------------------------------------------------

    def _take_search(self, entry: bytes, requests: list[scrapy.Request]) -> bool:
        """Whether the entry is a queued search; if so its first call is added to ``requests``
        (the entry held under the search id), or, when it cannot be a search, an
        ``invalid_reference`` failure is recorded (held under its text)."""
        text = entry_text(entry)
        try:
            asked = parse_search_entry(text)
            if asked is None:
                return False
            search = make_search(*asked, search_id(self.name, next(self._searches)))
        except (ValueError, RecursionError) as exc:
            self.crawler.stats.inc_value(stat_keys.INPUT_READ)
            key = input_key(self.crawler, text)
            self._hold(key, entry)
            record_failure(self.crawler, FailureRecord(key=key, reason=FailureReason.INVALID_REFERENCE,
                                                       message=str(exc)[:500]))
            return True
        self.crawler.stats.inc_value(stat_keys.INPUT_READ)
        self._hold(search.search_id, entry)
        requests.append(self.first_request(search))
        return True

    async def found(self, search: Search, listings: list[Listing]) -> AsyncIterator[Any]:
        """The offers found that changed since stored go to the queue as product entries."""
        if self.changes is None:
            self.changes = ListingChanges.from_crawler(self.crawler)
        stats = self.crawler.stats
        unchanged = await self.changes.unchanged({listing.offer_id: listing.modify_date for listing in listings})
        search.unchanged += len(unchanged)
        stats.inc_value(stat_keys.UNCHANGED, len(unchanged))
        entries = [json.dumps({"id": listing.offer_id, "api": search.detail_api.key, "country": search.query.country})
                   .encode() for listing in listings if listing.offer_id not in unchanged]
        try:
            await self.queue.push(entries)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            self._lost.add(search.search_id)  # its entry goes back to the queue: the search runs again
            entries = []
        search.fetched += len(entries)
        stats.inc_value(stat_keys.QUEUED, len(entries))
        # each hit given an outcome (unchanged, or queued) counts as taken, as its own entry will
        stats.inc_value(stat_keys.QUEUE_TAKEN, len(unchanged) + len(entries))
        return
        yield

    def search_ended(self, search: Search, reason: str) -> None:
        if search.search_id in self._lost:  # not acked: released, another worker runs it again
            self._lost.discard(search.search_id)
            held = list(self._held.pop(search.search_id, ()))
            task = asyncio.ensure_future(self.queue.release(held))
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)

    def _parse(self, entry: bytes) -> tuple[bytes, str, str, ApiSpec, str] | None:
        """(entry, offer id, text, api, country), or None for junk (recorded as a failure)."""
        text = entry_text(entry)
        self.crawler.stats.inc_value(stat_keys.INPUT_READ)
        try:
            ref, api, country = self._parse_entry(text)
            return entry, parse_offer_ref(ref, open_ids=api.open_ids), text, api, country
        except NOT_A_REFERENCE as exc:
            key = input_key(self.crawler, text)  # the failure's _id, and what its ack looks for
            self._hold(key, entry)
            message = str(exc) if not isinstance(exc, RecursionError) else "the entry is nested too deeply"
            record_failure(self.crawler, FailureRecord(
                key=key, reason=FailureReason.INVALID_REFERENCE, message=message[:500]))
            return None

    def _set_aside(self, dead: list[bytes]) -> None:
        """Entries whose workers kept dying: one failure each, held (leased) until it is stored,
        then moved to ``KEY:dead``. They count as taken by this worker, which gives them their
        outcome."""
        if dead:
            self.crawler.stats.inc_value(stat_keys.QUEUE_TAKEN, len(dead))
            self.crawler.stats.inc_value(stat_keys.QUEUE_DEAD, len(dead))
        for entry in dead:
            text = entry_text(entry)
            try:
                ref, api, _ = self._parse_entry(text)
                key = offer_id = parse_offer_ref(ref, open_ids=api.open_ids)
            except NOT_A_REFERENCE:
                key, offer_id = input_key(self.crawler, text), None
            self._hold(key, entry)
            self._dead.add(entry)
            record_failure(self.crawler, FailureRecord(
                key=key, offer_id=offer_id, reason=FailureReason.WORKER_LOST,
                message=f"taken back from {self.queue.max_reclaims + 1} workers that stopped before storing it; "
                        f"set aside in {self.queue.dead_key}",
            ))

    async def _fresh(self, offer_ids: list[str]) -> set[str]:
        if self.freshness is None or not offer_ids:
            return set()
        try:
            return await self.freshness.fresh(offer_ids)
        except Exception as exc:  # MongoDB: the pipeline reports it; fetch rather than lose the ids
            logger.warning("cannot check freshness (%s): fetching", exc)
            return set()

    async def _seen_after_message(self, named: list[tuple[str, dict[str, Any]]]) -> set[str]:
        """Of the offers named by change messages (offer id, ``queued_by``), those whose product
        was fetched ``MESSAGE_SETTLE`` after the (latest) message's birth: that fetch was sent
        after the change and read it. A message delivered late, or again after its offer was
        fetched, costs no call."""
        born: dict[str, datetime] = {}
        for offer_id, why in named:
            if why["born"] is not None:
                born[offer_id] = max(born.get(offer_id, why["born"]), why["born"])
        if not born:
            return set()
        if self.changes is None:
            self.changes = ListingChanges.from_crawler(self.crawler)
        try:
            return await self.changes.fetched_after({offer: when + MESSAGE_SETTLE for offer, when in born.items()})
        except Exception as exc:  # MongoDB: the pipeline reports it; fetch rather than miss a change
            logger.warning("cannot check when message-queued offers were fetched (%s): fetching", exc)
            return set()

    def _request_for(self, config: GatewayConfig, entry: bytes, offer_id: str, text: str, api: ApiSpec,
                     country: str, skip: str | None, why: dict[str, Any] | None) -> scrapy.Request | None:
        if skip is not None:  # its product in MongoDB is recent enough: nothing to fetch, nothing to wait for
            self.crawler.stats.inc_value(skip)
            self._ack_soon([entry])
            return None
        if offer_id in self._held:  # the same offer is already being fetched
            self._hold(offer_id, entry)
            self.crawler.stats.inc_value(stat_keys.INPUT_DUPLICATE)
            return None
        self._hold(offer_id, entry)
        options = {"country": country} if api.key == "crossborder" else {}
        request = api_request(api, config.gateway_url, config.app_key, offer_id, ref=text, options=options,
                              callback=self.parse_product, errback=self.on_error, dont_filter=True)
        if why is not None:  # queued by a change message: the product keeps it as changed_by
            self.crawler.stats.inc_value(stat_keys.MESSAGE_REFRESHES)
            request.meta[META]["changed_by"] = why
            request.priority = MESSAGE_PRIORITY  # ahead of bulk requests already in the scheduler
            if why["born"] is not None:
                self.crawler.stats.max_value(stat_keys.MESSAGE_MAX_WAIT,
                                             round((datetime.now(UTC) - why["born"]).total_seconds(), 1))
        return request

    def _parse_entry(self, text: str) -> tuple[str, ApiSpec, str]:
        return parse_queue_entry(text, self.default_api, self.default_country)

    def _hold(self, key: str, entry: bytes) -> None:
        self._held.setdefault(key, set()).add(entry)

    # -- acknowledging ----------------------------------------------------------------------

    def on_stored(self, keys: list[str]) -> None:
        self._ack_soon([entry for key in keys for entry in self._held.pop(key, ())])

    def _ack_soon(self, entries: list[bytes]) -> None:
        if entries:
            task = asyncio.ensure_future(self._ack(entries))
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)

    async def _ack(self, entries: list[bytes]) -> None:
        dead = [entry for entry in entries if entry in self._dead]
        done = [entry for entry in entries if entry not in self._dead]
        try:
            if dead:
                await self.queue.set_aside(dead)
                self._dead.difference_update(dead)
            await self.queue.ack(done)
            self.crawler.stats.inc_value(stat_keys.QUEUE_ACKED, len(done))
        except (RedisError, OSError) as exc:
            # the leases run out and the entries come back: their documents are upserted again
            self._redis_failed(exc)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.queue.lease_seconds / 3)
            held = [entry for entries in self._held.values() for entry in entries]
            try:
                await self.queue.renew(held)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)

    async def on_closed(self) -> None:
        """Wait for the last acks; entries still held (a stopped crawl) go back to the queue now."""
        if self._renewer is not None:
            self._renewer.cancel()
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        if self._held:
            # an entry to set aside whose failure is not stored stays leased: when the lease runs
            # out, the next worker sets it aside again (it must never go back to the queue)
            held = [entry for entries in self._held.values() for entry in entries if entry not in self._dead]
            try:
                returned = await self.queue.release(held)
                logger.info("returned %d unfinished entries to %s", returned, self.redis_key)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        await self.queue.redis.aclose()
        if self.freshness is not None:
            self.freshness.close()
        if self.changes is not None:
            self.changes.close()

    # -- Redis outages ----------------------------------------------------------------------

    def _redis_failed(self, exc: Exception) -> None:
        self.crawler.stats.inc_value(stat_keys.REDIS_ERRORS)
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            logger.error("Redis at %s cannot be reached (%s: %s): waiting for it; leased entries are kept",
                         redact_uri(redis_url(self.crawler.settings)), type(exc).__name__, exc)

    def _redis_ok(self) -> None:
        if self._redis_down_since is not None:
            logger.warning("Redis is back after %.1f s", time.monotonic() - self._redis_down_since)
            self._redis_down_since = None

