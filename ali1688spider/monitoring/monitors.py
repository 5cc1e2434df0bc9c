"""The spidermon monitors and suites of a crawl.

``CloseMonitorSuite`` runs when the spider closes (``SPIDERMON_SPIDER_CLOSE_MONITORS``);
``PeriodicMonitorSuite`` every ``ALI1688_MONITOR_INTERVAL`` seconds while it runs (the rates only:
ids in flight are not missing and there is no finish reason yet).
"""

from __future__ import annotations

from typing import Any, ClassVar

from spidermon import MonitorSuite, monitors
from spidermon.contrib.scrapy.monitors import FinishReasonMonitor
from spidermon.contrib.scrapy.monitors.base import BaseScrapyMonitor

from . import readings
from .actions import (
    LogSummary,
    PeriodicLogSummary,
    PeriodicPostAlert,
    PeriodicRecordAlert,
    PostAlert,
    RecordAlert,
)
from .readings import Reading, Thresholds

# unittest (under spidermon) leaves this module's frames out of a failed monitor's report: the
# log gets "AssertionError: 24.0% (6 failed calls of 25 ids taken), max 5.0%", not a traceback.
# The arithmetic lives in readings.py, whose frames still show if it ever raises.
__unittest = True


class ReadingMonitor(BaseScrapyMonitor):  # type: ignore[misc]
    """A monitor that checks one :class:`Reading`; the reading stays on the monitor for the actions."""

    reading: Reading | None = None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.from_settings(self.crawler.settings)

    def check(self, reading: Reading) -> None:
        self.reading = reading
        if not reading.ok:
            self.fail(reading.text)


@monitors.name("Error rate")
class ErrorRateMonitor(ReadingMonitor):
    """Failed calls (gave up, download error, unknown error code) of the ids taken."""

    @monitors.name("failed calls / ids taken ≤ ALI1688_MONITOR_MAX_ERROR_RATE")
    def test_error_rate(self) -> None:
        self.check(readings.error_rate(self.stats, self.thresholds.max_error_rate))


@monitors.name("Throttle rate")
class ThrottleRateMonitor(ReadingMonitor):
    """Throttled replies of the calls sent: the quota setting is higher than the app's."""

    @monitors.name("throttled / calls sent ≤ ALI1688_MONITOR_MAX_THROTTLE_RATE")
    def test_throttle_rate(self) -> None:
        self.check(readings.throttle_rate(self.stats, self.thresholds.max_throttle_rate))


@monitors.name("Latency")
class LatencyMonitor(ReadingMonitor):
    """The gateway's 95th-percentile response time: a slow gateway, proxy or network."""

    @monitors.name("p95 response time ≤ ALI1688_MONITOR_MAX_P95_MS")
    def test_latency(self) -> None:
        self.check(readings.latency_p95(self.stats, self.thresholds.max_p95_ms))


@monitors.name("Reply shape")
class ShapeMonitor(ReadingMonitor):
    """Keys 1688 started or stopped sending: a new key no rule reads, an expected one gone."""

    @monitors.name("new or missing keys ≤ ALI1688_MONITOR_MAX_SHAPE_CHANGE of sampled replies")
    def test_reply_shape(self) -> None:
        self.check(readings.shape_drift(self.stats, self.thresholds.max_shape_change))


@monitors.name("Token refreshes")
class TokenRefreshMonitor(ReadingMonitor):
    """Access-token refreshes per hour of crawl."""

    @monitors.name("refreshes per hour ≤ ALI1688_MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR")
    def test_token_refreshes(self) -> None:
        elapsed = readings.elapsed_seconds(self.stats)
        self.check(readings.token_refresh_rate(self.stats, self.thresholds.max_token_refreshes_per_hour, elapsed))


@monitors.name("Invalid products")
class InvalidProductsMonitor(ReadingMonitor):
    """Unreadable or invalid products of the products the API returned."""

    @monitors.name("unreadable + invalid / products returned ≤ ALI1688_MONITOR_MAX_INVALID_RATE")
    def test_invalid_products(self) -> None:
        self.check(readings.invalid_rate(self.stats, self.thresholds.max_invalid_rate))


@monitors.name("Ids accounted")
class AccountingMonitor(ReadingMonitor):
    """Products + failures + duplicates + fresh skips == ids taken."""

    @monitors.name("none of the ids taken is missing")
    def test_every_id_accounted(self) -> None:
        self.check(readings.accounting(self.stats))


@monitors.name("Finish reason")
class FinishReason(FinishReasonMonitor):  # type: ignore[misc]
    """spidermon's FinishReasonMonitor (``SPIDERMON_EXPECTED_FINISH_REASONS``), reported in one
    line rather than with a traceback into spidermon."""

    reading: Reading | None = None

    @monitors.name("the crawl ended with an expected finish reason")
    def test_should_finish_with_expected_reason(self) -> None:
        expected = self.crawler.settings.getlist("SPIDERMON_EXPECTED_FINISH_REASONS", ["finished"])
        self.reading = readings.finish_reason(self.stats, expected)
        try:
            super().test_should_finish_with_expected_reason()
        except self.failureException as exc:
            raise self.failureException(str(exc)) from None


RATE_MONITORS: list[type[Any]] = [ErrorRateMonitor, ThrottleRateMonitor, TokenRefreshMonitor, InvalidProductsMonitor,
                                  LatencyMonitor, ShapeMonitor]


class CloseMonitorSuite(MonitorSuite):  # type: ignore[misc]
    """The end of a crawl: the rates, every id accounted for, the finish reason."""

    monitors: ClassVar[list[Any]] = [*RATE_MONITORS, AccountingMonitor, FinishReason]
    monitors_finished_actions: ClassVar[list[Any]] = [RecordAlert, LogSummary]
    monitors_failed_actions: ClassVar[list[Any]] = [PostAlert]


class PeriodicMonitorSuite(MonitorSuite):  # type: ignore[misc]
    """While a long crawl runs: the rates so far."""

    monitors: ClassVar[list[Any]] = RATE_MONITORS
    monitors_finished_actions: ClassVar[list[Any]] = [PeriodicRecordAlert, PeriodicLogSummary]
    monitors_failed_actions: ClassVar[list[Any]] = [PeriodicPostAlert]
