"""Downloader middlewares: sign every gateway call last, and act on every gateway reply.

Order (settings.py): HttpCacheMiddleware 900 → GatewayResponseMiddleware 940 →
GatewayAuthMiddleware 950 → download. On the way back the auth middleware strips the
signature first, then the response middleware classifies the reply and retries, refreshes
or stops, then the cache may store the (token-free) request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from zoneinfo import ZoneInfo

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response

from .. import cluster, config, stat_keys
from ..aop.calls import call_api
from ..aop.classify import Classification, Outcome, classify_response
from ..aop.errors import TokenError
from ..aop.text import storable_text
from ..aop.tokens import FileTokenStore, MemoryTokenStore, TokenClient, TokenStore
from ..config import ConfigurationError, GatewayConfig
from ..outcomes import fatal_stop, is_stopping, stop_cleanly
from .adaptive import AdaptiveQuota, local_adaptive
from .budget import DailyBudget, FileLedger
from .call import GENERATION, META, NOT_BEFORE, PERMIT, RESULT, TOKEN_RETRIES, sign_in_place, unsign_in_place
from .latency import Latencies
from .pace import Pace
from .quota import LOST, OK, THROTTLED, NoQuota, QuotaLimiter
from .rate import RateRule
from .tokens import TokenManager

logger = logging.getLogger(__name__)

#: A permit is stale when getting the token after it took longer than this (a refresh ran): the
#: call would start late, bunched with later slots' calls, so it books a new slot.
STALE_PERMIT = 0.05
BUDGET_SPENT = "calls_per_day"  # the close reason when the day's call budget is spent


def build_quota(crawler: Crawler, gateway: GatewayConfig) -> QuotaLimiter:
    """No pacing (``ALI1688_QPS=0``), or the adaptive quota under a ceiling (``ALI1688_QPS=N``) or
    none: this process's own, or (``ALI1688_SHARED_STATE``) the one all workers share."""
    if gateway.qps == 0:
        return NoQuota()
    rule = RateRule(gateway.qps or 0.0, start=config.QPS_START.get(crawler.settings))
    if cluster.shared_state(crawler.settings):
        from ..cluster.quota import RedisBoard, RedisQuota

        pacer = RedisQuota(cluster.async_redis(crawler.settings), gateway.app_key or "-", rule.start_rate)
        return AdaptiveQuota(rule, RedisBoard(pacer.redis, pacer), pacer, clock=lambda: time.time() + pacer.offset)
    return local_adaptive(rule, rule.initial())


def quota_report(crawler: Crawler) -> dict[str, object] | None:
    """The adaptive quota's summary and chart for the ``runs`` document (None without one)."""
    auth = crawler.get_downloader_middleware(GatewayAuthMiddleware)
    return auth.pace.report() if auth is not None and auth.pace is not None else None


def build_budget(crawler: Crawler, gateway: GatewayConfig) -> DailyBudget | None:
    """``ALI1688_CALLS_PER_DAY``, counted in Redis when crawls share state, else in a local file."""
    limit = config.CALLS_PER_DAY.get(crawler.settings)
    if not limit:
        return None
    zone = ZoneInfo(config.QUOTA_TZ.get(crawler.settings))
    if cluster.shared_state(crawler.settings):
        from ..cluster.budget import RedisLedger

        return DailyBudget(RedisLedger(cluster.async_redis(crawler.settings), gateway.app_key), limit, zone)
    return DailyBudget(FileLedger(config.USAGE_FILE.get(crawler.settings)), limit, zone)


def build_token_store(crawler: Crawler, gateway: GatewayConfig) -> TokenStore:
    """Where the token lives: memory, ``ALI1688_TOKEN_FILE``, or Redis when workers share state."""
    cipher = cluster.cipher_from_settings(crawler.settings)
    if cluster.shared_state(crawler.settings):
        from ..cluster.tokens import RedisTokenStore

        return RedisTokenStore(cluster.sync_redis(crawler.settings), gateway.app_key or "-", cipher)
    if gateway.token_file:
        return FileTokenStore(gateway.token_file, cipher)
    return MemoryTokenStore()


#: Distinct error codes counted under their own stat key in one crawl.
MAX_ERROR_KEYS = 50
LATENCY_EVERY = 1000  # the latency stats follow each reply up to this many, then once a second


class GatewayAuthMiddleware:
    """Quota permit → current access token → a call of the day's budget → ``_aop_timestamp`` →
    ``_aop_signature``.

    Nothing waits after the signature: the permit and the token are awaited here, in the last
    middleware before the download, so a signed request is never stale.
    """

    def __init__(self, crawler: Crawler, gateway: GatewayConfig, tokens: TokenManager) -> None:
        self.crawler = crawler
        self.config = gateway
        self.tokens = tokens
        self.quota: QuotaLimiter = NoQuota()
        self.pace: Pace | None = None  # the adaptive quota's upkeep
        self.budget: DailyBudget | None = None
        self.setup_error: str | None = None
        self.stats = crawler.stats
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GatewayAuthMiddleware:
        if not config.ENABLED.get(crawler.settings):
            raise NotConfigured
        gateway = GatewayConfig.from_settings(crawler.settings)
        setup_error = None
        try:
            store = build_token_store(crawler, gateway)
        except TokenError as exc:  # e.g. ALI1688_SECRET_KEY is not a Fernet key: said at spider open
            store, setup_error = MemoryTokenStore(), exc.message
        client = TokenClient(gateway.gateway_url, gateway.app_key or "-", gateway.app_secret or "-")
        tokens = TokenManager(
            client, store, refresh_token=gateway.refresh_token,
            max_margin=config.TOKEN_REFRESH_MARGIN.get(crawler.settings),
            on_refresh=lambda _: crawler.stats.inc_value(stat_keys.TOKEN_REFRESH),  # type: ignore[union-attr]
        )
        tokens.adopt(gateway.access_token)
        middleware = cls(crawler, gateway, tokens)
        middleware.setup_error = setup_error
        return middleware

    async def spider_opened(self, spider: Spider) -> None:
        """Preflight: credentials present, and a token from the gateway (which proves it answers).
        None of it for a spider that refused its arguments: it stops in ``start()``, before any call."""
        if getattr(spider, "argument_error", None):
            return
        try:
            self.config.check()
            if self.setup_error:
                raise ConfigurationError(self.setup_error)
        except ConfigurationError as exc:
            fatal_stop(self.crawler, "configuration", str(exc))
            return
        self.quota = build_quota(self.crawler, self.config)
        if isinstance(self.quota, AdaptiveQuota):
            self.pace = Pace(self.crawler, self.quota, self.config)
            await self.pace.start()
        else:
            self.stats.set_value(stat_keys.QUOTA_MODE, "off")
        self.budget = build_budget(self.crawler, self.config)
        if self.tokens.needs_refresh():
            try:
                await self.tokens.get()
            except TokenError as exc:
                fatal_stop(self.crawler, f"token/{exc.code}",
                           f"cannot get an access token from {self.config.gateway_url}: {exc}")
            except Exception as exc:  # a shared token store that cannot be reached
                fatal_stop(self.crawler, "token/store", f"cannot read the token store: {type(exc).__name__}: {exc}")

    async def process_request(self, request: Request) -> None:
        if META not in request.meta:
            return None
        if is_stopping(self.crawler):
            raise IgnoreRequest("the crawl is stopping")
        not_before = request.meta.get(NOT_BEFORE)
        if not_before:
            delay = not_before - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        token = await self.tokens.get()  # a refresh happens before the permit, not after it
        while True:
            permit = await self.quota.acquire()
            if permit.waited:
                self.stats.inc_value(stat_keys.QUOTA_WAITED_MS, int(permit.waited * 1000))
            permit_at = time.monotonic()
            token = await self.tokens.get()  # the current one: it may have been refreshed while we waited
            if time.monotonic() - permit_at < STALE_PERMIT:
                break
            await self.quota.replied(permit.second, LOST)  # its slot went unused
            self.stats.inc_value(stat_keys.QUOTA_REBOOKED)  # a refresh ran after the permit: book again
        if is_stopping(self.crawler):  # the crawl was stopped while this call waited
            await self.quota.replied(permit.second, LOST)
            raise IgnoreRequest("the crawl is stopping")
        # the day's budget is taken with the permit in hand: callers waiting for a permit hold none
        if self.budget is not None and not await self._within_budget():
            await self.quota.replied(permit.second, LOST)
            raise IgnoreRequest("the day's call budget is spent")
        request.meta[PERMIT] = permit.second
        request.meta[GENERATION] = self.tokens.refreshes
        sign_in_place(request, token.access_token, int(time.time() * 1000), self.config.app_secret)
        self.stats.inc_value(stat_keys.REQUEST_SENT)
        now = time.time()
        self.stats.min_value(stat_keys.REQUEST_FIRST_AT, now)
        self.stats.max_value(stat_keys.REQUEST_LAST_AT, now)
        return None

    async def _within_budget(self) -> bool:
        """Count this call against the day's budget; when it is spent, stop the crawl cleanly."""
        assert self.budget is not None
        try:
            if await self.budget.take():
                return True
        except Exception as exc:  # the ledger (Redis, the usage file) cannot be used
            fatal_stop(self.crawler, "budget", f"cannot count the day's calls: {type(exc).__name__}: {exc}")
            return False
        stop_cleanly(self.crawler, BUDGET_SPENT,
                     f"the day's budget of {self.budget.limit} calls ({config.CALLS_PER_DAY.name}) is spent "
                     f"for {self.budget.day} ({self.budget.zone.key}); the next run continues")
        return False

    async def spider_closed(self) -> None:
        if self.pace is not None:
            await self.pace.stop()
        if self.budget is not None:
            try:
                await self.budget.close()
            except Exception as exc:
                logger.warning("could not give back unused calls of the day's budget: %s", exc)

    def process_response(self, request: Request, response: Response) -> Response:
        unsign_in_place(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        unsign_in_place(request)
        return None


class GatewayResponseMiddleware:
    """Classify every gateway reply (PROTOCOL.md §4) and act on it.

    ok / business failure / unknown code → on to the spider (with ``meta["ali1688_result"]``);
    throttle / transient → retried with exponential backoff through ``get_retry_request``;
    token → one refresh (shared by all who saw the same token), re-signed and retried;
    fatal → the crawl stops at once with a line that says what to fix.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.max_retries = config.RETRY_TIMES.get(settings)
        self.backoff_base = config.BACKOFF_BASE.get(settings)
        self.backoff_max = config.BACKOFF_MAX.get(settings)
        self.unreachable_after = config.UNREACHABLE_AFTER.get(settings)
        self.not_gateway_after = config.NOT_GATEWAY_AFTER.get(settings)
        self.gateway_url = config.redact_uri(config.GATEWAY_URL.get(settings))
        self._errors_in_a_row = 0
        self._foreign_in_a_row = 0
        self._error_keys: set[str] = set()
        self._replies = 0
        self.latencies = Latencies()
        self._latency_shown = 0.0
        crawler.signals.connect(self.show_latencies, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GatewayResponseMiddleware:
        if not config.ENABLED.get(crawler.settings):
            raise NotConfigured
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        call = request.meta.get(META)
        if call is None:
            return response
        self._replies += 1
        self._errors_in_a_row = 0
        took = request.meta.get("download_latency")
        if isinstance(took, float | int):
            self.latencies.add(call["api"], took)
            now = time.monotonic()
            if self._replies <= LATENCY_EVERY or now - self._latency_shown >= 1.0:
                self._latency_shown = now
                self.show_latencies()
        result = classify_response(response.status, response.body, call_api(call["api"]))
        await self._replied(request, THROTTLED if result.outcome is Outcome.THROTTLE else OK)
        self.stats.inc_value(stat_keys.response(result.outcome.value))
        reason = result.outcome.value  # also the retry stat's reason: bounded like the error keys
        if result.error_code:
            key = self._error_key(result.error_code)
            self.stats.inc_value(key)
            reason = key.removeprefix(stat_keys.ERROR_PREFIX)
        # A run of first attempts answered by something that is not the gateway (a proxy's page, a
        # wrong URL) stops the crawl; the retries of an odd offer neither count nor break the run.
        if not result.foreign:
            self._foreign_in_a_row = 0
        elif not request.meta.get("retry_times"):
            self._foreign_in_a_row += 1
        if self._foreign_in_a_row >= self.not_gateway_after:
            kind = response.headers.get(b"Content-Type", b"no content type").decode("latin-1")[:60]
            fatal_stop(self.crawler, "not_gateway",
                       f"{config.GATEWAY_URL.name} ({self.gateway_url}) does not answer like the 1688 gateway: "
                       f"{self._foreign_in_a_row} replies in a row were not gateway replies (the last: HTTP "
                       f"{response.status}, {kind}); check the URL and any proxy in front of it")
            raise IgnoreRequest("not the gateway")
        outcome = result.outcome
        if outcome is Outcome.FATAL:
            fatal_stop(self.crawler, result.error_code or "fatal",
                       f"the gateway refused {call['api']}: {result.error_code}: {result.message}")
            raise IgnoreRequest(f"fatal gateway error {result.error_code}")
        if outcome is Outcome.TOKEN:
            retry = await self._after_token_error(request, result)
        elif outcome in (Outcome.THROTTLE, Outcome.TRANSIENT):
            retry = self._retry(request, reason, outcome)
        else:
            retry = None
        if retry is not None:
            return retry
        request.meta[RESULT] = result
        if outcome is not Outcome.OK:
            request.meta["dont_cache"] = True  # the HTTP cache keeps products, never error replies
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if META not in request.meta:
            return None
        await self._replied(request, LOST)
        if isinstance(exception, IgnoreRequest):
            return None
        if isinstance(exception, TokenError):
            if exception.permanent:
                fatal_stop(self.crawler, f"token/{exception.code}",
                           f"cannot refresh the access token: {exception.message}")
                raise IgnoreRequest("no access token")
            return self._retry(request, f"token/{exception.code}", Outcome.TRANSIENT)
        if cluster.is_redis_error(exception):  # the shared quota or token store, not the gateway
            self.stats.inc_value(stat_keys.error("redis"))
            return self._retry(request, "redis", Outcome.TRANSIENT)
        self._errors_in_a_row += 1
        name = type(exception).__name__
        self.stats.inc_value(stat_keys.error(name))
        if self._replies == 0 and self._errors_in_a_row >= self.unreachable_after:
            fatal_stop(self.crawler, "gateway_unreachable",
                       f"the gateway at {request.url.split('/openapi')[0]} does not answer "
                       f"({self._errors_in_a_row} calls failed: {name}); check ALI1688_GATEWAY_URL")
            raise IgnoreRequest("gateway unreachable")
        return self._retry(request, name, Outcome.TRANSIENT)

    async def _after_token_error(self, request: Request, result: Classification) -> Request | None:
        tried = request.meta.get(TOKEN_RETRIES, 0)
        if tried >= 1:
            return None  # refreshed once already for this call: give up on it
        tokens = self._tokens()
        seen = request.meta.get(GENERATION)
        try:
            if seen == tokens.refreshes:  # nobody refreshed since this call was signed
                await tokens.refresh()
        except TokenError as exc:
            if exc.permanent:
                fatal_stop(self.crawler, f"token/{exc.code}", f"cannot refresh the access token: {exc.message}")
                raise IgnoreRequest("no access token") from None
            return self._retry(request, f"token/{exc.code}", Outcome.TRANSIENT)
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason="token", max_retry_times=self.max_retries + 1,
            stats_base_key=stat_keys.RETRY_BASE,
        )
        if retry is not None:
            retry.meta[TOKEN_RETRIES] = tried + 1
            retry.meta.pop(NOT_BEFORE, None)
        return retry

    def show_latencies(self) -> None:
        """p50/p95/max of the calls so far into the stats."""
        for api, figures in self.latencies.summary().items():
            for figure in ("p50_ms", "p95_ms", "max_ms"):
                self.stats.set_value(stat_keys.latency(figure, None if api == "all" else api), figures[figure])

    def _error_key(self, code: str) -> str:
        """``ali1688/error/<code>``; past ``MAX_ERROR_KEYS`` distinct codes (a gateway may send any
        text as a code), the others share ``ali1688/error/other``."""
        code = storable_text(code)[:80]
        if code not in self._error_keys:
            if len(self._error_keys) >= MAX_ERROR_KEYS:
                return stat_keys.error("other")
            self._error_keys.add(code)
        return stat_keys.error(code)

    def _auth(self) -> GatewayAuthMiddleware:
        auth = self.crawler.get_downloader_middleware(GatewayAuthMiddleware)
        assert auth is not None, "GatewayResponseMiddleware needs GatewayAuthMiddleware"
        return auth

    def _tokens(self) -> TokenManager:
        """The crawl's token manager: the auth middleware's (the one that signed the call)."""
        return self._auth().tokens

    async def _replied(self, request: Request, outcome: str) -> None:
        """Tell the quota how the call sent with this request's permit ended (once)."""
        second = request.meta.pop(PERMIT, None)
        if second is None:
            return
        try:
            await self._auth().quota.replied(second, outcome)
        except Exception as exc:  # the shared state is away: the reply itself is not lost for it
            self.stats.inc_value(stat_keys.error(type(exc).__name__))
            logger.debug("the quota did not hear of a reply: %s", exc)

    def _retry(self, request: Request, reason: str, outcome: Outcome) -> Request | None:
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=reason, max_retry_times=self.max_retries,
            stats_base_key=stat_keys.RETRY_BASE,
        )
        if retry is not None:
            attempt = retry.meta["retry_times"]
            base = self.backoff_base * (2 if outcome is Outcome.THROTTLE else 1)
            delay = min(self.backoff_max, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            retry.meta[NOT_BEFORE] = time.time() + delay
        return retry

