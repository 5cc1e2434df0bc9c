"""Monitors of a crawl (spidermon), run when the spider closes and every
``ALI1688_MONITOR_INTERVAL`` seconds on long crawls.

- ``readings``: the arithmetic, read from the crawl's stats (no spidermon import)
- ``monitors``: the spidermon monitors and the two suites
- ``actions``: the summary in the log, the webhook alert, the ``ali1688/alert`` stat
- ``addon``: schedules the periodic suite
- ``progress``: the progress line while a crawl runs, and its summary when it ends
- ``redaction``: no configured secret in any log line

This module itself stays light: the ``crawl`` command imports it for the exit status.
"""

from __future__ import annotations

__all__ = ["ALERT_EXIT"]

#: ``scrapy crawl``'s exit status when a monitor failed and ``ALI1688_FAIL_ON_ALERT`` is set.
ALERT_EXIT = 3
