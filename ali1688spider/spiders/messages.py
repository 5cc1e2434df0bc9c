"""``scrapy crawl messages``: catch up on the change messages the push could not deliver.

    scrapy crawl messages               # every message 1688 still holds for the app
    scrapy crawl messages -a since=6h   # those born in the last 6 hours (30m, 2d, …)

Reads ``push.query.messageList`` page by page. Each message goes through the same inbox as a
pushed one (messages/inbox.py: stored in ``messages``, applied, its offers queued for the
``product_redis`` workers), and is confirmed (``push.message.confirm``) only once that is done.
Confirmed messages leave the list, so the next read starts at page 1 again; a page holding only
messages that cannot be confirmed (no ``msgId``) is stepped over. MongoDB or Redis failing stops
the run before anything more is confirmed: what was not confirmed is delivered again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import scrapy
from scrapy import signals
from scrapy.http import Response

from .. import config, stat_keys
from ..aop.classify import Outcome
from ..aop.messages import (
    MAX_PAGE_SIZE,
    MESSAGE_CONFIRM,
    MESSAGE_LIST,
    MalformedMessage,
    confirm_params,
    list_params,
    read_message,
    replay_entries,
)
from ..aop.text import storable_text
from ..cluster import async_redis
from ..cluster.leases import LeaseQueue
from ..config import GatewayConfig, parse_duration
from ..gateway.call import BATCH, META, PAGE, RESULT, attempts_of, call_request
from ..inputs import queue_key
from ..messages.inbox import Inbox
from ..outcomes import fatal_stop, is_stopping
from ..store.messages import MessageStore
from ..store.mongo import StorageError
from .callbacks import ProductCallbacks

logger = logging.getLogger(__name__)
MAX_LOGGED = 20


class MessagesSpider(ProductCallbacks, scrapy.Spider):
    name = "messages"

    def __init__(self, since: str | None = None, page_size: str = str(MAX_PAGE_SIZE), *args: Any, **kwargs: Any,
                 ) -> None:
        super().__init__(*args, **kwargs)
        self.since: datetime | None = None
        self.page_size = MAX_PAGE_SIZE
        try:
            if since:
                self.since = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
            text = str(page_size).strip()
            if not (text.isdigit() and 20 <= int(text) <= MAX_PAGE_SIZE):
                raise ValueError(f"page_size must be a whole number within 20..{MAX_PAGE_SIZE}, got {text[:20]!r}")
            self.page_size = int(text)
        except ValueError as exc:
            self.argument_error = str(exc)
        self.inbox: Inbox | None = None
        self.confirmed: set[str] = set()
        self.logged = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.refused_arguments():
            return
        settings = self.crawler.settings
        store = MessageStore.from_settings(settings)
        queue = LeaseQueue(async_redis(settings), queue_key(config.REDIS_START_URLS_KEY.get(settings)))
        self.inbox = Inbox(store, queue)
        self.crawler.signals.connect(self.on_closed, signal=signals.spider_closed)
        try:
            await store.open()
        except StorageError as exc:
            fatal_stop(self.crawler, "mongo_unreachable", f"{exc} (set MONGO_URI)")
            return
        self.gateway = GatewayConfig.from_settings(settings)
        yield self._page(1)

    def _page(self, page: int) -> scrapy.Request:
        return call_request(MESSAGE_LIST, self.gateway.gateway_url, self.gateway.app_key,
                            list_params(page, self.page_size, self.since), key=f"messages:page:{page}",
                            callback=self.parse_page, errback=self.on_error, dont_filter=True, meta={PAGE: page})

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        call, result, page = response.meta[META], response.meta.get(RESULT), response.meta[PAGE]
        if result is None or result.outcome is not Outcome.OK:
            self.fail_reply(call, result, attempts_of(response.request))
            return
        entries = replay_entries(result.payload)
        if not entries:
            logger.info("no more messages to catch up on (page %d empty)", page)
            return
        stats = self.crawler.stats
        accepted: list[str] = []
        for entry in entries:
            stats.inc_value(stat_keys.MESSAGES_READ)
            try:
                message = read_message(entry)
            except MalformedMessage as exc:
                stats.inc_value(stat_keys.MESSAGES_MALFORMED)
                self._log("a replayed entry is no message (%s): %s", exc, storable_text(str(entry))[:200])
                continue
            if message.msg_id in self.confirmed:  # confirmed already, listed again
                continue
            assert self.inbox is not None
            try:
                receipt = await self.inbox.accept(message, via="replay")
            except Exception as exc:  # MongoDB or Redis: stop; what is not confirmed is delivered again
                fatal_stop(self.crawler, "storage", f"message {message.msg_id} could not be stored "
                           f"({type(exc).__name__}: {storable_text(str(exc))[:200]}); it stays at 1688")
                break
            stats.inc_value(stat_keys.MESSAGES_DUPLICATE if receipt.duplicate else stat_keys.MESSAGES_ACCEPTED)
            stats.inc_value(stat_keys.MESSAGES_QUEUED, len(receipt.queued))
            self._log("message %s %s: %s", message.msg_id, receipt.meaning.reason.removeprefix("message:"),
                      receipt.summary())
            accepted.append(message.msg_id)
        if is_stopping(self.crawler):
            return
        if accepted:
            gateway = self.gateway
            yield call_request(MESSAGE_CONFIRM, gateway.gateway_url, gateway.app_key, confirm_params(accepted),
                               key=f"messages:confirm:{accepted[0]}", callback=self.parse_confirm,
                               errback=self.on_error, dont_filter=True, meta={PAGE: page, BATCH: accepted})
        else:  # nothing here can leave the list: read past it
            yield self._page(page + 1)

    def parse_confirm(self, response: Response) -> Any:
        call, result = response.meta[META], response.meta.get(RESULT)
        if result is None or result.outcome is not Outcome.OK:
            self.fail_reply(call, result, attempts_of(response.request))
            return None
        msg_ids = response.meta[BATCH]
        self.confirmed.update(msg_ids)
        self.crawler.stats.inc_value(stat_keys.MESSAGES_CONFIRMED, len(msg_ids))
        return self._page(response.meta[PAGE])  # confirmed messages left the list: the same page again

    def _log(self, text: str, *args: Any) -> None:
        if self.logged < MAX_LOGGED:
            logger.info(text, *args)
        elif self.logged == MAX_LOGGED:
            logger.info("… more messages: see the stats and the messages collection")
        self.logged += 1

    async def on_closed(self) -> None:
        if self.inbox is not None:
            await self.inbox.store.close()
            await self.inbox.queue.redis.aclose()
