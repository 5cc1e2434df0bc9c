"""Every setting of the project in one registry: name, type, default and meaning.

A setting is read from the Scrapy settings (``-s NAME=value``, ``settings.py``, scrapyd's
``setting=NAME=value``), else from the environment variable of the same name, else its default;
an empty value counts as unset. Each is read through its entry here (``QPS.get(settings)``), so a
bad value gives one line naming the setting and what it accepts (:class:`SettingError`), and
``scrapy crawl`` checks them all before the crawl starts (:func:`check`).

Secrets (the app secret, tokens, the Fernet key, a webhook URL) are read here and handed to the
components that need them; they are never copied back into settings, stats or logs. This module
imports no Scrapy: ``aop``'s command line reads its settings here too.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")


class SettingsLike(Protocol):
    def get(self, name: str, default: Any = None) -> Any: ...


class SettingError(ValueError):
    """A setting holds a value it does not accept; the message names it and says what it accepts."""


class ConfigurationError(Exception):
    """A setting the user must fix (e.g. a missing credential); the message says which and how."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: read it with :meth:`get`."""

    name: str
    default: T
    meaning: str
    accepts: str  # what a value must be, for the error line and the README
    parse: Callable[[Any], T] = field(repr=False, compare=False)
    group: str = "run"
    secret: bool = False  # never shown: not in errors, not in `settings` listings
    environment: bool = True  # False: a Scrapy setting only (its owner, e.g. scrapy-redis, reads it so)

    def raw(self, settings: SettingsLike | None = None, environ: Mapping[str, str] | None = None) -> Any:
        """The value as given (None when unset): Scrapy settings first, then the environment."""
        value = settings.get(self.name) if settings is not None else None
        if value in (None, "") and self.environment:
            value = (os.environ if environ is None else environ).get(self.name)
        return None if value in (None, "") else value

    def get(self, settings: SettingsLike | None = None, environ: Mapping[str, str] | None = None) -> T:
        value = self.raw(settings, environ)
        if value is None:
            return self.default
        try:
            return self.parse(value)
        except (TypeError, ValueError, ArithmeticError):
            shown = "(hidden)" if self.secret else repr(_shorten(str(value)))
            raise SettingError(f"{self.name} must be {self.accepts}, got {shown}") from None

    def shown_default(self) -> str:
        if self.default in ("", None):
            return "unset"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, float) and self.default.is_integer():
            return str(int(self.default))
        return str(self.default)


REGISTRY: dict[str, Setting[Any]] = {}

#: The README's sections of the settings table, in order.
GROUPS = {
    "credentials": "Credentials and the gateway",
    "calls": "Calls: quota, retries, freshness",
    "run": "The run: progress, stats, switches",
    "mongo": "MongoDB",
    "redis": "Redis: many workers",
    "monitoring": "Monitoring and alerts",
}


def _register(setting: Setting[T]) -> Setting[T]:
    if setting.name in REGISTRY:
        raise ValueError(f"{setting.name} is registered twice")
    if setting.group not in GROUPS:
        raise ValueError(f"{setting.name}: unknown group {setting.group!r}")
    REGISTRY[setting.name] = setting
    return setting


# -- value parsers ------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return str(value).strip()


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _number(minimum: float = 0.0, *, above: bool = False, whole: bool = False) -> Callable[[Any], Any]:
    def parse(value: Any) -> float | int:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
        if not math.isfinite(number) or number < minimum or (above and number == minimum):
            raise ValueError(value)
        if whole:
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return number

    return parse


def _http_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", text):
        raise ValueError(value)
    return text


def _zone(value: Any) -> str:
    """An IANA time zone name (``Asia/Shanghai``, ``UTC``)."""
    text = str(value).strip()
    try:
        ZoneInfo(text)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # OSError: a name too long for a file
        raise ValueError(value) from None
    return text


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_FORMS = "seconds, or a number with s, m, h, d or w (e.g. 90, 30m, 6h, 2d)"


def parse_duration(text: Any) -> float:
    """``90`` (seconds), ``30s``, ``30m``, ``6h``, ``2d``, ``2w`` → seconds (≥ 0); else ValueError."""
    match = _DURATION.match(str(text)) if not isinstance(text, bool) else None
    if match is None:
        raise ValueError(f"{_shorten(str(text))!r} is not a duration: use {DURATION_FORMS}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text(name: str, default: str, meaning: str, *, group: str, secret: bool = False,
         environment: bool = True) -> Setting[str]:
    return _register(Setting(name, default, meaning, "text", _text, group, secret, environment))


def flag(name: str, default: bool, meaning: str, *, group: str) -> Setting[bool]:
    return _register(Setting(name, default, meaning, "true or false (also 1/0, yes/no, on/off)", _flag, group))


def number(name: str, default: float, meaning: str, *, group: str, minimum: float = 0.0,
           above: bool = False) -> Setting[float]:
    accepts = f"a number {'>' if above else '≥'} {minimum:g}"
    return _register(Setting(name, float(default), meaning, accepts, _number(minimum, above=above), group))


def count(name: str, default: int, meaning: str, *, group: str, minimum: int = 0) -> Setting[int]:
    return _register(Setting(name, default, meaning, f"a whole number ≥ {minimum}",
                             _number(minimum, whole=True), group))


def duration(name: str, default: float, meaning: str, *, group: str) -> Setting[float]:
    return _register(Setting(name, float(default), meaning, DURATION_FORMS, parse_duration, group))


# -- the registry -------------------------------------------------------------------------------

APP_KEY = text("ALI1688_APP_KEY", "", "the app's key (not a secret: it is part of every URL)", group="credentials")
APP_SECRET = text("ALI1688_APP_SECRET", "", "the app's secret: signs every call; never logged, never stored",
                  group="credentials", secret=True)
REFRESH_TOKEN = text("ALI1688_REFRESH_TOKEN", "", "the seller's refresh token (about half a year)",
                     group="credentials", secret=True)
ACCESS_TOKEN = text("ALI1688_ACCESS_TOKEN", "", "start with this access token instead of refreshing first",
                    group="credentials", secret=True)
TOKEN_FILE = text("ALI1688_TOKEN_FILE", "", "keep tokens across runs in this file (mode 0600; see Tokens)",
                  group="credentials")
SECRET_KEY = text("ALI1688_SECRET_KEY", "", "a Fernet key: stored tokens (file or Redis) are encrypted with it",
                  group="credentials", secret=True)
GATEWAY_URL = _register(Setting(
    "ALI1688_GATEWAY_URL", "https://gw.open.1688.com/openapi", "the gateway (the emulator's URL to work offline)",
    "an http(s) URL", _http_url, "credentials"))
TOKEN_REFRESH_MARGIN = number("ALI1688_TOKEN_REFRESH_MARGIN", 300, "refresh the access token this many seconds "
                              "before it expires (at most a fifth of its lifetime)", group="credentials")

def _qps(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return float(_number(0.0)(value))


QPS: Setting[float | None] = _register(Setting(
    "ALI1688_QPS", None, "the app's quota in calls per second. Unset or auto: found while crawling (from "
    "ALI1688_QPS_START, raised while calls pass, cut when the gateway throttles, remembered in MongoDB); "
    "a number: a ceiling never exceeded (a whole number in any calendar second; 0.5 or 2.5: one call every "
    "1/Q s), still lowered by throttling; 0: no pacing at all", "auto or a number ≥ 0", _qps, "calls"))
QPS_START = number("ALI1688_QPS_START", 4, "calls per second an automatic quota starts from when no rate "
                   "was learned before (it doubles every second until the gateway throttles)", group="calls",
                   minimum=0.0, above=True)
RETRY_TIMES = count("ALI1688_RETRY_TIMES", 6, "retries of a throttled or failed call", group="calls")
BACKOFF_BASE = number("ALI1688_BACKOFF_BASE", 0.5, "seconds before the first retry; doubles with each "
                      "(with jitter, twice as long after a throttle)", group="calls")
BACKOFF_MAX = number("ALI1688_BACKOFF_MAX", 30, "the longest wait between retries, in seconds", group="calls")
UNREACHABLE_AFTER = count("ALI1688_UNREACHABLE_AFTER", 20, "stop the crawl when this many calls in a row "
                          "failed to connect before the gateway ever answered", group="calls", minimum=1)
NOT_GATEWAY_AFTER = count("ALI1688_NOT_GATEWAY_AFTER", 10, "stop the crawl when this many replies in a row "
                          "were not 1688 gateway replies (HTML, no JSON: a proxy, a wrong URL)", group="calls",
                          minimum=1)
CALLS_PER_DAY = count("ALI1688_CALLS_PER_DAY", 0, "the app's daily call budget, shared by every crawl of the "
                      "app key (0: none); when it is spent the crawl stops cleanly, exit 0, and the next "
                      "run continues", group="calls")
QUOTA_TZ = _register(Setting(
    "ALI1688_QUOTA_TZ", "Asia/Shanghai", "the time zone whose calendar days ALI1688_CALLS_PER_DAY counts",
    "an IANA time zone name (Asia/Shanghai, UTC)", _zone, "calls"))
USAGE_FILE = text("ALI1688_USAGE_FILE", ".ali1688-usage.json", "where crawls that share no Redis count each "
                  "day's calls for ALI1688_CALLS_PER_DAY (with ALI1688_SHARED_STATE: in Redis)", group="calls")
FRESH_FOR = duration("ALI1688_FRESH_FOR", 0, "ids fetched more recently than this are not requested "
                     "(counted as fresh)", group="calls")

ENABLED = flag("ALI1688_ENABLED", True, "false: switch off the gateway middlewares (signing, quota, replies)",
               group="run")
PROGRESS_INTERVAL = number("ALI1688_PROGRESS_INTERVAL", 30, "seconds between progress lines "
                           "(done/total, rate, ETA; 0: none)", group="run")
STATS_FILE = text("ALI1688_STATS_FILE", "", "write the final stats here as JSON", group="run")
def _fields(value: Any) -> str:
    from .store.fields import Selection  # the product's field names: imported only to check a value

    Selection.parse(str(value))
    return str(value)


FIELDS = _register(Setting(
    "ALI1688_FIELDS", "", "store (and export) only these product fields, e.g. subject,price_tiers,skus.price,stock "
    "(the id, source_api, available and the times are always kept; -a fields=… for one crawl)",
    "a comma-separated list of product fields (python -m ali1688spider settings lists none: see the README)",
    _fields, "run"))
STORE_RAW = flag("ALI1688_STORE_RAW", True, "keep the API payload as received in each product's raw field",
                 group="run")
UNSAVED_DIR = text("ALI1688_UNSAVED_DIR", "unsaved", "where documents MongoDB could not take are saved "
                   "as JSON lines", group="run")
SHARED_STATE = flag("ALI1688_SHARED_STATE", False, "share the token and the quota with other crawls through "
                    "Redis (product_redis always does)", group="redis")

MONGO_ENABLED = flag("MONGO_ENABLED", True, "false: store nothing (a dry run)", group="mongo")
MONGO_URI = text("MONGO_URI", "mongodb://127.0.0.1:27017", "where products go (a password in it is never logged)",
                 group="mongo")
MONGO_DATABASE = text("MONGO_DATABASE", "ali1688", "the database", group="mongo")
MONGO_TIMEOUT_MS = count("MONGO_TIMEOUT_MS", 5000, "how long to wait for the server, in milliseconds",
                         group="mongo", minimum=1)
MONGO_JOURNAL = flag("MONGO_JOURNAL", True, "writes wait for MongoDB's journal (j: true) before a queue entry "
                     "is acked: nothing acked is lost if MongoDB crashes", group="mongo")
MONGO_BATCH_SIZE = count("MONGO_BATCH_SIZE", 25, "products per bulk write (a batch holds raw payloads: "
                         "larger batches cost memory; with 4 batches waiting the crawl waits)", group="mongo",
                         minimum=1)
MONGO_FLUSH_SECONDS = number("MONGO_FLUSH_SECONDS", 2, "write what is buffered at least this often",
                             group="mongo", above=True)
MONGO_RETRY_SECONDS = number("MONGO_RETRY_SECONDS", 60, "how long failed writes are kept and retried before "
                             "the crawl stops", group="mongo")

REDIS_URL = text("REDIS_URL", "redis://127.0.0.1:6379", "the Redis that workers share (queue, token, quota)",
                 group="redis")
REDIS_START_URLS_KEY = text("REDIS_START_URLS_KEY", "%(name)s:start_urls", "scrapy-redis's queue key "
                            "(a Scrapy setting only)", group="redis", environment=False)
LEASE_SECONDS = number("ALI1688_LEASE_SECONDS", 60, "a worker's lease on a queue entry; another worker "
                       "takes it back after that", group="redis", above=True)
QUEUE_MAX_RECLAIMS = count("ALI1688_QUEUE_MAX_RECLAIMS", 3, "an entry taken back more often is set aside "
                           "in KEY:dead as a worker_lost failure (0: never)", group="redis")
QUEUE_POLL_SECONDS = number("ALI1688_QUEUE_POLL_SECONDS", 1, "seconds between looks at an empty queue",
                            group="redis", above=True)
MAX_IDLE_TIME_BEFORE_CLOSE = count("MAX_IDLE_TIME_BEFORE_CLOSE", 0, "scrapy-redis: end a worker after this many "
                                   "seconds with nothing queued or leased (0: wait for more)", group="redis")

MONITOR_MAX_ERROR_RATE = number("ALI1688_MONITOR_MAX_ERROR_RATE", 0.05, "failed calls / ids taken",
                                group="monitoring")
MONITOR_MAX_THROTTLE_RATE = number("ALI1688_MONITOR_MAX_THROTTLE_RATE", 0.02, "throttled replies / calls sent",
                                   group="monitoring")
MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR = number(
    "ALI1688_MONITOR_MAX_TOKEN_REFRESHES_PER_HOUR", 12, "token refreshes per hour of crawl (a crawl under an "
    "hour counts as one hour)", group="monitoring")
MONITOR_MAX_INVALID_RATE = number("ALI1688_MONITOR_MAX_INVALID_RATE", 0.01, "unreadable + invalid products / "
                                  "products returned", group="monitoring")
MONITOR_MAX_P95_MS = number("ALI1688_MONITOR_MAX_P95_MS", 3000, "the gateway's 95th-percentile response time, "
                            "in milliseconds (all calls of the crawl)", group="monitoring")
MONITOR_MAX_SHAPE_CHANGE = number("ALI1688_MONITOR_MAX_SHAPE_CHANGE", 0.05, "share of sampled replies of an API "
                                  "that may carry a key no rule knows, or lack an expected one", group="monitoring")
MONITOR_INTERVAL = number("ALI1688_MONITOR_INTERVAL", 600, "seconds between periodic checks (0: none)",
                          group="monitoring")
ALERT_WEBHOOK = text("ALI1688_ALERT_WEBHOOK", "", "POST a JSON alert here when a monitor fails (only its host "
                     "is ever logged)", group="monitoring", secret=True)
ALERT_TIMEOUT = number("ALI1688_ALERT_TIMEOUT", 5, "seconds for that POST", group="monitoring")
FAIL_ON_ALERT = flag("ALI1688_FAIL_ON_ALERT", False, "`scrapy crawl` exits 3 when a monitor failed",
                     group="monitoring")


def check(settings: SettingsLike | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Read every setting once: raise :class:`SettingError` for the first value that is refused."""
    for setting in REGISTRY.values():
        setting.get(settings, environ)


class SettingsCheck:
    """A Scrapy add-on (``ADDONS``): a crawler whose settings hold a refused value does not start."""

    def update_settings(self, settings: SettingsLike) -> None:
        check(settings)


_SECRET_QUERY = re.compile(r"(?i)([?&;](?:password|passwd|pwd|pass|secret|token|access_token|key)=)([^&;#]*)")
MASK = "***"


def redact_uri(uri: str) -> str:
    """A URI without its password (``user:password@`` or ``?password=``), fit for a log line."""
    uri = _SECRET_QUERY.sub(lambda match: match.group(1) + MASK, uri)
    head, mark, tail = uri.partition("?")
    if "@" not in head:
        return uri
    scheme, _, rest = head.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host}{mark}{tail}"


def secret_values(settings: SettingsLike | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every configured secret, longest first: the values of the secret settings, the passwords in
    ``MONGO_URI`` and ``REDIS_URL`` (``user:password@`` and ``?password=``), and the path and query
    of the alert webhook. What is shorter than 4 characters is left out (masking it would mangle
    every text)."""
    found: set[str] = set()
    for setting in REGISTRY.values():
        if setting.secret:
            found.add(str(setting.get(settings, environ)))
    for setting in (MONGO_URI, REDIS_URL, ALERT_WEBHOOK):
        uri = str(setting.get(settings, environ))
        try:
            parts = urlsplit(uri)
            found.update((parts.password or "", unquote(parts.password or "")))
        except ValueError:
            continue
        found.update(unquote(match.group(2)) for match in _SECRET_QUERY.finditer(uri))
        if setting is ALERT_WEBHOOK:
            found.update((parts.path.strip("/"), parts.query))
    return tuple(sorted((value for value in found if len(value) >= 4), key=len, reverse=True))


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def table(group: str) -> Iterator[str]:
    """The Markdown rows of one group of the README's settings table."""
    yield "| setting | default | meaning |"
    yield "|---|---|---|"
    for setting in REGISTRY.values():
        if setting.group == group:
            yield f"| `{setting.name}` | {_cell(setting.shown_default())} | {setting.meaning} |"


def _cell(text: str) -> str:
    return "unset" if text == "unset" else f"`{text}`"


def markdown() -> str:
    """The README's settings section body, generated from the registry."""
    lines: list[str] = []
    for group, title in GROUPS.items():
        lines += [f"**{title}**", "", *table(group), ""]
    return "\n".join(lines).rstrip() + "\n"


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway settings a crawl needs together (secrets never in its repr)."""

    gateway_url: str
    app_key: str
    app_secret: str = field(repr=False)
    refresh_token: str = field(repr=False, default="")
    access_token: str = field(repr=False, default="")
    token_file: str = ""
    qps: float | None = None  # None: find it; 0: no pacing; else a ceiling

    @classmethod
    def from_settings(cls, settings: SettingsLike | None = None) -> GatewayConfig:
        return cls(
            gateway_url=GATEWAY_URL.get(settings), app_key=APP_KEY.get(settings), app_secret=APP_SECRET.get(settings),
            refresh_token=REFRESH_TOKEN.get(settings), access_token=ACCESS_TOKEN.get(settings),
            token_file=TOKEN_FILE.get(settings), qps=QPS.get(settings),
        )

    def check(self) -> None:
        """Raise :class:`ConfigurationError` naming every missing credential."""
        missing = [setting.name for setting, value in ((APP_KEY, self.app_key), (APP_SECRET, self.app_secret))
                   if not value]
        if not (self.refresh_token or self.access_token or self.token_file):
            missing.append(f"{REFRESH_TOKEN.name} (or {ACCESS_TOKEN.name} / {TOKEN_FILE.name})")
        if missing:
            raise ConfigurationError(
                "missing credentials: set " + ", ".join(missing) + " (environment variables or -s NAME=value)"
            )
