"""Progress for long runs and the end-of-run summary, both read from the crawl's stats."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from .. import config, stat_keys

logger = logging.getLogger(__name__)


def quota_text(stats: dict[str, Any], *, final: bool = False) -> str:
    """The adaptive quota in words: ``20 calls/s (the quota found: 20)``; "" without one."""
    mode = stats.get(stat_keys.QUOTA_MODE)
    if mode not in ("auto", "ceiling"):
        return ""
    rate, learned = stats.get(stat_keys.QUOTA_RATE, 0.0), stats.get(stat_keys.QUOTA_LEARNED, 0.0)
    text = f"{rate:g} calls/s"
    if learned and stats.get(stat_keys.QUOTA_FOUND):
        text += f" (the quota found: {learned:g})"
    elif learned:
        text += f" ({learned:g} passed, no throttle yet)"
    if mode == "ceiling":
        text += f", at most {stats.get(stat_keys.QUOTA_CEILING, 0.0):g}"
    if final:
        text += (f", started at {stats.get(stat_keys.QUOTA_START, 0.0):g}, {stats.get(stat_keys.QUOTA_CUTS, 0)} cuts,"
                 f" {stats.get(stat_keys.QUOTA_RAISES, 0)} raises")
    return text


def shape_text(stats: dict[str, Any]) -> str:
    """``unchanged`` or ``new productSaleInfo.fooBar (crossborder, 12 of 200); missing …``."""
    parts = [f"{label} {key} ({api}, {seen} of {counts['sampled']})"
             for api, counts in sorted(stat_keys.shape_counts(stats).items())
             for kind, label in (("unknown", "new"), ("missing", "missing"))
             for key, seen in sorted(counts[kind].items())]
    return "; ".join(parts[:10]) + (" …" if len(parts) > 10 else "") if parts else "unchanged"


def latency_text(stats: dict[str, Any]) -> str:
    """``p50 52 ms, p95 80 ms, max 310 ms`` of the gateway's replies; "none" without calls."""
    figures = [stats.get(stat_keys.latency(name)) for name in ("p50_ms", "p95_ms", "max_ms")]
    if figures[0] is None:
        return "none"
    return "p50 {:.0f} ms, p95 {:.0f} ms, max {:.0f} ms".format(*figures)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class CrawlProgress:
    """Logs done / total, rate and ETA every ``ALI1688_PROGRESS_INTERVAL`` seconds, and a summary
    (fetched, failed by reason, retried, token refreshes, elapsed, rate) when the spider closes;
    with ``ALI1688_STATS_FILE`` the final stats are also written there as JSON."""

    def __init__(self, crawler: Crawler, interval: float, stats_file: str | None = None) -> None:
        self.crawler = crawler
        self.stats_file = stats_file
        self.stats = crawler.stats
        self.interval = interval
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        interval = config.PROGRESS_INTERVAL.get(crawler.settings)
        if interval <= 0:
            raise NotConfigured
        return cls(crawler, interval, config.STATS_FILE.get(crawler.settings) or None)

    def _get(self, key: str) -> int:
        return stat_keys.count(self.stats.get_stats(), key)  # type: ignore[union-attr]

    def counts(self) -> dict[str, Any]:
        stats = self.stats.get_stats()  # type: ignore[union-attr]
        failed = stat_keys.failures_by_reason(stats)
        return {
            "fetched": self._get(stat_keys.PRODUCTS),
            "failed": failed,
            "duplicates": self._get("dupefilter/filtered") + self._get(stat_keys.INPUT_DUPLICATE),
            "total": self._get(stat_keys.INPUT_TOTAL),
        }

    def spider_opened(self) -> None:
        self.started = time.monotonic()
        self._task = asyncio.ensure_future(self._report())

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            logger.info(self.progress_line())

    def progress_line(self) -> str:
        counts = self.counts()
        done = counts["fetched"] + sum(counts["failed"].values()) + counts["duplicates"]
        elapsed = max(1e-6, time.monotonic() - self.started)
        rate = counts["fetched"] / elapsed
        line = f"progress: {done}"
        total = counts["total"]
        if total:
            line += f"/{total} inputs ({100 * done / total:.1f}%)"
        line += f", {rate:.1f} products/s, {sum(counts['failed'].values())} failed"
        if total and done < total and done > 0:
            line += f", ETA {_duration((total - done) * elapsed / done)}"
        quota = quota_text(self.stats.get_stats())  # type: ignore[union-attr]
        return f"{line}, {quota}" if quota else line

    def spider_closed(self, reason: str) -> None:
        if self._task is not None:
            self._task.cancel()
        counts = self.counts()
        stats = self.stats.get_stats()  # type: ignore[union-attr]
        elapsed = time.monotonic() - self.started
        failed = ", ".join(f"{k} {v}" for k, v in sorted(counts["failed"].items())) or "none"
        summary = {
            "fetched": counts["fetched"], "failed": sum(counts["failed"].values()), "failed_by_reason": failed,
            "duplicates": counts["duplicates"], "retried": self._get(stat_keys.RETRY_COUNT),
            "token_refreshes": self._get(stat_keys.TOKEN_REFRESH), "elapsed": _duration(elapsed),
            "rate": f"{counts['fetched'] / max(elapsed, 1e-6):.1f} products/s", "finish_reason": reason,
            "quota": quota_text(stats, final=True) or "no pacing", "latency": latency_text(stats),
            "shape": shape_text(stats),
        }
        self.stats.set_value(stat_keys.ELAPSED_SECONDS, round(elapsed, 3))  # type: ignore[union-attr]
        if self._get(stat_keys.SEARCH_PAGES) or self._get(stat_keys.SEARCHES):
            logger.info("searches: %d ended, %d pages, %d hits; %d found offers unchanged since stored "
                        "(detail calls saved)", self._get(stat_keys.SEARCHES), self._get(stat_keys.SEARCH_PAGES),
                        self._get(stat_keys.SEARCH_HITS), self._get(stat_keys.UNCHANGED))
        logger.info(
            "summary: fetched %(fetched)s, failed %(failed)s (%(failed_by_reason)s), duplicates %(duplicates)s, "
            "retried %(retried)s, token refreshes %(token_refreshes)s, elapsed %(elapsed)s, %(rate)s, "
            "latency %(latency)s, quota %(quota)s, reply shape %(shape)s, finish reason %(finish_reason)s", summary,
        )
        if self.stats_file:
            stats["finish_reason"] = reason
            Path(self.stats_file).write_text(json.dumps(stats, default=str, indent=1, sort_keys=True))
