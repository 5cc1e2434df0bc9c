"""The access token of a crawl: refreshed before it expires, single-flight, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..aop.errors import TokenError
from ..aop.tokens import Token, TokenClient, TokenStore, mask

logger = logging.getLogger(__name__)

#: Without a known expiry (a token given by hand), assume the platform's 10 hours.
DEFAULT_LIFETIME = 36000.0


class TokenManager:
    """Hands out the current access token; refreshes it early and once for many waiters.

    ``margin`` is how long before expiry a refresh starts: the smaller of ``max_margin`` seconds
    and a fifth of the token's lifetime (so a 2-second test token is not refreshed on every call).
    The blocking token client runs in a thread; concurrent callers share one refresh. A refresh
    holds the store's lock and first looks in the store, so workers that share a store (Redis)
    make one grant per expiry between them and always keep the newest refresh token.
    """

    def __init__(
        self, client: TokenClient, store: TokenStore, *, refresh_token: str = "",
        max_margin: float = 300.0, clock: Callable[[], float] = time.time,
        on_refresh: Callable[[Token], None] | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._refresh_token = refresh_token
        self._max_margin = max_margin
        self._clock = clock
        self._on_refresh = on_refresh
        self._token: Token | None = None  # a stored token is picked up on the first refresh
        self._lifetime = DEFAULT_LIFETIME
        self._refreshing: asyncio.Future[Token] | None = None
        self.refreshes = 0

    @property
    def token(self) -> Token | None:
        return self._token

    def margin(self) -> float:
        return min(self._max_margin, self._lifetime / 5)

    def needs_refresh(self) -> bool:
        token = self._token
        return token is None or token.seconds_left(self._clock()) <= self.margin()

    async def get(self) -> Token:
        """The token to sign with now: after a refresh in progress, never the token it replaces."""
        if self._refreshing is not None:
            return await asyncio.shield(self._refreshing)
        if self.needs_refresh():
            return await self.refresh()
        assert self._token is not None
        return self._token

    async def refresh(self) -> Token:
        """Refresh now; callers that arrive while a refresh runs share its result.

        ``refreshes`` counts completed refreshes: a caller that saw a token error remembers the
        count it signed with and refreshes only if nobody did since.
        """
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._do_refresh())
            self._refreshing.add_done_callback(self._clear_refreshing)
        return await asyncio.shield(self._refreshing)

    def _clear_refreshing(self, _: asyncio.Future[Token]) -> None:
        self._refreshing = None

    async def _do_refresh(self) -> Token:
        previous = self._token
        token, granted = await asyncio.to_thread(self._refresh_under_lock, previous)
        self._token = token
        self._lifetime = token.lifetime() or self._lifetime
        self.refreshes += 1
        if granted:
            logger.info("access token refreshed: %s, valid %.0f s", mask(token.access_token), self._lifetime)
            if self._on_refresh is not None:
                self._on_refresh(token)
        else:
            logger.info("access token %s taken from the shared store", mask(token.access_token))
        return token

    def _refresh_under_lock(self, previous: Token | None) -> tuple[Token, bool]:
        """In a thread: hold the store's lock; use a newer stored token if another worker already
        refreshed, else refresh and save. Returns the token and whether it was granted here."""
        with self._store.lock():
            stored = self._store.load()
            if (
                stored is not None
                and (previous is None or stored.access_token != previous.access_token)
                and stored.seconds_left(self._clock()) > self._margin_for(stored)
            ):
                return stored, False
            base = stored or previous
            refresh_token = (base.refresh_token if base else None) or self._refresh_token
            if not refresh_token:
                raise TokenError("missing_refresh_token", "the access token expired and no refresh token is set "
                                 "(set ALI1688_REFRESH_TOKEN)", permanent=True)
            token = self._client.refresh(refresh_token, base)
            try:
                self._store.save(token)
            except OSError as exc:
                logger.warning("could not save the token: %s", exc)
            return token, True

    def _margin_for(self, token: Token) -> float:
        return min(self._max_margin, (token.lifetime() or self._lifetime) / 5)

    def adopt(self, access_token: str, lifetime: float = DEFAULT_LIFETIME) -> None:
        """Start from a token given by hand (``ALI1688_ACCESS_TOKEN``) if none is stored."""
        if self._token is None and access_token:
            self._token = Token(access_token, self._clock() + lifetime, refresh_token=self._refresh_token or None)
