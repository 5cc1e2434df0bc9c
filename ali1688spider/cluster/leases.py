"""A work queue that loses nothing when a worker dies: entries are leased, not popped.

``take`` moves entries from the list ``KEY`` (where users push ids; scrapy-redis's
``product_redis:start_urls``) into the sorted set ``KEY:leased``, scored by the lease's end.
A worker renews the leases it holds while it works on them and removes (acks) an entry once its
product or failure is stored. Entries whose lease ran out — their worker died — are taken back
with ``reclaim``. Times come from Redis's clock.

An entry that keeps killing its workers (a crash, an out-of-memory kill) would come back forever,
and would take the entries leased with it down each time. So entries taken back go to the list
``KEY:suspects``, and a worker with nothing else in flight takes them one at a time
(``take_alone``; no batch is taken while suspects wait). Only a worker that dies holding an
entry alone counts against that entry (hash ``KEY:reclaims``): healthy entries of a batch are
never blamed for another. Past ``max_reclaims``, ``reclaim`` leases the entry to the reclaiming
worker and returns it, for that worker to record as a failure; ``set_aside`` then moves it to the
list ``KEY:dead``. It leaves its lease only once its failure is stored: a worker killed in
between lets the lease run out, and the next worker sets it aside again.

Urgent entries (offers a change message named) go before the list: ``push_urgent`` queues an
offer in ``KEY:urgent`` (a list of offer ids) with its entry in the hash ``KEY:urgent:entries``,
only if that offer is not waiting there already, so several messages about one offer while it
waits are one fetch. ``take`` leases urgent entries first. Once taken, the offer can be queued
again: a message after the fetch began may describe a change that fetch did not see.

Keys: ``KEY`` (list, users push here), ``KEY:urgent`` (list of offer ids) and
``KEY:urgent:entries`` (hash), ``KEY:leased`` (sorted set, by lease end), ``KEY:suspects``
(list), ``KEY:alone`` (set of entries leased alone), ``KEY:reclaims`` (hash), ``KEY:dead`` (list).
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: list, leased, suspects, urgent, urgent entries; ARGV: how many, lease seconds. Urgent
# entries first; nothing while suspects wait.
TAKE = _NOW + """
if redis.call('LLEN', KEYS[3]) > 0 then return {} end
local wanted = tonumber(ARGV[1])
local items = {}
local ids = redis.call('LRANGE', KEYS[4], 0, wanted - 1)
if #ids > 0 then
  redis.call('LTRIM', KEYS[4], #ids, -1)
  for _, id in ipairs(ids) do
    local entry = redis.call('HGET', KEYS[5], id)
    if entry then
      redis.call('HDEL', KEYS[5], id)
      table.insert(items, entry)
    end
  end
end
if #items < wanted then
  local plain = redis.call('LRANGE', KEYS[1], 0, wanted - #items - 1)
  if #plain > 0 then
    redis.call('LTRIM', KEYS[1], #plain, -1)
    for _, item in ipairs(plain) do table.insert(items, item) end
  end
end
for _, item in ipairs(items) do redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), item) end
return items
"""

# KEYS: urgent, urgent entries; ARGV: offer id, entry, offer id, entry, ... Queues each offer not
# waiting yet; returns the offer ids queued.
PUSH_URGENT = """
local queued = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    table.insert(queued, ARGV[i])
  end
end
return queued
"""

# KEYS: suspects, leased, alone; ARGV: lease seconds. One suspect, leased alone, or nil.
TAKE_ALONE = _NOW + """
local item = redis.call('LPOP', KEYS[1])
if item then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), item)
  redis.call('SADD', KEYS[3], item)
end
return item
"""

# KEYS: leased; ARGV: lease seconds, entries... (only entries still leased are renewed)
RENEW = _NOW + """
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) end
return n
"""

# KEYS: suspects, leased, reclaims, alone; ARGV: at most this many, max reclaims (0: no limit),
# lease seconds. Expired leases become suspects; a death counts against an entry only if it was
# leased alone. One taken back too often is leased anew to the caller, to be recorded as a failure
# and then set aside. Returns {number reclaimed, dead entries...}.
RECLAIM = _NOW + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local limit = tonumber(ARGV[2])
local result = {0}
for _, item in ipairs(expired) do
  local times = tonumber(redis.call('HGET', KEYS[3], item) or '0')
  if redis.call('SREM', KEYS[4], item) == 1 then times = redis.call('HINCRBY', KEYS[3], item, 1) end
  if limit > 0 and times > limit then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), item)
    table.insert(result, item)
  else
    redis.call('ZREM', KEYS[2], item)
    redis.call('RPUSH', KEYS[1], item)
    result[1] = result[1] + 1
  end
end
return result
"""

# KEYS: leased, alone, reclaims, a list; ARGV: 'count' or 'forget', entries. Entries still leased
# leave their lease for the TAIL of the list, their take-backs counted once more (given back at a
# stop: an entry being worked on when its worker stopped must not be the next one every worker
# starts with) or forgotten (set aside for good). Returns how many left.
LEAVE = """
local n = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('SREM', KEYS[2], ARGV[i])
    if ARGV[1] == 'count' then redis.call('HINCRBY', KEYS[3], ARGV[i], 1) else redis.call('HDEL', KEYS[3], ARGV[i]) end
    redis.call('RPUSH', KEYS[4], ARGV[i])
    n = n + 1
  end
end
return n
"""


class LeaseQueue:
    def __init__(self, redis: Redis, key: str, lease_seconds: float = 60.0, max_reclaims: int = 3) -> None:
        self.redis = redis
        self.key = key
        self.leased_key = f"{key}:leased"
        self.reclaims_key = f"{key}:reclaims"
        self.dead_key = f"{key}:dead"
        self.suspects_key = f"{key}:suspects"
        self.alone_key = f"{key}:alone"
        self.urgent_key = f"{key}:urgent"
        self.urgent_entries_key = f"{key}:urgent:entries"
        self.lease_seconds = lease_seconds
        self.max_reclaims = max_reclaims
        self._take = redis.register_script(TAKE)
        self._take_alone = redis.register_script(TAKE_ALONE)
        self._renew = redis.register_script(RENEW)
        self._reclaim = redis.register_script(RECLAIM)
        self._leave = redis.register_script(LEAVE)
        self._push_urgent = redis.register_script(PUSH_URGENT)

    async def push(self, entries: list[bytes]) -> int:
        """Queue more entries (at the end, as ``scrapy enqueue`` does)."""
        return int(await self.redis.rpush(self.key, *entries)) if entries else 0

    async def push_urgent(self, entries: dict[str, bytes]) -> list[str]:
        """Queue ``{offer id: entry}`` before every plain entry; an offer already waiting there
        keeps its entry. Returns the offer ids queued now."""
        if not entries:
            return []
        args = [part for offer_id, entry in entries.items() for part in (offer_id, entry)]
        queued = await self._push_urgent(keys=[self.urgent_key, self.urgent_entries_key], args=args)
        return [item.decode() if isinstance(item, bytes) else str(item) for item in queued]

    async def take(self, count: int) -> list[bytes]:
        """Lease up to ``count`` entries, urgent ones first, as the exact bytes pushed (the
        identity used to ack); none while suspects wait (workers finish what they hold and take
        those alone)."""
        keys = [self.key, self.leased_key, self.suspects_key, self.urgent_key, self.urgent_entries_key]
        items = await self._take(keys=keys, args=[count, self.lease_seconds])
        return [_bytes(item) for item in items]

    async def take_alone(self) -> bytes | None:
        """Lease one suspect (an entry taken back from a worker that died), to be worked on
        alone: if this worker dies too, only that entry is blamed."""
        item = await self._take_alone(keys=[self.suspects_key, self.leased_key, self.alone_key],
                                      args=[self.lease_seconds])
        return None if item is None else _bytes(item)

    async def renew(self, entries: Iterable[bytes]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        return int(await self._renew(keys=[self.leased_key], args=[self.lease_seconds, *entries]))

    async def ack(self, entries: Iterable[bytes]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.leased_key, *entries)
            pipe.hdel(self.reclaims_key, *entries)
            pipe.srem(self.alone_key, *entries)
            acked, _, _ = await pipe.execute()
        return int(acked)

    async def reclaim(self, limit: int = 1000) -> tuple[int, list[bytes]]:
        """Take back expired leases: (how many became suspects, the entries taken back
        more than ``max_reclaims`` times: now leased to the caller, to record as failures and
        then :meth:`set_aside`)."""
        result = await self._reclaim(keys=[self.suspects_key, self.leased_key, self.reclaims_key, self.alone_key],
                                     args=[limit, self.max_reclaims, self.lease_seconds])
        dead = [_bytes(item) for item in result[1:]]
        return int(result[0]), dead

    async def set_aside(self, entries: Iterable[bytes]) -> int:
        """Move dead entries still leased to the caller to ``KEY:dead`` (their failure is stored)."""
        return await self._leave_for(self.dead_key, "forget", entries)

    async def release(self, entries: Iterable[bytes]) -> int:
        """Give leased entries back at once (a worker that stops before finishing them): to the
        tail of the queue, each return counted like a reclaim."""
        return await self._leave_for(self.key, "count", entries)

    async def _leave_for(self, target: str, reclaims: str, entries: Iterable[bytes]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        keys = [self.leased_key, self.alone_key, self.reclaims_key, target]
        return int(await self._leave(keys=keys, args=[reclaims, *entries]))

    async def pending(self) -> tuple[int, int]:
        """(entries waiting in the lists or as suspects, entries leased by some worker)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.key)
            pipe.llen(self.suspects_key)
            pipe.llen(self.urgent_key)
            pipe.zcard(self.leased_key)
            waiting, suspects, urgent, leased = await pipe.execute()
        return int(waiting) + int(suspects) + int(urgent), int(leased)


def _bytes(item: object) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")

