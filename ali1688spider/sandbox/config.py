"""Settings of the gateway emulator, with the demo credentials shared by the demo and the tests.

The demo credentials are not secrets: they only open the emulator on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from .catalogue import DEFAULT_DRIFT_SHARE, check_epoch, drift_threshold
from .quota import WINDOWS as QUOTA_WINDOWS

#: App key, app secret and refresh token the emulator accepts unless told otherwise (they open
#: the loopback emulator only).
DEMO_APP_KEY = "1000000"
DEMO_APP_SECRET = "sandbox-secret"
DEMO_REFRESH_TOKEN = "sandbox-refresh-token"

#: Identity of the (single) authorised 1688 member, as the token endpoint reports it.
DEMO_ALI_ID = "2379510033"
DEMO_RESOURCE_OWNER = "sandbox-shop"
DEMO_MEMBER_ID = "b2b-2379510033"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TOKEN_TTL = 36000.0  # 10 hours, PROTOCOL.md §3
DEFAULT_REFRESH_TTL = 180 * 24 * 3600.0  # about half a year
DEFAULT_CODE_TTL = 120.0  # authorisation codes live 2 minutes
DEFAULT_SLOW_MS = 3000.0
DEFAULT_SEED = 1688
DEFAULT_PUSH_RETRY_SECONDS = 5.0  # a failed push is retried after this, then twice as long each time
DEFAULT_PUSH_ATTEMPTS = 3  # failed push attempts before a message is left to the replay APIs

#: The random fault rates, in the order their ranges are laid on one draw in [0, 1).
FAULT_RATE_FIELDS = (
    "fault_5xx", "fault_isp", "fault_throttle", "fault_throttle200", "fault_malformed", "fault_slow",
)


@dataclass(frozen=True)
class SandboxConfig:
    """Every option of the emulator; the CLI flags of ``python -m ali1688spider.sandbox`` mirror it.

    Times are in seconds unless the name says ``_ms``. A rate is the probability that a call that
    passed every check gets that fault instead of its answer; the rates must add up to at most 1.
    """

    host: str = DEFAULT_HOST
    port: int = 0
    app_key: str = DEMO_APP_KEY
    app_secret: str = DEMO_APP_SECRET
    refresh_token: str = DEMO_REFRESH_TOKEN
    token_ttl: float = DEFAULT_TOKEN_TTL
    refresh_ttl: float = DEFAULT_REFRESH_TTL
    code_ttl: float = DEFAULT_CODE_TTL
    qps: int = 0  # API calls per app key per second; 0 = no quota
    quota_window: str = "second"  # how the quota counts a second: "second" (calendar) or "sliding"
    latency_ms: float = 0.0  # added to every /openapi reply
    latency_jitter_ms: float = 0.0  # mean of a random extra delay (exponential: a network's long tail)
    seed: int = DEFAULT_SEED
    epoch: int = 0  # the catalogue epoch at start (prices and stock drift at epochs > 0)
    drift_share: float = DEFAULT_DRIFT_SHARE  # of the offers that drift at each epoch (catalogue)
    fault_5xx: float = 0.0
    fault_isp: float = 0.0
    fault_throttle: float = 0.0
    fault_throttle200: float = 0.0
    fault_malformed: float = 0.0
    fault_slow: float = 0.0
    slow_ms: float = DEFAULT_SLOW_MS
    usage_limit: int = 0  # API calls served before gw.NoUsageLeftError; 0 = unlimited
    deny_apis: tuple[str, ...] = ()  # API names (or namespace:name) answered gw.APIACLDecline
    max_timestamp_skew: float = 0.0  # reject _aop_timestamp further off the clock; 0 = no check
    access_log: bool = False
    # the message service (push.py): where messages are POSTed ("" = nowhere: all go to replay)
    callback_url: str = ""
    push_delay_ms: float = 0.0  # from a change to its message's first delivery
    push_jitter_ms: float = 0.0  # mean of an exponential extra delay per delivery (reorders them)
    push_duplicate: float = 0.0  # rate of delivered messages that are delivered a second time
    push_fail: float = 0.0  # rate of delivery attempts failed on purpose, without sending
    push_retry_seconds: float = DEFAULT_PUSH_RETRY_SECONDS
    push_attempts: int = DEFAULT_PUSH_ATTEMPTS

    def __post_init__(self) -> None:
        for name in FAULT_RATE_FIELDS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if sum(self.fault_rates()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        for name in ("qps", "usage_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("push_duplicate", "push_fail"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if self.push_attempts < 1:
            raise ValueError("push_attempts must be at least 1")
        drift_threshold(self.drift_share)
        check_callback_url(self.callback_url)
        for name in ("token_ttl", "refresh_ttl", "code_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("latency_ms", "latency_jitter_ms", "slow_ms", "max_timestamp_skew", "push_delay_ms",
                     "push_jitter_ms", "push_retry_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.quota_window not in QUOTA_WINDOWS:
            raise ValueError(f"quota_window must be one of {', '.join(QUOTA_WINDOWS)}")
        check_epoch(self.epoch)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if not self.app_key or not self.app_secret or not self.refresh_token:
            raise ValueError("app_key, app_secret and refresh_token must not be empty")

    def fault_rates(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in FAULT_RATE_FIELDS)

    def public_summary(self) -> dict[str, object]:
        """The settings without the secret and the refresh token (for the stats endpoint)."""
        hidden = {"app_secret", "refresh_token"}
        summary: dict[str, object] = {}
        for item in fields(self):
            if item.name in hidden:
                continue
            value = getattr(self, item.name)
            summary[item.name] = list(value) if isinstance(value, tuple) else value
        return summary


def check_callback_url(url: str) -> None:
    """``ValueError`` unless ``url`` is empty (no push) or an absolute ``http(s)://`` URL."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the callback URL must be an absolute http(s) URL, got {url!r}")
