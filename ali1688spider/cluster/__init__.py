"""State that many workers share through Redis (``REDIS_URL``): the token, the quota, the queue.

Switched on by ``ALI1688_SHARED_STATE`` (the ``product_redis`` spider turns it on): then every
worker of an app key uses one access token (refreshed once per expiry, under a Redis lock) and
one quota (slots booked in Redis).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from ..aop.tokens import TokenCipher
from ..config import setting
from .leases import LeaseQueue
from .quota import RedisQuota
from .tokens import RedisTokenStore

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"

__all__ = ["LeaseQueue", "RedisQuota", "RedisTokenStore", "async_redis", "redis_url", "shared_state", "sync_redis"]


def redis_url(settings: Any) -> str:
    return str(setting(settings, "REDIS_URL", DEFAULT_REDIS_URL))


def sync_redis(settings: Any) -> redis.Redis:
    return redis.Redis.from_url(redis_url(settings), socket_timeout=10, socket_connect_timeout=5)


def async_redis(settings: Any) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(redis_url(settings), socket_timeout=10, socket_connect_timeout=5)


def shared_state(settings: Any) -> bool:
    return str(setting(settings, "ALI1688_SHARED_STATE", "")).lower() in ("1", "true", "yes", "on")


def cipher_from_settings(settings: Any) -> TokenCipher:
    return TokenCipher(setting(settings, "ALI1688_SECRET_KEY"))
