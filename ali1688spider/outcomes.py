"""Where an input ends when it does not become a product, and how a crawl stops for good.

Failures travel on a Scrapy signal, not as items, so that bad input lines found in
``start()`` are recorded without yielding items from it; every sink (MongoDB, the summary)
listens to the one signal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from weakref import WeakKeyDictionary

from . import config, stat_keys
from .aop.text import storable_text

logger = logging.getLogger(__name__)

#: Sent with ``failure=FailureRecord`` whenever an input could not become a product.
failure_recorded = object()
#: Sent with ``keys=[...]`` (product ids and failure keys) once their documents are stored.
documents_stored = object()

FATAL_REASON = "ali1688_fatal"  # the spider's close reason after a fatal stop
MAX_KEY = 1000  # an input that is not an id is recorded under its first 1,000 characters
MAX_MESSAGE = 2000  # a failure's message is cut there (a gateway may say a lot)


def failure_key(text: str, secrets: tuple[str, ...] = ()) -> str:
    """The ``_id`` of the failure of an input that is no offer id: its storable text with every
    configured secret masked, cut at ``MAX_KEY`` characters. Whoever waits for that document (a
    queue entry's ack) makes it the same way (:func:`input_key`)."""
    return storable_text(config.mask_secrets(text, secrets))[:MAX_KEY]


def secrets_of(crawler: Any) -> tuple[str, ...]:
    """The crawl's configured secrets (config.secret_values), read once per crawler."""
    secrets = _secrets.get(crawler)
    if secrets is None:
        secrets = _secrets[crawler] = config.secret_values(crawler.settings)
    return secrets


def input_key(crawler: Any, text: str) -> str:
    """The failure ``_id`` that :func:`record_failure` gives an input that is no offer id."""
    return failure_key(text, secrets_of(crawler))


_secrets: WeakKeyDictionary[Any, tuple[str, ...]] = WeakKeyDictionary()


class FailureReason(StrEnum):
    """Why an input did not become a product: the ``reason`` of a ``failures`` document and the
    last part of its ``ali1688/failed/…`` stat."""

    INVALID_REFERENCE = "invalid_reference"  # the input is no offer id or offer URL: never sent
    BUSINESS_FAILURE = "business_failure"  # the API answered that it has no such offer (or said no)
    GAVE_UP = "gave_up"  # throttled or failing until the retries ran out
    DOWNLOAD_ERROR = "download_error"  # the call could not be made (a connection error after retries)
    UNKNOWN_ERROR = "unknown_error"  # a gateway error code the classifier does not know
    UNREADABLE_PRODUCT = "unreadable_product"  # a reply of a shape the normaliser cannot read
    INVALID_ITEM = "invalid_item"  # a product that failed validation
    UNSTORABLE_PRODUCT = "unstorable_product"  # a product MongoDB cannot hold
    WORKER_LOST = "worker_lost"  # a queue entry whose workers kept dying


@dataclass
class FailureRecord:
    """One input that could not become a product."""

    key: str  # the offer id, or the raw input text for a reference that is not an id
    reason: FailureReason
    message: str = ""
    error_code: str | None = None
    offer_id: str | None = None
    api: str | None = None
    attempts: int = 0
    field: str | None = None  # the field that failed validation
    gone: bool = False  # the API says the offer does not exist (any more): a stored product is kept, unavailable
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    masked: bool = dataclasses.field(default=False, repr=False)

    def mask(self, secrets: tuple[str, ...]) -> None:
        """Make every text storable, with ``secrets`` masked (an input line may hold a credential),
        and cut to size: whatever an input or a gateway put in them, the record can be logged and
        stored. :func:`record_failure` does it before any sink sees the record."""
        self.masked = True
        self.key = failure_key(self.key, secrets)
        self.message = storable_text(config.mask_secrets(self.message, secrets))[:MAX_MESSAGE]
        for name in ("error_code", "offer_id", "api", "field"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, storable_text(config.mask_secrets(value, secrets))[:MAX_KEY])

    def to_document(self) -> dict[str, Any]:
        if not self.masked:
            self.mask(())
        doc = asdict(self)
        del doc["masked"]
        doc["_id"] = doc.pop("key")
        doc["reason"] = str(self.reason)
        return doc


def record_failure(crawler: Any, failure: FailureRecord) -> None:
    """Count the failure, log it in one line and hand it to every sink (secrets masked)."""
    failure.mask(secrets_of(crawler))
    crawler.stats.inc_value(stat_keys.failed(failure.reason))
    code = f" [{failure.error_code}]" if failure.error_code else ""
    logger.warning("failed %s: %s%s %s", failure.key, failure.reason, code, failure.message)
    crawler.signals.send_catch_log(signal=failure_recorded, failure=failure)


def fatal_stop(crawler: Any, code: str, message: str) -> None:
    """Stop the crawl at once for an error nothing will heal; log one line that says what to fix.

    The first call wins; the ``crawl`` command turns the stop into a non-zero exit status.
    """
    stats = crawler.stats
    if stats.get_value(stat_keys.FATAL):
        return
    stats.set_value(stat_keys.FATAL, code)
    logger.error("stopping the crawl: %s", message)
    _close(crawler, FATAL_REASON)


def stop_cleanly(crawler: Any, reason: str, message: str) -> None:
    """Stop the crawl early for a reason that is no error (the day's call budget is spent): one
    line, the close reason ``reason``, exit status 0. Calls in flight end; inputs not done are
    neither products nor failures: the next run takes them (a queue's leases are given back)."""
    if is_stopping(crawler):
        return
    crawler.stats.set_value(stat_keys.STOPPED, reason)
    logger.warning("stopping the crawl: %s", message)
    _close(crawler, reason)


def _close(crawler: Any, reason: str) -> None:
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        task = asyncio.ensure_future(engine.close_spider_async(reason=reason))
        _closing.add(task)  # the event loop holds tasks only weakly
        task.add_done_callback(_closing.discard)


def is_stopping(crawler: Any) -> bool:
    return bool(crawler.stats.get_value(stat_keys.FATAL) or crawler.stats.get_value(stat_keys.STOPPED))


_closing: set[asyncio.Task[Any]] = set()
