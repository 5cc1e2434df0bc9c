"""One token for every worker: the token lives in Redis (Fernet-encrypted when
``ALI1688_SECRET_KEY`` is set) and a Redis lock lets one worker at a time refresh it."""

from __future__ import annotations

from contextlib import AbstractContextManager

from redis import Redis

from ..aop.errors import TokenError
from ..aop.tokens import Token, TokenCipher


class RedisTokenStore:
    def __init__(self, redis: Redis, app_key: str, cipher: TokenCipher | None = None, *,
                 prefix: str = "ali1688:token", lock_timeout: float = 60.0) -> None:
        self.redis = redis
        self.key = f"{prefix}:{app_key}"
        self.cipher = cipher or TokenCipher()
        self.lock_timeout = lock_timeout

    def load(self) -> Token | None:
        data = self.redis.get(self.key)
        if data is None:
            return None
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8")
        try:
            return Token.from_json(self.cipher.open(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # not a token a worker wrote
            raise TokenError("bad_store", f"the token in Redis ({self.key}) is not readable: "
                             f"{type(exc).__name__}; delete the key to start afresh", permanent=True) from None

    def save(self, token: Token) -> None:
        # keep the newest refresh token even when this grant did not return one
        self.redis.set(self.key, self.cipher.seal(token.to_json()))

    def lock(self) -> AbstractContextManager[object]:
        """Held while refreshing; expires by itself if its holder dies."""
        return self.redis.lock(f"{self.key}:refresh", timeout=self.lock_timeout,
                               blocking_timeout=self.lock_timeout + 5)
