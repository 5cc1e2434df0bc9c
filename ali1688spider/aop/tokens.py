"""OAuth2 tokens of the 1688 gateway (PROTOCOL.md §3): the client, the token and its stores.

The client is synchronous and has an injectable transport and clock; callers on an event loop
run it in a thread (it never touches a reactor).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from .apis import GET_TOKEN, POSTPONE_TOKEN
from .classify import Outcome, classify_response
from .errors import TokenError

#: (url, form fields, timeout seconds) → (HTTP status, body); status 0 = no answer.
Transport = Callable[[str, Mapping[str, str], float], tuple[int, bytes]]

AUTHORIZE_URL = "https://auth.1688.com/oauth/authorize"
_TZ_1688 = timezone(timedelta(hours=8))


def mask(secret: str | None) -> str:
    """Show enough of a secret to tell two apart, never the whole of it."""
    if not secret:
        return "<none>"
    if len(secret) <= 8:
        return "****"
    return f"{secret[:4]}…{secret[-2:]}"


def parse_1688_time(text: str) -> datetime:
    """Parse ``yyyyMMddHHmmssSSS+zzzz`` (e.g. ``20270626174405000+0800``)."""
    return datetime.strptime(text[:14] + text[17:], "%Y%m%d%H%M%S%z").replace(
        microsecond=int(text[14:17]) * 1000
    )


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: float  # epoch seconds
    refresh_token: str | None = None
    refresh_token_expires_at: float | None = None
    ali_id: str | None = None
    member_id: str | None = None
    resource_owner: str | None = None
    issued_at: float | None = None  # epoch seconds, when the gateway granted the access token

    def __repr__(self) -> str:  # never the secrets themselves
        return (
            f"Token(access_token={mask(self.access_token)}, expires_at={self.expires_at:.0f}, "
            f"refresh_token={mask(self.refresh_token)}, member_id={self.member_id!r})"
        )

    __str__ = __repr__

    def lifetime(self) -> float | None:
        """How long the access token was granted for, when known."""
        return None if self.issued_at is None else self.expires_at - self.issued_at

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def describe(self, now: float | None = None) -> str:
        """One line for people: who, and when each part expires (no secret)."""
        now = time.time() if now is None else now
        lines = [
            f"member {self.member_id or '?'} (aliId {self.ali_id or '?'}, login {self.resource_owner or '?'})",
            f"access token {mask(self.access_token)} expires {_when(self.expires_at, now)}",
        ]
        if self.refresh_token:
            expiry = _when(self.refresh_token_expires_at, now)
            lines.append(f"refresh token {mask(self.refresh_token)} expires {expiry}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Token:
        data = json.loads(text)
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})


def _when(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "at an unknown time"
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    left = epoch - now
    return f"at {moment} ({'in ' + _span(left) if left >= 0 else _span(-left) + ' ago'})"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s"


# -- stores ------------------------------------------------------------------------------------

class TokenStore(Protocol):
    def load(self) -> Token | None: ...

    def save(self, token: Token) -> None: ...

    def lock(self) -> AbstractContextManager[object]:
        """Held while a token is refreshed, so that stores shared by many workers see one refresh."""
        ...


class TokenCipher:
    """Encrypts stored tokens at rest with a Fernet key (``ALI1688_SECRET_KEY``); without a key the
    text is stored as it is. Make a key with
    ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``."""

    def __init__(self, key: str | bytes | None = None) -> None:
        self._fernet = None
        if key:
            from cryptography.fernet import Fernet

            try:
                self._fernet = Fernet(key)
            except (ValueError, TypeError):
                raise TokenError("bad_secret_key", "ALI1688_SECRET_KEY is not a Fernet key "
                                 "(32 url-safe base64-encoded bytes)", permanent=True) from None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> bytes:
        data = text.encode("utf-8")
        return self._fernet.encrypt(data) if self._fernet is not None else data

    def open(self, data: bytes) -> str:
        if self._fernet is None:
            if data.startswith(b"gAAAA"):
                raise TokenError("encrypted_store", "the stored token is encrypted: set ALI1688_SECRET_KEY",
                                 permanent=True)
            return data.decode("utf-8")
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(data).decode("utf-8")
        except InvalidToken:
            raise TokenError("bad_secret_key", "the stored token cannot be decrypted with ALI1688_SECRET_KEY "
                             "(wrong key, or a store written without encryption)", permanent=True) from None


class MemoryTokenStore:
    def __init__(self, token: Token | None = None) -> None:
        self._token = token

    def load(self) -> Token | None:
        return self._token

    def save(self, token: Token) -> None:
        self._token = token

    def lock(self) -> AbstractContextManager[object]:
        return nullcontext()


class FileTokenStore:
    """A JSON file readable by its owner only (mode 0600), written to disk (fsync) and replaced
    atomically on save, encrypted when a :class:`TokenCipher` with a key is given. Its lock is an
    OS lock (``flock``) on ``PATH.lock``: crawls in other processes that share the file wait for a
    refresh in progress and then find the new token, rather than spending the refresh token twice."""

    def __init__(self, path: str | os.PathLike[str], cipher: TokenCipher | None = None) -> None:
        self.path = Path(path).expanduser()
        self.cipher = cipher or TokenCipher()

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def load(self) -> Token | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return Token.from_json(self.cipher.open(data))
        except (ValueError, TypeError) as exc:
            raise TokenError("bad_store", f"token file {self.path} is not readable: {exc}", permanent=True) from None

    def save(self, token: Token) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".token-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.cipher.seal(token.to_json()))
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it replaces the old one
            os.replace(tmp, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # and the replacement itself
            finally:
                os.close(directory)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# -- the client --------------------------------------------------------------------------------

def urllib_transport(url: str, form: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 (checked just above)
        url, data=urlencode(form).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (URL is configured)
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, json.dumps({"error_code": "ali1688.ConnectionError", "error_message": str(reason)}).encode()


class TokenClient:
    """Refresh-token grant, authorization-code exchange and postponeToken.

    Transient failures (5xx, timeouts, throttling) are tried ``attempts`` times with a growing
    pause; permanent ones (``invalid_grant``, a wrong secret) raise :class:`TokenError` at once.
    """

    def __init__(
        self, gateway_url: str, app_key: str, app_secret: str, *,
        transport: Transport = urllib_transport, clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep, timeout: float = 15.0,
        attempts: int = 3, backoff: float = 0.5,
    ) -> None:
        if not app_key or not app_secret:
            raise TokenError("missing_credentials", "set ALI1688_APP_KEY and ALI1688_APP_SECRET", permanent=True)
        self.gateway_url = gateway_url.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"TokenClient({self.gateway_url!r}, app_key={self.app_key!r})"

    def authorize_url(self, redirect_uri: str, state: str = "") -> str:
        """The page where the seller authorises the app and receives a one-time code."""
        query = urlencode({"client_id": self.app_key, "site": "1688", "redirect_uri": redirect_uri, "state": state})
        return f"{AUTHORIZE_URL}?{query}"

    def refresh(self, refresh_token: str, previous: Token | None = None) -> Token:
        """A new access token; the refresh token is kept unless the gateway sends a newer one."""
        if not refresh_token:
            raise TokenError("missing_refresh_token", "set ALI1688_REFRESH_TOKEN", permanent=True)
        form = {
            "grant_type": "refresh_token", "client_id": self.app_key,
            "client_secret": self._app_secret, "refresh_token": refresh_token,
        }
        token = self._call(GET_TOKEN.url(self.gateway_url, self.app_key), form)
        kept = previous if previous is not None else Token("", 0.0, refresh_token=refresh_token)
        if token.refresh_token:
            return token
        return replace(
            token, refresh_token=refresh_token,
            refresh_token_expires_at=kept.refresh_token_expires_at,
            ali_id=token.ali_id or kept.ali_id, member_id=token.member_id or kept.member_id,
            resource_owner=token.resource_owner or kept.resource_owner,
        )

    def exchange_code(self, code: str, redirect_uri: str) -> Token:
        form = {
            "grant_type": "authorization_code", "need_refresh_token": "true", "client_id": self.app_key,
            "client_secret": self._app_secret, "redirect_uri": redirect_uri, "code": code,
        }
        return self._call(GET_TOKEN.url(self.gateway_url, self.app_key), form)

    def postpone(self, token: Token) -> Token:
        """Extend a refresh token that is within 30 days of its expiry."""
        if not token.refresh_token:
            raise TokenError("missing_refresh_token", "the token has no refresh token to postpone", permanent=True)
        form = {
            "client_id": self.app_key, "client_secret": self._app_secret,
            "refresh_token": token.refresh_token, "access_token": token.access_token,
        }
        reply = self._post(POSTPONE_TOKEN.url(self.gateway_url, self.app_key), form)
        new_refresh = str(reply.get("refresh_token") or token.refresh_token)
        timeout = reply.get("refresh_token_timeout")
        expires = parse_1688_time(str(timeout)).timestamp() if timeout else token.refresh_token_expires_at
        return replace(token, refresh_token=new_refresh, refresh_token_expires_at=expires)

    def _call(self, url: str, form: Mapping[str, str]) -> Token:
        reply = self._post(url, form)
        access = reply.get("access_token")
        if not access:
            raise TokenError("bad_reply", "the token endpoint answered without an access_token", permanent=False)
        try:
            expires_in = float(str(reply.get("expires_in") or 36000))
            timeout = reply.get("refresh_token_timeout")
            refresh_expires = parse_1688_time(str(timeout)).timestamp() if timeout else None
        except ValueError as exc:
            raise TokenError("bad_reply", f"unreadable expiry in the token reply: {exc}", permanent=False) from None
        now = self._clock()
        return Token(
            access_token=str(access), expires_at=now + expires_in, issued_at=now,
            refresh_token=str(reply["refresh_token"]) if reply.get("refresh_token") else None,
            refresh_token_expires_at=refresh_expires,
            ali_id=_opt_str(reply.get("aliId")), member_id=_opt_str(reply.get("memberId")),
            resource_owner=_opt_str(reply.get("resource_owner")),
        )

    def _post(self, url: str, form: Mapping[str, str]) -> Mapping[str, object]:
        error: TokenError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            status, body = self._transport(url, form, self.timeout)
            result = classify_response(status, body)
            if result.ok:
                return result.payload  # type: ignore[no-any-return]
            permanent = result.outcome in (Outcome.FATAL, Outcome.UNKNOWN, Outcome.BUSINESS)
            error = TokenError(result.error_code or f"HTTP {status}", result.message, permanent=permanent)
            if permanent:
                raise error
        assert error is not None
        raise error


def _opt_str(value: object) -> str | None:
    return None if value in (None, "") else str(value)
