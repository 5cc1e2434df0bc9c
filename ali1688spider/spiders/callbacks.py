"""What both product spiders share: turning gateway replies into products or failures, refusing
bad spider arguments in one line, and feeding the scheduler lazily (Scrapy reads ``start()`` as
fast as it yields)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from scrapy.http import Response
from twisted.python.failure import Failure

from .. import stat_keys
from ..aop.classify import Outcome
from ..aop.normalize import NormalizationError, normalize
from ..aop.product import Product, known_status
from ..aop.text import storable_text
from ..gateway.call import META, RESULT, attempts_of
from ..monitoring.shapes import ShapeWatch
from ..outcomes import FailureReason, FailureRecord, fatal_stop, is_stopping, record_failure
from ..store.fields import Selection

logger = logging.getLogger(__name__)
MAX_LOGGED_STATUSES = 50


async def wait_for_room(crawler: Any, buffered: int) -> None:
    """Hold ``start()`` while the scheduler already has ``buffered`` requests waiting, so a
    million-line input is streamed, never queued in memory at once."""
    stats = crawler.stats
    while True:
        waiting = (stats.get_value("scheduler/enqueued", 0) or 0) - (stats.get_value("scheduler/dequeued", 0) or 0)
        if waiting < buffered or is_stopping(crawler):
            return
        await asyncio.sleep(0.01)


def _other_offer(product: Product, asked: str) -> str | None:
    """The offer the reply is about when it is not the one ``asked`` for, else None. Asked by an
    encrypted id (``openOfferId``), the reply may name the offer by its id, by the encrypted id
    or both; the encrypted id is kept on the product."""
    if asked.isdigit():
        return product.product_id if product.product_id != asked else None
    sent = product.open_offer_id or asked
    if sent != asked or (not product.product_id.isdigit() and product.product_id != asked):
        return sent if sent != asked else product.product_id
    product.open_offer_id = asked
    return None


class ProductCallbacks:
    """Callbacks of gateway calls: a Product item, or a failure record for the call's input."""

    crawler: Any
    argument_error: str | None = None  # a spider argument the spider refused in __init__
    selection: Selection | None = None  # -a fields=…: what is kept of each product (store/fields.py)

    def refused_arguments(self) -> bool:
        """Stop the crawl at once (one line, ``scrapy crawl`` exits 2) when an argument was refused."""
        if self.argument_error is None:
            return False
        fatal_stop(self.crawler, "arguments", f"{self.argument_error} (a spider argument, -a NAME=value)")
        return True

    def parse_product(self, response: Response) -> Iterator[Any]:
        call = response.meta[META]
        result = response.meta.get(RESULT)
        attempts = attempts_of(response.request) if response.request else 1
        if result is None or result.outcome is not Outcome.OK:
            self.fail_reply(call, result, attempts, gone=bool(result and result.gone))
            return
        try:
            options = call.get("options", {})
            product = normalize(call["api"], result.payload, language=options.get("country"),
                                currency=options.get("currency"))
        except NormalizationError as exc:
            self.fail_call(call, FailureReason.UNREADABLE_PRODUCT, attempts, None, str(exc), field=exc.field)
            return
        except Exception as exc:  # a reply of a shape no rule foresaw: recorded, never a lost id
            self.fail_call(call, FailureReason.UNREADABLE_PRODUCT, attempts, type(exc).__name__, str(exc)[:200])
            return
        mismatch = _other_offer(product, call["offer_id"])
        if mismatch:
            self.fail_call(call, FailureReason.UNREADABLE_PRODUCT, attempts, None,
                           f"the reply is about offer {storable_text(mismatch)[:80]}, not the one asked for")
            return
        product.changed_by = call.get("changed_by")
        if not known_status(product.status):
            self._unknown_status(product.status or "")
        self._shapes().see(call["api"], result.payload)
        yield product  # counted as ali1688/products once ValidationPipeline accepts it

    def _shapes(self) -> ShapeWatch:
        watch = self.__dict__.get("_shape_watch")
        if watch is None:
            watch = self.__dict__["_shape_watch"] = ShapeWatch(self.crawler.stats)
        return watch  # type: ignore[no-any-return]

    def _unknown_status(self, status: str) -> None:
        """A status 1688 documents nowhere: counted, logged once per value (at most 50 values);
        the offer counts as for sale and its status is stored as sent."""
        self.crawler.stats.inc_value(stat_keys.STATUS_UNKNOWN)
        seen = self.__dict__.setdefault("_unknown_statuses", set())
        if status not in seen and len(seen) < MAX_LOGGED_STATUSES:
            seen.add(status)
            logger.warning("an offer status no rule knows: %r (stored as sent, counted as for sale; "
                           "stat %s)", storable_text(status)[:80], stat_keys.STATUS_UNKNOWN)

    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        call = request.meta.get(META) if request is not None else None
        if call is None or is_stopping(self.crawler):
            return  # a stopped crawl is not the input's fault: the next run takes it again
        error = failure.value
        self.fail_call(call, FailureReason.DOWNLOAD_ERROR, attempts_of(request), type(error).__name__, str(error)[:200])

    def fail_reply(self, call: dict[str, Any], result: Any, attempts: int, gone: bool = False) -> None:
        """The failure of a call the gateway did not answer with its payload (``result``: the
        reply's Classification, None when there is none): a business failure, an unknown error,
        else given up after retries."""
        reason = FailureReason.GAVE_UP
        if result is not None and result.outcome is Outcome.BUSINESS:
            reason = FailureReason.BUSINESS_FAILURE
        elif result is not None and result.outcome is Outcome.UNKNOWN:
            reason = FailureReason.UNKNOWN_ERROR
        self.fail_call(call, reason, attempts, result.error_code if result else None,
                       result.message if result else "no classification", gone=gone)

    def fail_call(self, call: dict[str, Any], reason: str, attempts: int, code: str | None, message: str,
                  field: str | None = None, gone: bool = False) -> None:
        record_failure(self.crawler, FailureRecord(
            key=call["offer_id"], offer_id=call["offer_id"], reason=reason, error_code=code, message=message,
            api=call["api"], attempts=attempts, field=field, gone=gone,
        ))
