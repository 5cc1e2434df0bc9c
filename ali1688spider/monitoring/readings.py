"""What the monitors measure, computed from a crawl's stats: plain functions, no spidermon.

Every function returns a :class:`Reading`: the measured value, the limit, whether it passes and
one line that says what was counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import config, stat_keys
from ..aop.classify import Outcome
from ..outcomes import FailureReason
from ..stat_keys import count

#: Failures of gateway calls that went wrong (not the input's fault).
FAILED_CALL_REASONS = (FailureReason.GAVE_UP, FailureReason.DOWNLOAD_ERROR, FailureReason.UNKNOWN_ERROR)
#: Products the API returned that we could not read or that failed validation.
INVALID_REASONS = (FailureReason.INVALID_ITEM, FailureReason.UNREADABLE_PRODUCT)


@dataclass(frozen=True)
class Thresholds:
    """The limits (config.py: ``ALI1688_MONITOR_MAX_*``)."""

    max_error_rate: float
    max_throttle_rate: float
    max_token_refreshes_per_hour: float
    max_invalid_rate: float
    max_p95_ms: float = 3000.0
    max_shape_change: float = 0.05

    @classmethod
    def from_settings(cls, settings: config.SettingsLike) -> Thresholds:
        """Raise :class:`~ali1688spider.config.SettingError` naming a setting that is not a number ≥ 0."""
        return cls(
            config.MONITOR_MAX_ERROR_RATE.get(settings), config.MONITOR_MAX_THROTTLE_RATE.get(settings),
            config.MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR.get(settings), config.MONITOR_MAX_INVALID_RATE.get(settings),
            config.MONITOR_MAX_P95_MS.get(settings), config.MONITOR_MAX_SHAPE_CHANGE.get(settings),
        )


@dataclass(frozen=True)
class Reading:
    check: str  # what is measured, e.g. "error rate"
    ok: bool
    value: float
    limit: float | None
    text: str  # the value with what was counted, e.g. "12.0% (6 failed calls of 50 ids taken)"
    setting: str | None = None  # the setting that holds the limit

    def describe(self) -> str:
        return self.text + (f" [{self.setting}]" if self.setting else "")

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "value": self.value, "limit": self.limit, "text": self.text}


def failures(stats: Mapping[str, Any], reasons: tuple[str, ...] | None = None) -> int:
    """``ali1688/failed/<reason>`` summed over ``reasons`` (all reasons when None)."""
    if reasons is None:
        return sum(stat_keys.failures_by_reason(stats).values())
    return sum(count(stats, stat_keys.failed(reason)) for reason in reasons)


def ids_taken(stats: Mapping[str, Any]) -> int:
    """Entries taken from the Redis queue (product_redis), else inputs read (product)."""
    if stat_keys.QUEUE_TAKEN in stats:
        return count(stats, stat_keys.QUEUE_TAKEN)
    return count(stats, stat_keys.INPUT_READ)


def products_fetched(stats: Mapping[str, Any]) -> int:
    """Products that passed validation (ValidationPipeline counts ``ali1688/products``)."""
    return count(stats, stat_keys.PRODUCTS)


def elapsed_seconds(stats: Mapping[str, Any], now: datetime | None = None) -> float:
    """The crawl's duration: Scrapy's ``elapsed_time_seconds`` once closed, else since ``start_time``."""
    if isinstance(stats.get("elapsed_time_seconds"), (int, float)):
        return float(stats["elapsed_time_seconds"])
    start = stats.get("start_time")
    if not isinstance(start, datetime):
        return 0.0
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - start).total_seconds())


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def error_rate(stats: Mapping[str, Any], limit: float) -> Reading:
    failed, taken = failures(stats, FAILED_CALL_REASONS), ids_taken(stats)
    rate = _ratio(failed, taken)
    return Reading("error rate", rate <= limit, rate, limit,
                   f"{rate:.1%} ({failed} failed calls of {taken} ids taken), max {limit:.1%}",
                   config.MONITOR_MAX_ERROR_RATE.name)


#: A crawl of fewer calls counts as this many for the throttle rate: the adaptive quota spends a
#: few throttled calls finding the quota, no alarm in a short crawl.
THROTTLE_MIN_CALLS = 500


def throttle_rate(stats: Mapping[str, Any], limit: float) -> Reading:
    throttled, sent = count(stats, stat_keys.response(Outcome.THROTTLE)), count(stats, stat_keys.REQUEST_SENT)
    rate = _ratio(throttled, max(sent, THROTTLE_MIN_CALLS)) if sent else 0.0
    short = f", counted as {THROTTLE_MIN_CALLS}" if 0 < sent < THROTTLE_MIN_CALLS else ""
    return Reading("throttle rate", rate <= limit, rate, limit,
                   f"{rate:.1%} ({throttled} throttled of {sent} calls sent{short}), max {limit:.1%}",
                   config.MONITOR_MAX_THROTTLE_RATE.name)


def latency_p95(stats: Mapping[str, Any], limit: float) -> Reading:
    """The gateway's 95th-percentile response time over the crawl's calls (all APIs), and the
    slowest API's when there are several."""
    p95 = float(stats.get(stat_keys.latency("p95_ms")) or 0.0)
    per_api = {api: float(figures["p95_ms"]) for api, figures in stat_keys.latency_figures(stats).items()
               if api != "all" and "p95_ms" in figures}
    slowest = f"; slowest API {max(per_api, key=per_api.__getitem__)}" if len(per_api) > 1 else ""
    calls = "" if p95 else " (no calls yet)"
    return Reading("latency p95", p95 <= limit, p95, limit,
                   f"{p95:.0f} ms{calls}, max {limit:.0f} ms{slowest}", config.MONITOR_MAX_P95_MS.name)


def shape_drift(stats: Mapping[str, Any], limit: float) -> Reading:
    """The largest share of an API's sampled replies that carried a key no rule knows, or lacked
    an expected one; the text names every key over the limit (``ali1688/shape/…``)."""
    worst, over, sampled_total = 0.0, [], 0
    for api, counts in sorted(stat_keys.shape_counts(stats).items()):
        sampled = counts["sampled"] or 0
        sampled_total += sampled
        for kind, label in (("unknown", "new"), ("missing", "missing")):
            for key, seen in sorted(counts[kind].items()):
                share = seen / sampled if sampled else 0.0
                worst = max(worst, share)
                if share > limit:
                    over.append(f"{api}: {label} {key} ({seen} of {sampled})")
    if over:
        text = f"reply shape changed: {'; '.join(over[:10])}{' …' if len(over) > 10 else ''}, max {limit:.0%}"
    else:
        text = f"no key past {limit:.0%} of {sampled_total} sampled replies (largest share {worst:.1%})"
    return Reading("reply shape", not over, worst, limit, text, config.MONITOR_MAX_SHAPE_CHANGE.name)


def token_refresh_rate(stats: Mapping[str, Any], limit: float, elapsed: float) -> Reading:
    """Refreshes per hour; a crawl shorter than an hour counts as one hour (the first token is a
    refresh too, and a few in a short crawl are no alarm)."""
    refreshes = count(stats, stat_keys.TOKEN_REFRESH)
    hours = max(elapsed / 3600, 1.0)
    rate = refreshes / hours
    over = "" if elapsed >= 3600 else ", counted as 1 h"
    return Reading("token refreshes", rate <= limit, rate, limit,
                   f"{rate:.1f}/h ({refreshes} in {elapsed / 3600:.2f} h{over}), max {limit:g}/h",
                   config.MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR.name)


def invalid_rate(stats: Mapping[str, Any], limit: float) -> Reading:
    """Products that could not be read or failed validation, of the products the API returned."""
    invalid = failures(stats, INVALID_REASONS)
    received = products_fetched(stats) + invalid
    rate = _ratio(invalid, received)
    return Reading("invalid products", rate <= limit, rate, limit,
                   f"{rate:.1%} ({invalid} unreadable or invalid of {received} products returned), max {limit:.1%}",
                   config.MONITOR_MAX_INVALID_RATE.name)


def accounting(stats: Mapping[str, Any]) -> Reading:
    """Every id taken ends as a product, a failure, a gone offer kept unavailable, a duplicate, a fresh
    skip, a message's offer fetched since, or an offer followed: none missing."""
    taken = ids_taken(stats)
    parts = {
        "products": products_fetched(stats),
        "failures": failures(stats),
        "unavailable": count(stats, stat_keys.UNAVAILABLE),
        "duplicates": count(stats, "dupefilter/filtered") + count(stats, stat_keys.INPUT_DUPLICATE),
        "fresh": count(stats, stat_keys.FRESH),
        "seen": count(stats, stat_keys.MESSAGE_SEEN),  # named by a message, fetched after its birth already
        "followed": count(stats, stat_keys.FOLLOWED) + count(stats, stat_keys.UNFOLLOWED),  # scrapy crawl follow
        "unchanged": count(stats, stat_keys.UNCHANGED),  # found by a search, not changed since stored
        "searches": count(stats, stat_keys.SEARCHES),  # a search that ended is the outcome of its input
        "queued": count(stats, stat_keys.QUEUED),  # found by a queued search, queued as product entries
    }
    accounted = sum(parts.values())
    occasional = ("seen", "followed", "unchanged", "searches", "queued")  # shown only when not 0
    detail = ", ".join(f"{value} {name}" for name, value in parts.items() if value or name not in occasional)
    stopped = stats.get(stat_keys.STOPPED)
    if accounted < taken and stopped:  # stopped early on purpose: the rest is the next run's
        text = f"{accounted} of {taken} ids taken accounted ({detail}), {taken - accounted} left for the next run " \
               f"(stopped: {stopped})"
        return Reading("ids accounted", True, 0, 0, text)
    if accounted == taken:
        text = f"{accounted} of {taken} ids taken accounted ({detail}), none missing"
    elif accounted < taken:
        text = f"{taken - accounted} of {taken} ids taken missing ({detail})"
    else:
        text = f"{accounted - taken} more outcomes than the {taken} ids taken ({detail})"
    return Reading("ids accounted", accounted == taken, taken - accounted, 0, text)


def finish_reason(stats: Mapping[str, Any], expected: list[str]) -> Reading:
    reason = stats.get("finish_reason")
    return Reading("finish reason", reason in expected, 0 if reason in expected else 1, None,
                   f"{reason} (expected: {', '.join(expected)})", "SPIDERMON_EXPECTED_FINISH_REASONS")
