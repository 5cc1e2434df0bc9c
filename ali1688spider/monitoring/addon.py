"""A Scrapy add-on (``ADDONS``): checks the monitor settings when the crawler starts and adds the
periodic suite to ``SPIDERMON_PERIODIC_MONITORS`` every ``ALI1688_MONITOR_INTERVAL`` seconds.

An add-on, because spidermon reads ``SPIDERMON_PERIODIC_MONITORS`` from the Scrapy settings only,
while the interval may come from the environment too.
"""

from __future__ import annotations

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from .readings import DEFAULT_INTERVAL, check_settings, number_setting

PERIODIC_SUITE = "ali1688spider.monitoring.monitors.PeriodicMonitorSuite"


class MonitoringAddon:
    def update_settings(self, settings: BaseSettings) -> None:
        # A threshold that is not a number stops the crawl now, not at its end
        # (`scrapy crawl` checks first, to say so in one line).
        check_settings(settings)
        interval = number_setting(settings, "ALI1688_MONITOR_INTERVAL", DEFAULT_INTERVAL)
        if interval <= 0 or not settings.getbool("SPIDERMON_ENABLED"):
            return
        name = "SPIDERMON_PERIODIC_MONITORS"
        periodic = dict(settings.getdict(name))
        periodic.setdefault(PERIODIC_SUITE, interval)
        settings.set(name, periodic, priority=max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["addon"]))
