"""``scrapy crawl follow``: ask 1688 to send change messages for these offers (or to stop).

    scrapy crawl follow -a ids_file=ids.txt                 # one id or offer URL per line
    scrapy crawl follow -a ids=610784549587,626644646828 -a unfollow=true
    scrapy crawl follow -a ids_file=ids.txt -a api=pushed   # 20 offers per call

``api`` names the relation API (docs/PROTOCOL.md, "Getting messages for a product"): ``follow``
(``alibaba.product.follow``, the default), ``crossborder`` (``…follow.crossborder``),
``relation`` (``product.kjdistribute.addRelation``), ``pushed`` (``alibaba.cross.syncProductListPushed``,
lists of 20) or ``fenxiao`` (``alibaba.fenxiao.relationadd``). ``unfollow=true`` uses the API's
counterpart (``unfollow.crossborder`` or ``removeRelation``). Each offer followed is written to
``follows``; each refusal is a failure of its own (``_id`` ``follow:<offer id>``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from .. import stat_keys
from ..aop.classify import Outcome
from ..aop.errors import InvalidOfferRef
from ..aop.messages import FOLLOW_APIS, FollowApi
from ..aop.refs import parse_offer_ref
from ..config import GatewayConfig
from ..gateway.call import BATCH, META, RESULT, attempts_of, call_request
from ..inputs import SeenIds, count_given, given_references
from ..outcomes import FailureReason, FailureRecord, is_stopping, record_failure
from ..store.follows import Follow
from .callbacks import ProductCallbacks, wait_for_room
from .searching import yes_no


class FollowSpider(ProductCallbacks, scrapy.Spider):
    name = "follow"

    def __init__(self, ids: str | None = None, ids_file: str | None = None, unfollow: str = "false",
                 api: str = "follow", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ids, self.ids_file, self.unfollow = ids, ids_file, False
        self.api: FollowApi = FOLLOW_APIS["follow"]
        try:
            if not ids and not ids_file:
                raise ValueError("give offer ids: -a ids=ID,URL,… or -a ids_file=FILE")
            if ids_file and not Path(ids_file).is_file():
                raise ValueError(f"ids_file {ids_file!r} does not exist")
            if api not in FOLLOW_APIS:
                raise ValueError(f"api must be one of {', '.join(FOLLOW_APIS)}, got {api[:40]!r}")
            self.api = FOLLOW_APIS[api]
            self.unfollow = yes_no("unfollow", unfollow)
            if self.unfollow and self.api.unfollow is None:
                raise ValueError(f"api={api} cannot unfollow: use api=follow, crossborder or relation")
        except ValueError as exc:
            self.argument_error = str(exc)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.refused_arguments():
            return
        stats = self.crawler.stats
        stats.set_value(stat_keys.INPUT_TOTAL, count_given(self.ids, self.ids_file))
        config = GatewayConfig.from_settings(self.crawler.settings)
        buffered = 2 * self.crawler.settings.getint("CONCURRENT_REQUESTS")
        seen = SeenIds()
        batch: list[str] = []
        for ref in given_references(self.ids, self.ids_file):
            stats.inc_value(stat_keys.INPUT_READ)
            try:
                offer_id = parse_offer_ref(ref)
            except InvalidOfferRef as exc:
                record_failure(self.crawler, FailureRecord(key=ref, reason=FailureReason.INVALID_REFERENCE,
                                                           message=str(exc)))
                continue
            if not seen.add(offer_id):
                stats.inc_value(stat_keys.INPUT_DUPLICATE)
                continue
            batch.append(offer_id)
            if len(batch) >= self.api.batch:
                await wait_for_room(self.crawler, buffered)
                if is_stopping(self.crawler):
                    return
                yield self._request(config, batch)
                batch = []
        if batch:
            yield self._request(config, batch)

    def _request(self, config: GatewayConfig, offer_ids: list[str]) -> scrapy.Request:
        spec = self.api.unfollow if self.unfollow and self.api.unfollow else self.api.follow
        key = f"follow:{offer_ids[0]}" if len(offer_ids) == 1 else f"follow:{offer_ids[0]}+{len(offer_ids) - 1}"
        return call_request(spec, config.gateway_url, config.app_key, self.api.params(offer_ids), key=key,
                            callback=self.parse_follow, errback=self.follow_error, dont_filter=True,
                            meta={BATCH: offer_ids})

    def parse_follow(self, response: Response) -> Iterator[Any]:
        call, result = response.meta[META], response.meta.get(RESULT)
        offer_ids: list[str] = response.meta[BATCH]
        if result is None or result.outcome is not Outcome.OK:
            for offer_id in offer_ids:
                self.fail_reply({**call, "offer_id": offer_id}, result, attempts_of(response.request))
            return
        self.crawler.stats.inc_value(stat_keys.UNFOLLOWED if self.unfollow else stat_keys.FOLLOWED, len(offer_ids))
        yield Follow(offer_ids=offer_ids, followed=not self.unfollow, api=call["api"], at=datetime.now(UTC))

    def follow_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        if request is None or is_stopping(self.crawler):
            return
        call, error = request.meta[META], failure.value
        for offer_id in request.meta[BATCH]:
            self.fail_call({**call, "offer_id": offer_id}, FailureReason.DOWNLOAD_ERROR, attempts_of(request),
                           type(error).__name__, str(error)[:200])

    def fail_call(self, call: dict[str, Any], reason: str, attempts: int, code: str | None, message: str,
                  field: str | None = None, gone: bool = False) -> None:
        """A refusal is the offer's follow failure (``follow:<id>``), not a failure of its product."""
        offer_id = call["offer_id"]
        record_failure(self.crawler, FailureRecord(
            key=f"follow:{offer_id}", offer_id=offer_id, reason=reason, error_code=code, message=message,
            api=call["api"], attempts=attempts,
        ))
