"""The project's own settings: one ``ALI1688_*`` prefix, each also read from the environment.

Secrets are read here, once, from the Scrapy settings or the environment variable of the same
name; they are never copied back into settings, stats or logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from scrapy.settings import BaseSettings

DEFAULT_GATEWAY_URL = "https://gw.open.1688.com/openapi"


def setting(settings: BaseSettings, name: str, default: Any = None) -> Any:
    """A setting given to Scrapy (``-s``, settings.py, scrapyd), else the environment, else default."""
    value = settings.get(name)
    if value in (None, ""):
        value = os.environ.get(name)
    return default if value in (None, "") else value


class ConfigurationError(Exception):
    """A setting the user must fix; the message says which and how."""


@dataclass(frozen=True)
class GatewayConfig:
    gateway_url: str
    app_key: str
    app_secret: str = field(repr=False)
    refresh_token: str = field(repr=False, default="")
    access_token: str = field(repr=False, default="")
    token_file: str = ""
    qps: float = 0.0

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> GatewayConfig:
        return cls(
            gateway_url=str(setting(settings, "ALI1688_GATEWAY_URL", DEFAULT_GATEWAY_URL)).rstrip("/"),
            app_key=str(setting(settings, "ALI1688_APP_KEY", "")).strip(),
            app_secret=str(setting(settings, "ALI1688_APP_SECRET", "")).strip(),
            refresh_token=str(setting(settings, "ALI1688_REFRESH_TOKEN", "")).strip(),
            access_token=str(setting(settings, "ALI1688_ACCESS_TOKEN", "")).strip(),
            token_file=str(setting(settings, "ALI1688_TOKEN_FILE", "")),
            qps=float(setting(settings, "ALI1688_QPS", 0) or 0),
        )

    def check(self) -> None:
        """Raise :class:`ConfigurationError` naming every missing credential."""
        missing = [name for name, value in (
            ("ALI1688_APP_KEY", self.app_key), ("ALI1688_APP_SECRET", self.app_secret),
        ) if not value]
        if not (self.refresh_token or self.access_token or self.token_file):
            missing.append("ALI1688_REFRESH_TOKEN (or ALI1688_ACCESS_TOKEN / ALI1688_TOKEN_FILE)")
        if missing:
            raise ConfigurationError(
                "missing credentials: set " + ", ".join(missing)
                + " (environment variables or -s NAME=value)"
            )
        if not self.gateway_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"ALI1688_GATEWAY_URL must be an http(s) URL, got {self.gateway_url!r}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str | float | int) -> float:
    """``90`` (seconds), ``30m``, ``6h``, ``2d`` → seconds; anything else is a ValueError."""
    value = str(text).strip().lower()
    unit = _UNITS.get(value[-1:], None)
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not an age: use seconds or a number with s, m, h or d (e.g. 6h)") from None
    if seconds < 0:
        raise ValueError(f"{text!r}: an age cannot be negative")
    return seconds
