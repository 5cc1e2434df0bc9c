"""One API quota for every worker of the app: the pacing slots are booked in Redis.

The booking rule is :func:`ali1688spider.gateway.quota.slot_after`, run by Redis as one Lua script on
Redis's own clock (one round trip per call, no clock skew between machines). Rate-limit
libraries answer "allowed now?" and leave the caller to poll, which bunches calls at the top of
each window; booking the next evenly spaced start time is what keeps the gateway at the quota.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from ..gateway.quota import whole, woke_too_late

# KEYS[1] booking key; ARGV[1] qps, ARGV[2] window (s), ARGV[3] 1 for a whole qps (per-second
# slots), 0 for fixed spacing. Returns {slot, now} as text (Lua numbers returned as Redis integers
# would lose their fraction).
BOOK_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local qps = tonumber(ARGV[1])
local booked = tonumber(redis.call('GET', KEYS[1]) or '')
local slot
if ARGV[3] == '1' then
  local spacing = tonumber(ARGV[2]) / qps
  local earliest = now
  if booked and booked + spacing * 0.5 > now then earliest = booked + spacing * 0.5 end
  local second = math.floor(earliest)
  local index = math.ceil((earliest - second) / spacing - 1e-9)
  if index >= qps then second = second + 1; index = 0 end
  slot = second + index * spacing
else
  slot = now
  if booked and booked + 1 / qps > now then slot = booked + 1 / qps end
end
redis.call('SET', KEYS[1], string.format('%.6f', slot), 'EX', math.max(60, math.ceil(2 / qps)))
return {string.format('%.6f', slot), string.format('%.6f', now)}
"""


class RedisQuota:
    """The quota shared by all workers that use the same Redis and app key."""

    def __init__(self, redis: Redis, app_key: str, qps: float, *, window: float = 0.8,
                 prefix: str = "ali1688:quota") -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        self.redis = redis
        self.key = f"{prefix}:{app_key}"
        self.qps = int(qps) if whole(qps) else float(qps)
        self.window = window
        self._script: Any = redis.register_script(BOOK_SLOT)

    async def acquire(self) -> float:
        started = time.monotonic()
        args = [repr(self.qps), self.window, 1 if whole(self.qps) else 0]
        while True:
            asked_at = time.monotonic()  # Redis's `now` is after this: a slow reply counts as lateness
            slot, now = (float(value) for value in await self._script(keys=[self.key], args=args))
            wait = max(0.0, slot - now)  # the slot is on Redis's clock: only durations cross over
            if wait:  # from the reply: never before the slot (the round trip only makes it later)
                await asyncio.sleep(wait)
            if not whole(self.qps) or not woke_too_late(slot, time.monotonic() - asked_at - wait):
                return time.monotonic() - started
