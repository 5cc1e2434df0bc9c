"""The monitor suite (spidermon): real crawls against the emulator and a Mongo-protocol server,
alerts POSTed to a webhook receiver started here, ``scrapy crawl``'s exit status, and the
arithmetic of each monitor."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_twisted
from scrapy.settings import Settings

from ali1688spider import config
from ali1688spider.demo.services import GatewayEmulator, free_port
from ali1688spider.gateway.middlewares import GatewayAuthMiddleware
from ali1688spider.monitoring import readings
from ali1688spider.monitoring.actions import key_stats, post_json
from ali1688spider.monitoring.addon import PERIODIC_SUITE, MonitoringAddon
from ali1688spider.monitoring.readings import Thresholds
from ali1688spider.sandbox.config import DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

from .crawling import crawl_env, crawl_settings, fresh_ids, fresh_missing, run_crawl, scrapy_crawl

MONITORS = ("Error rate", "Throttle rate", "Token refreshes", "Invalid products", "Latency", "Reply shape",
            "Ids accounted",
            "Finish reason")
WEBHOOK_TOKEN = "T0KEN-in-the-webhook-path"


@pytest.fixture(autouse=True)
def no_monitor_environment(monkeypatch):
    """The tests set what they need; a developer's ALI1688_MONITOR_*/ALERT_* must not leak in."""
    for setting in config.REGISTRY.values():
        if setting.group == "monitoring":
            monkeypatch.delenv(setting.name, raising=False)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1:0 in a thread that keeps every POST it gets."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                       "raw": body.decode(), "json": json.loads(body)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{WEBHOOK_TOKEN}?key=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


def summaries(caplog: pytest.LogCaptureFixture, stage: str = "at the end of the crawl") -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(f"monitors {stage}:")]


def assert_no_secret(text: str, *more: str) -> None:
    for secret in (DEMO_APP_SECRET, DEMO_REFRESH_TOKEN, "_aop_signature", "access_token", *more):
        assert secret not in text


def script_unknown_errors(emulator: GatewayEmulator, times: int) -> None:
    """The next ``times`` calls answer an error code nobody knows: recorded as unknown_error, not retried."""
    emulator.script([{"kind": "isp", "code": "gw.SomethingNew", "status": 400, "times": times}])


# -- real crawls ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_clean_crawl_passes_every_monitor(emulator, database, webhook, caplog):
    caplog.set_level(logging.INFO)
    uri, name, _ = database
    ids, missing = fresh_ids(30), fresh_missing(3)
    settings = crawl_settings(emulator.url, uri, name, ALI1688_ALERT_WEBHOOK=webhook.url)
    crawler = await run_crawl(settings, ids=",".join([*ids, ids[0], "not-an-id", *missing]))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["ali1688/alert"] == 0
    (summary,) = summaries(caplog)
    text = summary.getMessage()
    assert summary.levelno == logging.INFO
    assert text.splitlines()[0] == "monitors at the end of the crawl: all 8 passed"
    for monitor in MONITORS:
        assert any(line.split()[:1] == ["ok"] and monitor in line for line in text.splitlines()), monitor
    # unknown ids and junk are the input's fault, not failed calls; the duplicate is accounted for
    assert "0.0% (0 failed calls of 35 ids taken)" in text
    assert "35 of 35 ids taken accounted (30 products, 4 failures, 0 unavailable, 1 duplicates, 0 fresh)" in text
    assert "finished (expected: finished, calls_per_day)" in text
    assert webhook.posts == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest_twisted.ensureDeferred
async def test_failed_calls_fail_the_error_rate_monitor_and_alert(emulator, database, webhook, caplog):
    caplog.set_level(logging.INFO)
    uri, name, db = database
    ids, missing = fresh_ids(20), fresh_missing(5)
    script_unknown_errors(emulator, 6)
    settings = crawl_settings(emulator.url, uri, name, ALI1688_ALERT_WEBHOOK=webhook.url, CONCURRENT_REQUESTS=4)
    crawler = await run_crawl(settings, ids=",".join(ids + missing))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["ali1688/failed/unknown_error"] == 6
    assert stats["ali1688/alert"] == 1

    (summary,) = summaries(caplog)
    text = summary.getMessage()
    assert summary.levelno == logging.WARNING
    assert text.splitlines()[0] == "monitors at the end of the crawl: 1 of 8 FAILED"
    (line,) = [line for line in text.splitlines() if "Error rate" in line]
    assert line.split()[0] == "FAIL"
    assert "24.0% (6 failed calls of 25 ids taken), max 5.0% [ALI1688_MONITOR_MAX_ERROR_RATE]" in line
    assert "25 of 25 ids taken accounted" in text

    (post,) = webhook.posts
    assert post["path"] == f"/hooks/{WEBHOOK_TOKEN}?key=abc"
    assert post["content_type"] == "application/json"
    alert = post["json"]
    assert alert["spider"] == "product"
    assert alert["stage"] == "close"
    assert alert["finish_reason"] == "finished"
    assert alert["fatal"] is None
    assert alert["failed"] == [{"monitor": "Error rate",
                                "message": "24.0% (6 failed calls of 25 ids taken), max 5.0%"}]
    error_rate = next(m for m in alert["monitors"] if m["monitor"] == "Error rate")
    assert error_rate["value"] == pytest.approx(6 / 25) and error_rate["limit"] == 0.05
    assert [m["monitor"] for m in alert["monitors"]] == list(MONITORS)
    assert alert["stats"]["ali1688/failed/unknown_error"] == 6
    assert alert["stats"]["ali1688/input/read"] == 25
    assert alert["stats"]["ali1688/error/gw.SomethingNew"] == 6
    assert db.failures.count_documents({"reason": "unknown_error"}) == 6
    assert_no_secret(post["raw"], crawler.get_downloader_middleware(GatewayAuthMiddleware).tokens.token.access_token)
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert f"alert sent to webhook http://127.0.0.1:{webhook.server.server_address[1]}\n" in log + "\n"
    assert WEBHOOK_TOKEN not in log


@pytest_twisted.ensureDeferred
async def test_a_webhook_that_fails_is_logged_once_and_the_crawl_ends_normally(
        emulator, database, webhook, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    uri, name, db = database
    webhook.status = 500
    monkeypatch.setenv("ALI1688_MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR", "0")  # thresholds come from the environment too
    monkeypatch.setenv("ALI1688_ALERT_WEBHOOK", webhook.url)
    crawler = await run_crawl(crawl_settings(emulator.url, uri, name), ids=",".join(fresh_ids(10)))
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["ali1688/products"] == 10 == db.products.count_documents({})
    assert stats["ali1688/alert"] == 1
    (line,) = [line for line in summaries(caplog)[0].getMessage().splitlines() if "Token refreshes" in line]
    assert line.split()[0] == "FAIL" and line.endswith("1.0/h (1 in 0.00 h, counted as 1 h), max 0/h"
                                                       " [ALI1688_MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR]")
    assert len(webhook.posts) == 1
    warnings = [r.getMessage() for r in caplog.records if "alert webhook" in r.getMessage()]
    assert warnings == [f"alert webhook http://127.0.0.1:{webhook.server.server_address[1]} answered HTTP 500: "
                        "alert not delivered"]
    assert not any("Traceback" in r.getMessage() for r in caplog.records)
    assert not any("PostAlert... ERROR" in r.getMessage() for r in caplog.records)


@pytest_twisted.ensureDeferred
async def test_periodic_checks_on_a_long_crawl_alert_once(emulator, database, webhook, caplog):
    caplog.set_level(logging.INFO)
    uri, name, _ = database
    settings = crawl_settings(emulator.url, uri, name, ALI1688_QPS=10, ALI1688_MONITOR_INTERVAL=0.5,
                              ALI1688_MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR=0, ALI1688_ALERT_WEBHOOK=webhook.url)
    crawler = await run_crawl(settings, ids=",".join(fresh_ids(25)))  # about 2.5 s at 10 calls/s
    stats = crawler.stats.get_stats()
    periodic = summaries(caplog, "so far (periodic check)")
    assert len(periodic) >= 3
    assert stats["ali1688/alert/periodic"] == len(periodic)
    for record in periodic:
        text = record.getMessage()
        assert text.splitlines()[0] == "monitors so far (periodic check): 1 of 6 FAILED"
        assert "Ids accounted" not in text and "Finish" not in text  # ids in flight are not missing
    # the same failure again is not re-sent; the end of the crawl always is
    assert [post["json"]["stage"] for post in webhook.posts] == ["periodic", "close"]
    first = webhook.posts[0]["json"]
    assert first["finish_reason"] is None
    assert first["failed"][0]["monitor"] == "Token refreshes"


@pytest.mark.e2e  # runs scrapy crawl
@pytest.mark.parametrize(("fail_on_alert", "status"), [("1", 3), ("", 0)], ids=["fail-on-alert", "default"])
def test_scrapy_crawl_exits_3_on_a_failed_monitor_when_asked(emulator, database, webhook, fail_on_alert, status):
    uri, name, _ = database
    script_unknown_errors(emulator, 5)
    env = crawl_env(emulator.url, uri, name, ALI1688_FAIL_ON_ALERT=fail_on_alert, ALI1688_ALERT_WEBHOOK=webhook.url)
    done = scrapy_crawl(env, "-a", "ids=" + ",".join(fresh_ids(20)), "-s", "CONCURRENT_REQUESTS=4")
    output = done.stdout + done.stderr
    assert done.returncode == status, output[-3000:]
    assert "monitors at the end of the crawl: 1 of 8 FAILED" in output
    assert ("exit status 3: 1 monitor(s) failed and ALI1688_FAIL_ON_ALERT is set" in output) == (status == 3)
    (post,) = webhook.posts
    assert post["json"]["failed"][0]["monitor"] == "Error rate"
    assert "25.0% (5 failed calls of 20 ids taken)" in post["json"]["failed"][0]["message"]
    assert "Traceback" not in output
    assert WEBHOOK_TOKEN not in output
    assert_no_secret(output + post["raw"])


@pytest.mark.e2e  # runs scrapy crawl
def test_a_fatal_stop_exits_2_even_when_a_monitor_failed(database, webhook):
    uri, name, _ = database
    closed = f"http://127.0.0.1:{free_port()}/openapi"
    env = crawl_env(closed, uri, name, ALI1688_FAIL_ON_ALERT="true", ALI1688_ALERT_WEBHOOK=webhook.url)
    done = scrapy_crawl(env, "-a", "ids=610784549587")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert re.search(r"FAIL +Finish reason +ali1688_fatal \(expected: finished, calls_per_day\)", output)
    (post,) = webhook.posts
    alert = post["json"]
    assert alert["finish_reason"] == "ali1688_fatal"
    assert alert["fatal"]
    assert "Finish reason" in [failed["monitor"] for failed in alert["failed"]]


@pytest.mark.e2e  # runs scrapy crawl
def test_a_threshold_that_is_not_a_number_stops_at_once(emulator, database):
    uri, name, _ = database
    env = crawl_env(emulator.url, uri, name, ALI1688_MONITOR_MAX_ERROR_RATE="five percent")
    done = scrapy_crawl(env, "-a", "ids=610784549587")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "error: ALI1688_MONITOR_MAX_ERROR_RATE must be a number ≥ 0, got 'five percent'" in output
    assert "Traceback" not in output


# -- the arithmetic ------------------------------------------------------------------------------


def test_error_rate_counts_failed_calls_of_the_ids_taken():
    stats = {"ali1688/input/read": 100, "ali1688/failed/gave_up": 2, "ali1688/failed/download_error": 1,
             "ali1688/failed/unknown_error": 2, "ali1688/failed/business_failure": 50,
             "ali1688/failed/invalid_reference": 10, "ali1688/failed/invalid_item": 7}
    reading = readings.error_rate(stats, 0.05)
    assert reading.ok and reading.value == 0.05
    assert reading.text == "5.0% (5 failed calls of 100 ids taken), max 5.0%"
    assert not readings.error_rate({**stats, "ali1688/failed/gave_up": 3}, 0.05).ok
    # the Redis spider: entries taken from the queue
    assert readings.error_rate({**stats, "ali1688/queue/taken": 50}, 0.05).value == 0.1
    assert readings.error_rate({}, 0.05).ok


def test_throttle_rate_counts_throttled_replies_of_the_calls_sent():
    assert readings.throttle_rate({"ali1688/request/sent": 1000, "ali1688/response/throttle": 20}, 0.02).ok
    reading = readings.throttle_rate({"ali1688/request/sent": 1000, "ali1688/response/throttle": 30}, 0.02)
    assert not reading.ok and reading.text == "3.0% (30 throttled of 1000 calls sent), max 2.0%"
    # a short crawl counts as 500 calls: the throttles that find an unknown quota are no alarm
    reading = readings.throttle_rate({"ali1688/request/sent": 100, "ali1688/response/throttle": 3}, 0.02)
    assert reading.ok and reading.text == "0.6% (3 throttled of 100 calls sent, counted as 500), max 2.0%"
    assert not readings.throttle_rate({"ali1688/request/sent": 100, "ali1688/response/throttle": 11}, 0.02).ok
    assert readings.throttle_rate({"ali1688/response/throttle": 0}, 0.02).ok  # nothing sent (HTTP cache)


def test_token_refreshes_per_hour_count_a_short_crawl_as_one_hour():
    refreshes = {"ali1688/token/refresh": 12}
    assert readings.token_refresh_rate(refreshes, 12, elapsed=600).ok
    assert not readings.token_refresh_rate({"ali1688/token/refresh": 13}, 12, elapsed=600).ok
    assert readings.token_refresh_rate({"ali1688/token/refresh": 30}, 12, elapsed=2.5 * 3600).ok
    reading = readings.token_refresh_rate({"ali1688/token/refresh": 31}, 12, elapsed=2.5 * 3600)
    assert not reading.ok and reading.value == pytest.approx(12.4)
    assert reading.text == "12.4/h (31 in 2.50 h), max 12/h"


def test_elapsed_time_while_running_and_once_closed():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert readings.elapsed_seconds({"start_time": start}, now=start + timedelta(minutes=5)) == 300
    assert readings.elapsed_seconds({"start_time": start, "elapsed_time_seconds": 12.5}) == 12.5
    assert readings.elapsed_seconds({}) == 0


def test_invalid_rate_is_of_the_products_the_api_returned():
    # 98 products passed validation, one was rejected by it, one was unreadable
    stats = {"ali1688/products": 98, "ali1688/failed/invalid_item": 1, "ali1688/failed/unreadable_product": 1,
             "ali1688/failed/business_failure": 500}
    reading = readings.invalid_rate(stats, 0.01)
    assert not reading.ok and reading.value == 0.02
    assert reading.text == "2.0% (2 unreadable or invalid of 100 products returned), max 1.0%"
    assert readings.invalid_rate({"ali1688/products": 99, "ali1688/failed/invalid_item": 1}, 0.01).ok


def test_every_id_taken_is_accounted_for():
    stats = {"ali1688/input/read": 100, "ali1688/products": 88, "ali1688/failed/invalid_item": 2,
             "ali1688/failed/business_failure": 5, "ali1688/failed/gave_up": 3, "dupefilter/filtered": 2}
    reading = readings.accounting(stats)  # 88 valid products + 10 failures + 2 duplicates, no fresh stat
    assert reading.ok, reading.text
    assert reading.text == ("100 of 100 ids taken accounted (88 products, 10 failures, 0 unavailable, "
                            "2 duplicates, 0 fresh), none missing")
    assert readings.accounting({**stats, "ali1688/input/read": 103, "ali1688/fresh": 3}).ok
    assert readings.accounting({**stats, "ali1688/input/read": 104, "ali1688/unavailable": 4}).ok
    missing = readings.accounting({**stats, "ali1688/input/read": 104})
    assert not missing.ok and missing.text.startswith("4 of 104 ids taken missing")
    assert not readings.accounting({**stats, "ali1688/input/read": 99}).ok  # counted twice is wrong too
    redis = {"ali1688/queue/taken": 10, "ali1688/input/read": 10, "ali1688/products": 8,
             "ali1688/input/duplicate": 1, "ali1688/failed/invalid_reference": 1}
    assert readings.accounting(redis).ok


def test_thresholds_from_settings_then_environment_then_defaults(monkeypatch):
    assert Thresholds.from_settings(Settings()) == Thresholds(0.05, 0.02, 12.0, 0.01)
    monkeypatch.setenv("ALI1688_MONITOR_MAX_ERROR_RATE", "0.2")
    assert Thresholds.from_settings(Settings()).max_error_rate == 0.2
    assert Thresholds.from_settings(Settings({"ALI1688_MONITOR_MAX_ERROR_RATE": 0.3})).max_error_rate == 0.3
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv("ALI1688_MONITOR_MAX_THROTTLE_RATE", bad)
        with pytest.raises(ValueError, match="ALI1688_MONITOR_MAX_THROTTLE_RATE must be a number ≥ 0"):
            Thresholds.from_settings(Settings())


def test_the_addon_schedules_the_periodic_suite(monkeypatch):
    settings = Settings({"SPIDERMON_ENABLED": True})
    MonitoringAddon().update_settings(settings)
    assert settings.getdict("SPIDERMON_PERIODIC_MONITORS") == {PERIODIC_SUITE: 600.0}
    monkeypatch.setenv("ALI1688_MONITOR_INTERVAL", "30")
    theirs = {"myproject.monitors.Hourly": 3600}
    settings = Settings({"SPIDERMON_ENABLED": True, "SPIDERMON_PERIODIC_MONITORS": theirs})
    MonitoringAddon().update_settings(settings)
    assert settings.getdict("SPIDERMON_PERIODIC_MONITORS") == {**theirs, PERIODIC_SUITE: 30.0}
    for off in (Settings({"SPIDERMON_ENABLED": True, "ALI1688_MONITOR_INTERVAL": 0}), Settings()):
        MonitoringAddon().update_settings(off)
        assert not off.getdict("SPIDERMON_PERIODIC_MONITORS")


def test_fail_on_alert_flag(monkeypatch):
    fail_on_alert = config.FAIL_ON_ALERT.get
    assert not fail_on_alert(Settings())
    for value, expected in (("1", True), ("true", True), ("Yes", True), ("0", False), ("false", False)):
        monkeypatch.setenv("ALI1688_FAIL_ON_ALERT", value)
        assert fail_on_alert(Settings()) is expected
    assert fail_on_alert(Settings({"ALI1688_FAIL_ON_ALERT": True}))
    monkeypatch.setenv("ALI1688_FAIL_ON_ALERT", "sometimes")
    with pytest.raises(config.SettingError, match="ALI1688_FAIL_ON_ALERT must be true or false"):
        fail_on_alert(Settings())


def test_post_json_never_raises_and_never_logs_the_path(caplog):
    caplog.set_level(logging.INFO)
    closed = f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}"
    assert post_json(closed, {"a": 1}, timeout=2) is False
    assert post_json(f"file:///tmp/{WEBHOOK_TOKEN}", {"a": 1}, timeout=2) is False
    assert post_json(f"http://127.0.0.1:port/{WEBHOOK_TOKEN}", {"a": 1}, timeout=2) is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[0].startswith(f"alert webhook {closed.split('/hooks')[0]} cannot be reached")
    assert "must be an http(s) URL" in messages[1]
    assert messages[2].startswith("alert webhook http://127.0.0.1 failed (InvalidURL")
    assert WEBHOOK_TOKEN not in "\n".join(messages)


def test_key_stats_are_numbers_from_the_project_and_scrapy_counts_only():
    stats = {"ali1688/products": 3, "ali1688/failed/gave_up": 1, "ali1688/error/gw.QosAppFrequencyLimit": 2,
             "ali1688/fatal": "gw.NoUsageLeftError", "start_time": datetime.now(UTC), "memusage/max": 10,
             "dupefilter/filtered": 1, "ali1688/redis/errors": 4}
    assert key_stats(stats) == {"ali1688/error/gw.QosAppFrequencyLimit": 2, "ali1688/failed/gave_up": 1,
                                "ali1688/products": 3, "dupefilter/filtered": 1}


def test_latency_percentiles_are_read_within_five_percent():
    from ali1688spider.gateway.latency import Latencies

    latencies = Latencies()
    for ms in range(1, 1001):  # 1 … 1000 ms, twice as many calls to crossborder
        latencies.add("product.get", ms / 1000)
        latencies.add("crossborder", ms / 1000)
        latencies.add("crossborder", 2 * ms / 1000)
    summary = latencies.summary()
    assert summary["product.get"]["calls"] == 1000 and summary["all"]["calls"] == 3000
    assert 500 <= summary["product.get"]["p50_ms"] <= 500 * 1.05
    assert 950 <= summary["product.get"]["p95_ms"] <= 950 * 1.05
    assert summary["crossborder"]["max_ms"] == 2000.0 and summary["product.get"]["max_ms"] == 1000.0
    assert Latencies().summary() == {}
    reading = readings.latency_p95({"ali1688/latency/p95_ms": 3200.4, "ali1688/latency/a/p95_ms": 100,
                                    "ali1688/latency/b/p95_ms": 3300}, 3000)
    assert not reading.ok and reading.text == "3200 ms, max 3000 ms; slowest API b"
    assert readings.latency_p95({}, 3000).ok


@pytest_twisted.ensureDeferred
async def test_a_slow_gateway_fails_the_latency_monitor_and_the_alert_says_so(emulator_factory, database, webhook):
    uri, name, db = database
    slow = emulator_factory(latency_ms=250)
    settings = crawl_settings(slow.url, uri, name, ALI1688_MONITOR_MAX_P95_MS=150, ALI1688_ALERT_WEBHOOK=webhook.url)
    crawler = await run_crawl(settings, ids=",".join(fresh_ids(12)))
    stats = crawler.stats.get_stats()
    assert 250 <= stats["ali1688/latency/p50_ms"] <= 400 and stats["ali1688/latency/product.get/p95_ms"] >= 250
    (post,) = webhook.posts
    failed = post["json"]["failed"]
    assert [item["monitor"] for item in failed] == ["Latency"] and "max 150 ms" in failed[0]["message"]
    run = db.runs.find_one({})
    assert run["latency"]["all"]["p95_ms"] >= 250 and run["latency"]["product.get"]["max_ms"] >= 250
