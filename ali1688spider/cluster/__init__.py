"""State that many workers share through Redis (``REDIS_URL``): the token, the quota, the queue.

Switched on by ``ALI1688_SHARED_STATE`` (the ``product_redis`` spider turns it on): then every
worker of an app key uses one access token (refreshed once per expiry, under a Redis lock) and
one quota (slots booked in Redis). The classes are in ``leases``, ``quota`` and ``tokens``.

Nothing here imports redis until a client is made: a crawl that shares no state never loads the
redis package (~6 MB of every such process's memory).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .. import config
from ..aop.tokens import TokenCipher

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["async_redis", "cipher_from_settings", "is_redis_error", "redis_url", "shared_state", "sync_redis"]


def redis_url(settings: Any) -> str:
    return config.REDIS_URL.get(settings)


def sync_redis(settings: Any) -> redis.Redis:
    import redis

    return redis.Redis.from_url(redis_url(settings), socket_timeout=10, socket_connect_timeout=5)


def async_redis(settings: Any) -> redis.asyncio.Redis:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(redis_url(settings), socket_timeout=10, socket_connect_timeout=5)


def shared_state(settings: Any) -> bool:
    return config.SHARED_STATE.get(settings)


def cipher_from_settings(settings: Any) -> TokenCipher:
    return TokenCipher(config.SECRET_KEY.get(settings) or None)


def is_redis_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from redis, without importing it: none can before it is imported."""
    exceptions = sys.modules.get("redis.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.RedisError)
