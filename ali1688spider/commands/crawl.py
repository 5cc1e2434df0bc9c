"""``scrapy crawl`` with an exit status: 2 when the crawl stopped on a fatal error.

Scrapy's own command exits 0 whatever the close reason; scripts and schedulers need to know
that a wrong secret or an unreachable database stopped the job.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from ..outcomes import FATAL_STAT

FATAL_EXIT = 2


class Command(ScrapyCrawl):
    def _create_crawler(self, spidercls: type | str) -> Crawler:  # type: ignore[override]
        self._crawler = super()._create_crawler(spidercls)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        try:
            super().run(args, opts)
        except (ValueError, KeyError) as exc:
            if args and args[0] in get_spider_loader(self.settings).list():
                print(f"error: {exc}", file=sys.stderr)
                self.exitcode = FATAL_EXIT
                return
            raise UsageError(str(exc)) from None
        crawler = getattr(self, "_crawler", None)
        if crawler is not None and crawler.stats is not None and crawler.stats.get_value(FATAL_STAT):
            self.exitcode = FATAL_EXIT
