"""A Scrapy add-on (``ADDONS``): adds the periodic suite to ``SPIDERMON_PERIODIC_MONITORS``, every
``ALI1688_MONITOR_INTERVAL`` seconds.

An add-on, because spidermon reads ``SPIDERMON_PERIODIC_MONITORS`` from the Scrapy settings only,
while the interval may come from the environment too.
"""

from __future__ import annotations

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from .. import config

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
