"""A work queue that loses nothing when a worker dies: entries are leased, not popped.

``take`` moves entries from the list ``KEY`` (where users push ids; scrapy-redis's
``product_redis:start_urls``) into the sorted set ``KEY:leased``, scored by the lease's end.
A worker renews the leases it holds while it works on them and removes (acks) an entry once its
product or failure is stored. Entries whose lease ran out — their worker died — go back to the
list with ``reclaim``. Times come from Redis's clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: list, leased; ARGV: how many, lease seconds
TAKE = _NOW + """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  for _, item in ipairs(items) do redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), item) end
end
return items
"""

# KEYS: leased; ARGV: lease seconds, entries... (only entries still leased are renewed)
RENEW = _NOW + """
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) end
return n
"""

# KEYS: list, leased; ARGV: at most this many. Expired leases go back to the head of the list.
RECLAIM = _NOW + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, item in ipairs(expired) do
  redis.call('ZREM', KEYS[2], item)
  redis.call('LPUSH', KEYS[1], item)
end
return #expired
"""

# KEYS: list, leased; ARGV: entries. Entries still leased go back to the head of the list now.
RELEASE = """
local n = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then redis.call('LPUSH', KEYS[1], ARGV[i]); n = n + 1 end
end
return n
"""


class LeaseQueue:
    def __init__(self, redis: Redis, key: str, lease_seconds: float = 60.0) -> None:
        self.redis = redis
        self.key = key
        self.leased_key = f"{key}:leased"
        self.lease_seconds = lease_seconds
        self._take = redis.register_script(TAKE)
        self._renew = redis.register_script(RENEW)
        self._reclaim = redis.register_script(RECLAIM)
        self._release = redis.register_script(RELEASE)

    async def take(self, count: int) -> list[bytes]:
        """Lease up to ``count`` entries, as the exact bytes pushed (the identity used to ack)."""
        items = await self._take(keys=[self.key, self.leased_key], args=[count, self.lease_seconds])
        return [item if isinstance(item, bytes) else str(item).encode("utf-8") for item in items]

    async def renew(self, entries: Iterable[bytes]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        return int(await self._renew(keys=[self.leased_key], args=[self.lease_seconds, *entries]))

    async def ack(self, entries: Iterable[bytes]) -> int:
        entries = list(entries)
        return int(await self.redis.zrem(self.leased_key, *entries)) if entries else 0

    async def reclaim(self, limit: int = 1000) -> int:
        return int(await self._reclaim(keys=[self.key, self.leased_key], args=[limit]))

    async def release(self, entries: Iterable[bytes]) -> int:
        """Give leased entries back at once (a worker that stops before finishing them)."""
        entries = list(entries)
        return int(await self._release(keys=[self.key, self.leased_key], args=entries)) if entries else 0

    async def pending(self) -> tuple[int, int]:
        """(entries waiting in the list, entries leased by some worker)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.key)
            pipe.zcard(self.leased_key)
            waiting, leased = await pipe.execute()
        return int(waiting), int(leased)

