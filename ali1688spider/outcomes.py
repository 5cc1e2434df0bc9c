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
from typing import Any

logger = logging.getLogger(__name__)

#: Sent with ``failure=FailureRecord`` whenever an input could not become a product.
failure_recorded = object()
#: Sent with ``keys=[...]`` (product ids and failure keys) once their documents are stored.
documents_stored = object()

FATAL_STAT = "ali1688/fatal"
FATAL_REASON = "ali1688_fatal"
MAX_KEY = 1000  # an input that is not an id is recorded under its first 1,000 characters


@dataclass
class FailureRecord:
    """One input that could not become a product."""

    key: str  # the offer id, or the raw input text for a reference that is not an id
    reason: str  # invalid_reference | business_failure | gave_up | invalid_item | download_error | …
    message: str = ""
    error_code: str | None = None
    offer_id: str | None = None
    api: str | None = None
    attempts: int = 0
    field: str | None = None  # the field that failed validation
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["_id"] = doc.pop("key")
        return doc


def record_failure(crawler: Any, failure: FailureRecord) -> None:
    """Count the failure, log it in one line and hand it to every sink."""
    crawler.stats.inc_value(f"ali1688/failed/{failure.reason}")
    code = f" [{failure.error_code}]" if failure.error_code else ""
    logger.warning("failed %s: %s%s %s", failure.key, failure.reason, code, failure.message)
    crawler.signals.send_catch_log(signal=failure_recorded, failure=failure)


def fatal_stop(crawler: Any, code: str, message: str) -> None:
    """Stop the crawl at once for an error nothing will heal; log one line that says what to fix.

    The first call wins; the ``crawl`` command turns the stop into a non-zero exit status.
    """
    stats = crawler.stats
    if stats.get_value(FATAL_STAT):
        return
    stats.set_value(FATAL_STAT, code)
    logger.error("stopping the crawl: %s", message)
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        # keep a reference: the event loop holds tasks only weakly
        crawler.ali1688_stop_task = asyncio.ensure_future(engine.close_spider_async(reason=FATAL_REASON))


def is_stopping(crawler: Any) -> bool:
    return bool(crawler.stats.get_value(FATAL_STAT))
