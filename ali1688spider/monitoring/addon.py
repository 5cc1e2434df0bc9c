"""A Scrapy add-on (``ADDONS``): adds the periodic suite to ``SPIDERMON_PERIODIC_MONITORS``, every
``ALI1688_MONITOR_INTERVAL`` seconds.

An add-on, because spidermon reads ``SPIDERMON_PERIODIC_MONITORS`` from the Scrapy settings only,
while the interval may come from the environment too.
"""

from __future__ import annotations

import warnings

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from .. import config

# spidermon 1.27 reports with Spider.log(), which Scrapy 2.19 deprecates: one warning in every
# crawl's log that its user can do nothing about (the tests ignore it the same way).
warnings.filterwarnings("ignore", r"Spider\.log\(\) is deprecated", ScrapyDeprecationWarning,
                        r"spidermon\.contrib\.scrapy\.runners")

PERIODIC_SUITE = "ali1688spider.monitoring.monitors.PeriodicMonitorSuite"


class MonitoringAddon:
    def update_settings(self, settings: BaseSettings) -> None:
        interval = config.MONITOR_INTERVAL.get(settings)
        if interval <= 0 or not settings.getbool("SPIDERMON_ENABLED"):
            return
        name = "SPIDERMON_PERIODIC_MONITORS"
        periodic = dict(settings.getdict(name))
        periodic.setdefault(PERIODIC_SUITE, interval)
        settings.set(name, periodic, priority=max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["addon"]))
