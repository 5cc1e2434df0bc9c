"""What happens after the monitors ran: the ``ali1688/alert`` stat, one summary block in the log
(always), and a JSON POST to ``ALI1688_ALERT_WEBHOOK`` when a monitor failed.

The webhook payload holds names, counts and messages only: no setting, no URL, no token.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from spidermon import Action, SkipAction
from spidermon import settings as spidermon_settings

from .. import config, stat_keys
from .readings import Reading

logger = logging.getLogger(__name__)

STAGE_TITLES = {"close": "at the end of the crawl", "periodic": "so far (periodic check)"}
#: Stats sent with an alert, besides every ``ali1688/failed/…``, ``ali1688/response/…``, ``ali1688/error/…``.
KEY_STATS = (
    stat_keys.INPUT_TOTAL, stat_keys.INPUT_READ, stat_keys.QUEUE_TAKEN, stat_keys.PRODUCTS, stat_keys.FRESH,
    stat_keys.UNAVAILABLE, stat_keys.INPUT_DUPLICATE, "dupefilter/filtered", stat_keys.REQUEST_SENT,
    stat_keys.RETRY_COUNT, stat_keys.TOKEN_REFRESH, "item_scraped_count", "elapsed_time_seconds",
)
KEY_STAT_PREFIXES = (stat_keys.FAILED_PREFIX, stat_keys.RESPONSE_PREFIX, stat_keys.ERROR_PREFIX)


@dataclass(frozen=True)
class MonitorOutcome:
    """One monitor's result, in the words the summary and the alert use."""

    name: str
    status: str  # spidermon's: OK, FAIL, ERROR, SKIPPED
    ok: bool
    message: str
    reading: Reading | None

    def line(self, width: int = 0) -> str:
        detail = self.reading.describe() if self.reading is not None and self.status != "ERROR" else self.message
        return f"  {'ok' if self.ok else self.status:<5} {self.name:<{width}}  {detail}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"monitor": self.name, "ok": self.ok, "status": self.status, "message": self.message}
        if self.reading is not None:
            data.update(value=self.reading.value, limit=self.reading.limit)
        return data


def monitor_outcomes(result: Any) -> list[MonitorOutcome]:
    outcomes = []
    for item in result.monitor_results:
        monitor = item.monitor
        reading = getattr(monitor, "reading", None)  # set by our monitors; other monitors have none
        ok = item.status in spidermon_settings.MONITOR.STATUSES.SUCCESSFUL
        if item.status == "ERROR":  # the monitor itself raised: keep the exception's last line
            message = next((line for line in reversed(str(item.error).splitlines()) if line.strip()), "error")
        elif not ok:
            message = str(item.reason or (reading.text if reading else item.status))
        else:
            message = reading.text if reading is not None else str(item.reason or item.status)
        outcomes.append(MonitorOutcome(monitor.monitor_name, item.status, ok, message, reading))
    return outcomes


def summary_text(outcomes: list[MonitorOutcome], stage: str) -> str:
    failed = sum(not outcome.ok for outcome in outcomes)
    verdict = f"{failed} of {len(outcomes)} FAILED" if failed else f"all {len(outcomes)} passed"
    width = max((len(outcome.name) for outcome in outcomes), default=0)
    lines = [outcome.line(width) for outcome in outcomes]
    return "\n".join([f"monitors {STAGE_TITLES[stage]}: {verdict}", *lines])


def key_stats(stats: Any) -> dict[str, int | float]:
    """The numbers worth sending (never a string: those could carry anything)."""
    chosen = {}
    for key, value in stats.items():
        if key in KEY_STATS or key.startswith(KEY_STAT_PREFIXES):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                chosen[key] = value
    return dict(sorted(chosen.items()))


def alert_payload(spider: Any, stage: str, stats: Any, outcomes: list[MonitorOutcome]) -> dict[str, Any]:
    fatal = stats.get(stat_keys.FATAL)
    return {
        "spider": getattr(spider, "name", None),
        "job": getattr(spider, "_job", None),  # scrapyd's job id
        "host": socket.gethostname(),
        "stage": stage,
        "finish_reason": stats.get("finish_reason"),
        "fatal": fatal if isinstance(fatal, str) else None,  # an error code such as gw.NoUsageLeftError
        "failed": [{"monitor": o.name, "message": o.message} for o in outcomes if not o.ok],
        "monitors": [o.to_json() for o in outcomes],
        "stats": key_stats(stats),
    }


def webhook_host(url: str) -> str:
    """The URL without path, query or user info: enough to say where, never a token in the path."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port number
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def post_json(url: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST ``payload`` as JSON; a failure is one warning line (no traceback), never an exception."""
    where = webhook_host(url)
    if urlsplit(url).scheme not in ("http", "https"):
        logger.warning("ALI1688_ALERT_WEBHOOK must be an http(s) URL (got %s): alert not sent", where)
        return False
    body = json.dumps(payload, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ali1688spider-alert"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - http(s) only
            reply.read()
    except urllib.error.HTTPError as exc:
        logger.warning("alert webhook %s answered HTTP %s: alert not delivered", where, exc.code)
        return False
    except urllib.error.URLError as exc:
        logger.warning("alert webhook %s cannot be reached (%s): alert not delivered", where, exc.reason)
        return False
    except (OSError, ValueError, http.client.HTTPException) as exc:
        logger.warning("alert webhook %s failed (%s: %s): alert not delivered", where, type(exc).__name__, exc)
        return False
    logger.info("alert sent to webhook %s", where)
    return True


class RecordAlert(Action):  # type: ignore[misc]
    """Sets ``ali1688/alert`` to the number of failed monitors; ``scrapy crawl`` exits 3 on it
    when ``ALI1688_FAIL_ON_ALERT`` is set."""

    def run_action(self) -> None:
        failed = len(self.result.monitors_failed_results)
        self.data.crawler.stats.set_value(stat_keys.ALERT, failed)


class PeriodicRecordAlert(Action):  # type: ignore[misc]
    """Counts periodic runs with a failed monitor in ``ali1688/alert/periodic``."""

    def run_action(self) -> None:
        crawler = self.data.crawler
        if self.result.monitors_failed_results:
            crawler.stats.inc_value(stat_keys.ALERT_PERIODIC)
        else:
            _periodic_alerted.pop(crawler, None)  # recovered: alert again next time something fails


class LogSummary(Action):  # type: ignore[misc]
    """One block in the log: each monitor, ok or not, with the measured value against its limit."""

    stage = "close"

    def run_action(self) -> None:
        outcomes = monitor_outcomes(self.result)
        failed = any(not outcome.ok for outcome in outcomes)
        logger.log(logging.WARNING if failed else logging.INFO, summary_text(outcomes, self.stage))


class PeriodicLogSummary(LogSummary):
    stage = "periodic"


class PostAlert(Action):  # type: ignore[misc]
    """POSTs the failed monitors and the key stats as JSON to ``ALI1688_ALERT_WEBHOOK``."""

    stage = "close"

    def __init__(self, url: str = "", timeout: float = config.ALERT_TIMEOUT.default) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout

    @classmethod
    def from_crawler_kwargs(cls, crawler: Any) -> dict[str, Any]:
        return {
            "url": config.ALERT_WEBHOOK.get(crawler.settings),
            "timeout": config.ALERT_TIMEOUT.get(crawler.settings),
        }

    def run_action(self) -> None:
        if not self.url:
            raise SkipAction(f"{config.ALERT_WEBHOOK.name} is not set")
        outcomes = monitor_outcomes(self.result)
        self.send(alert_payload(self.data.spider, self.stage, self.data.stats, outcomes), outcomes)

    def send(self, payload: dict[str, Any], outcomes: list[MonitorOutcome]) -> None:
        # The crawl is over: wait (at most the timeout) so that the process does not exit first.
        post_json(self.url, payload, self.timeout)


#: The monitors that failed at the last periodic alert, per crawler: the same again is not re-sent.
_periodic_alerted: WeakKeyDictionary[Any, frozenset[str]] = WeakKeyDictionary()


class PeriodicPostAlert(PostAlert):
    """As :class:`PostAlert`, from a thread (the crawl goes on), and only when the set of failed
    monitors changed since the last periodic alert."""

    stage = "periodic"

    def send(self, payload: dict[str, Any], outcomes: list[MonitorOutcome]) -> None:
        failing = frozenset(outcome.name for outcome in outcomes if not outcome.ok)
        crawler = self.data.crawler
        if _periodic_alerted.get(crawler) == failing:
            raise SkipAction("the same monitors failed at the last periodic alert")
        _periodic_alerted[crawler] = failing
        threading.Thread(target=post_json, args=(self.url, payload, self.timeout),
                         name="ali1688-alert", daemon=True).start()

