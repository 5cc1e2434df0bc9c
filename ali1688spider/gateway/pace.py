"""The adaptive quota in a crawl: where it starts, how it is judged, what it shows and remembers.

When the crawl opens, :class:`Pace` reads the rate learned for the app key (MongoDB, collection
``quotas``) and starts the quota there (or from ``ALI1688_QPS_START``, or at the ceiling); every
:data:`TICK` seconds it lets the rule judge the seconds that are complete and puts the rate in
the stats; whenever the learned rate changed (and when the crawl closes) it writes it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scrapy.crawler import Crawler

from .. import config, stat_keys
from ..config import GatewayConfig
from ..store.rates import RateMemory
from .adaptive import AdaptiveQuota

logger = logging.getLogger(__name__)

TICK = 0.2  # seconds between judgements
REMEMBER_EVERY = 30.0  # seconds between writes of a changed learned rate
RECALL_TIMEOUT_MS = 2000  # the learned rate is worth waiting this long for, not more
COMPLAIN_EVERY = 60.0  # seconds between two warnings about the shared state (Redis) failing


class Pace:
    def __init__(self, crawler: Crawler, quota: AdaptiveQuota, gateway: GatewayConfig) -> None:
        self.crawler = crawler
        self.stats: Any = crawler.stats
        self.quota = quota
        self.app_key = gateway.app_key or "-"
        self.ceiling = gateway.qps or 0.0
        self.memory: RateMemory | None = None
        self._task: asyncio.Task[None] | None = None
        self._remembered: tuple[float, int] | None = None
        self._remembered_at = 0.0
        self._complained_at = -COMPLAIN_EVERY

    async def start(self) -> None:
        settings = self.crawler.settings
        rule = self.quota.rule
        learned = None
        try:
            self.memory = RateMemory(config.MONGO_URI.get(settings), config.MONGO_DATABASE.get(settings),
                                     timeout_ms=min(RECALL_TIMEOUT_MS, config.MONGO_TIMEOUT_MS.get(settings)))
            learned = await asyncio.to_thread(self.memory.recall, self.app_key)
        except Exception as exc:  # no MongoDB: the crawl starts from the start rate (the store says why)
            logger.warning("the learned call rate could not be read (%s); starting without it", exc)
        initial = rule.initial(*learned) if learned else rule.initial()
        await self.quota.start(initial)
        state = self.quota.state
        self._remembered = (state.learned, state.found) if learned else None
        mode = "ceiling" if self.ceiling else "auto"
        self.stats.set_value(stat_keys.QUOTA_MODE, mode)
        if self.ceiling:
            self.stats.set_value(stat_keys.QUOTA_CEILING, self.ceiling)
        self.stats.set_value(stat_keys.QUOTA_START, state.rate)
        self._show()
        source = (f"the rate learned before ({learned[0]:g} calls/s{'' if learned[1] else ', not yet bounded'})"
                  if learned else config.QPS.name if self.ceiling else config.QPS_START.name)
        kind = f"at most {self.ceiling:g} calls/s" if self.ceiling else "found while crawling"
        logger.info("quota: %s, starting at %g calls/s from %s", kind, state.rate, source)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            await self._tick()

    async def _tick(self) -> None:
        try:
            await self.quota.tick()
        except Exception as exc:  # the shared state is away: the pacer keeps the last rate
            now = time.monotonic()
            if now - self._complained_at >= COMPLAIN_EVERY:
                self._complained_at = now
                logger.warning("the call rate could not be judged: %s: %s", type(exc).__name__, exc)
            return
        self._show()
        state = self.quota.state
        if (state.learned > 0 and (state.learned, state.found) != self._remembered
                and time.monotonic() - self._remembered_at >= REMEMBER_EVERY):
            await self._remember()

    def _show(self) -> None:
        state = self.quota.state
        self.stats.set_value(stat_keys.QUOTA_RATE, state.rate)
        self.stats.set_value(stat_keys.QUOTA_LEARNED, state.learned)
        self.stats.set_value(stat_keys.QUOTA_FOUND, state.found)
        self.stats.set_value(stat_keys.QUOTA_CUTS, self.quota.cut)
        self.stats.set_value(stat_keys.QUOTA_RAISES, self.quota.raised)

    async def _remember(self) -> None:
        state = self.quota.state
        self._remembered_at = time.monotonic()
        if self.memory is None or state.learned <= 0:
            return
        try:
            await asyncio.to_thread(self.memory.remember, self.app_key, state.learned, bool(state.found),
                                    self.ceiling)
            self._remembered = (state.learned, state.found)
        except Exception as exc:
            logger.warning("the learned call rate could not be stored: %s", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            await self._tick()
            if self._remembered != (self.quota.state.learned, self.quota.state.found):
                await self._remember()
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        await self.quota.close()

    def report(self) -> dict[str, Any]:
        """The quota's part of the ``runs`` document, with the chart of this process's calls."""
        state = self.quota.state
        return {"mode": "ceiling" if self.ceiling else "auto", "ceiling": self.ceiling,
                "start_rate": self.stats.get_value(stat_keys.QUOTA_START), "rate": state.rate,
                "learned": state.learned, "found": bool(state.found), "cuts": self.quota.cut,
                "raises": self.quota.raised, "series": self.quota.flush_series().points}
