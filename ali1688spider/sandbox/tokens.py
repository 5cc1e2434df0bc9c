"""OAuth2 state of the emulator: access tokens, refresh tokens and authorisation codes.

Access tokens are uuid4 strings that live ``token_ttl`` seconds; a newer token does not end an
older one. Refresh tokens live ``refresh_ttl`` seconds (wall clock, reported as
``refresh_token_timeout``). Codes are single-use and live ``code_ttl`` seconds.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .config import SandboxConfig

CHINA = timezone(timedelta(hours=8))
_PURGE_ABOVE = 1000  # expired tokens are forgotten once this many are held


def format_timeout(epoch_seconds: float) -> str:
    """Epoch seconds → ``yyyyMMddHHmmssSSS+0800`` (the gateway's ``refresh_token_timeout``)."""
    moment = datetime.fromtimestamp(epoch_seconds, CHINA)
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}+0800"


@dataclass(frozen=True)
class Grant:
    access_token: str | None
    expires_in: str | None
    refresh_token: str | None  # only when a refresh token was issued by this call
    refresh_token_timeout: str


class TokenRegistry:
    def __init__(
        self, config: SandboxConfig, *, clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._clock = clock
        self._wall = wall
        self._access: dict[str, float] = {}  # token → monotonic expiry
        self._refresh: dict[str, float] = {}  # token → wall-clock expiry
        self._codes: dict[str, tuple[float, str]] = {}  # code → (monotonic expiry, redirect_uri)
        self._refresh[config.refresh_token] = wall() + config.refresh_ttl
        self.expires_in = str(math.ceil(config.token_ttl))

    # -- access tokens ----------------------------------------------------------------------

    def access_problem(self, token: str | None) -> str | None:
        """``None`` for a valid access token, else ``"missing"``, ``"unknown"`` or ``"expired"``."""
        if not token:
            return "missing"
        expiry = self._access.get(token)
        if expiry is None:
            return "unknown"
        return "expired" if self._clock() >= expiry else None

    def _mint_access(self) -> str:
        now = self._clock()
        if len(self._access) > _PURGE_ABOVE:
            self._access = {t: e for t, e in self._access.items() if e > now}
        token = str(uuid.uuid4())
        self._access[token] = now + self._config.token_ttl
        return token

    # -- refresh tokens ---------------------------------------------------------------------

    def refresh_valid(self, token: str) -> bool:
        expiry = self._refresh.get(token)
        return expiry is not None and self._wall() < expiry

    def _mint_refresh(self) -> str:
        token = str(uuid.uuid4())
        self._refresh[token] = self._wall() + self._config.refresh_ttl
        return token

    def grant_refresh(self, refresh_token: str) -> Grant | None:
        """A ``refresh_token`` grant: a new access token, no new refresh token."""
        if not self.refresh_valid(refresh_token):
            return None
        return Grant(self._mint_access(), self.expires_in, None, format_timeout(self._refresh[refresh_token]))

    def postpone(self, refresh_token: str) -> Grant | None:
        """``postponeToken``: a new refresh token with a fresh lifetime; the old one stays valid."""
        if not self.refresh_valid(refresh_token):
            return None
        new = self._mint_refresh()
        return Grant(None, None, new, format_timeout(self._refresh[new]))

    def revoke(self, *, refresh: bool = True, access: bool = False) -> None:
        """Forget refresh tokens (later grants answer ``invalid_grant``) and/or access tokens."""
        if refresh:
            self._refresh.clear()
            self._codes.clear()
        if access:
            self._access.clear()

    # -- authorisation codes ----------------------------------------------------------------

    def new_code(self, redirect_uri: str) -> str:
        now = self._clock()
        self._codes = {c: v for c, v in self._codes.items() if v[0] > now}
        code = secrets.token_hex(16)
        self._codes[code] = (now + self._config.code_ttl, redirect_uri)
        return code

    def grant_code(self, code: str, redirect_uri: str | None, *, with_refresh: bool = True) -> Grant | None:
        """An ``authorization_code`` grant. The code is used up even when the grant fails on the
        redirect URI; a given ``redirect_uri`` must be the one the code was issued for."""
        entry = self._codes.pop(code, None)
        if entry is None or self._clock() >= entry[0]:
            return None
        if redirect_uri and redirect_uri != entry[1]:
            return None
        refresh = self._mint_refresh()
        return Grant(self._mint_access(), self.expires_in, refresh if with_refresh else None,
                     format_timeout(self._refresh[refresh]))
