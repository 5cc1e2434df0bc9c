"""The daily call budget of an app key, shared by every worker through Redis: one counter per
calendar day (``ali1688:calls:<app key>:<YYYY-MM-DD>``, kept for three days), reserved in blocks
by one Lua script so that no two workers can take the same last calls."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

# KEYS[1] the day's counter; ARGV[1] calls wanted, ARGV[2] the day's limit. Returns calls granted.
RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
if granted > 0 then redis.call('INCRBY', KEYS[1], granted) end
redis.call('EXPIRE', KEYS[1], 259200)
return granted
"""

# KEYS[1] the day's counter; ARGV[1] calls reserved and not sent.
GIVE_BACK = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('SET', KEYS[1], math.max(0, used - tonumber(ARGV[1])), 'KEEPTTL')
return 0
"""


class RedisLedger:
    def __init__(self, redis: Redis, app_key: str, prefix: str = "ali1688:calls") -> None:
        self.redis = redis
        self.prefix = f"{prefix}:{app_key}"
        self._reserve: Any = redis.register_script(RESERVE)
        self._give_back: Any = redis.register_script(GIVE_BACK)

    def key(self, day: str) -> str:
        return f"{self.prefix}:{day}"

    async def reserve(self, day: str, wanted: int, limit: int) -> int:
        return int(await self._reserve(keys=[self.key(day)], args=[wanted, limit]))

    async def give_back(self, day: str, unused: int) -> None:
        await self._give_back(keys=[self.key(day)], args=[unused])
