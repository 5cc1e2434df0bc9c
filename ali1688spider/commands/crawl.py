"""``scrapy crawl`` with an exit status: 2 when the crawl stopped on a fatal error; 3 when a
monitor failed at the end of the crawl and ``ALI1688_FAIL_ON_ALERT`` is set (2 goes first).

Scrapy's own command exits 0 whatever the close reason, and spidermon does not change it;
scripts and schedulers need to know that a wrong secret or an unreachable database stopped the job.
"""

from __future__ import annotations

import argparse
import logging
import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from .. import config, stat_keys
from ..monitoring import ALERT_EXIT

logger = logging.getLogger(__name__)

FATAL_EXIT = 2


class Command(ScrapyCrawl):
    def _create_crawler(self, spidercls: type | str) -> Crawler:  # type: ignore[override]
        self._crawler = super()._create_crawler(spidercls)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        try:
            config.check(self.settings)
        except config.SettingError as exc:  # a setting with a value it refuses: one line, before any call
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = FATAL_EXIT
            return
        try:
            super().run(args, opts)
        except (ValueError, KeyError) as exc:
            if args and args[0] in get_spider_loader(self.settings).list():
                print(f"error: {exc}", file=sys.stderr)
                self.exitcode = FATAL_EXIT
                return
            raise UsageError(str(exc)) from None
        crawler = getattr(self, "_crawler", None)
        if crawler is None:
            return
        try:
            stats = crawler.stats
        except RuntimeError:  # the crawl never started (Scrapy 2.19 raises rather than give None)
            return
        if stats.get_value(stat_keys.FATAL):
            self.exitcode = FATAL_EXIT
            return
        failed = stats.get_value(stat_keys.ALERT) or 0
        if failed and config.FAIL_ON_ALERT.get(crawler.settings):
            logger.error("exit status %d: %d monitor(s) failed and ALI1688_FAIL_ON_ALERT is set", ALERT_EXIT, failed)
            self.exitcode = ALERT_EXIT
