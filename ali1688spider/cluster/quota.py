"""One quota for every worker of the app, in Redis: the pacing slots, the rate and its rule's state.

The booking rule is :func:`ali1688spider.gateway.quota.slot_after`, run by Redis as one Lua script on
Redis's own clock (one round trip per call, no clock skew between machines). Rate-limit
libraries answer "allowed now?" and leave the caller to poll, which bunches calls at the top of
each window; booking the next evenly spaced start time is what keeps the gateway at the quota.

With the adaptive quota (:mod:`ali1688spider.gateway.adaptive`) the rate is not a constant: it is
the ``rate`` field of the rule's state, a Redis hash that every worker's rule changes in a
WATCH/MULTI transaction. The booking script reads it, counts each call in the tally of its
calendar second, and the judging script hands each complete second to exactly one worker. So the
app has one rate and one rule however many workers call (and the state outlives a worker: the
next one to start picks it up).

Keys, under ``ali1688:quota:<app key>``: the hash itself (the state), ``:booked`` (the last slot),
``:s:<second>`` (a second's tally, two minutes) and ``:judged`` (the last second judged).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from ..gateway.adaptive import GRACE
from ..gateway.quota import LOST, OK, THROTTLED, Permit, woke_too_late
from ..gateway.rate import RateState, Tally

STATE_TTL = 600  # the state outlives its last worker by ten minutes; then MongoDB's memory is used
TALLY_TTL = 120

# KEYS[1] booked slot, KEYS[2] state hash; ARGV[1] the rate when the hash has none (a fixed
# quota), ARGV[2] window (s), ARGV[3] tally key prefix, ARGV[4] slack (s). A slot in a later
# second than Redis's now is not booked: {"wait", slot, now, cuts, rate}; else {"slot", …}, with
# the call counted in its second's tally. Numbers travel as text (Lua numbers returned as Redis
# integers would lose their fraction).
BOOK_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local qps = tonumber(redis.call('HGET', KEYS[2], 'rate') or ARGV[1])
local closed = tonumber(redis.call('HGET', KEYS[2], 'closed_until') or '0')
local cuts = redis.call('HGET', KEYS[2], 'cuts') or '0'
local booked = tonumber(redis.call('GET', KEYS[1]) or '')
local slot
if qps >= 1 and qps == math.floor(qps) then
  local spacing = tonumber(ARGV[2]) / qps
  local earliest = math.max(now - tonumber(ARGV[4]), closed)
  if booked and booked + spacing * 0.5 > earliest then earliest = booked + spacing * 0.5 end
  local second = math.floor(earliest)
  local index = math.ceil((earliest - second) / spacing - 1e-9)
  if index >= qps then second = second + 1; index = 0 end
  slot = second + index * spacing
else
  slot = math.max(now, closed)
  if booked and booked + 1 / qps > slot then slot = booked + 1 / qps end
end
local reply = {'slot', string.format('%.6f', slot), string.format('%.6f', now), cuts, tostring(qps)}
if math.floor(slot) > math.floor(now) then
  reply[1] = 'wait'
  return reply
end
redis.call('SET', KEYS[1], string.format('%.6f', slot), 'EX', math.max(60, math.ceil(2 / qps)))
local tally = ARGV[3] .. math.floor(slot)
redis.call('HINCRBY', tally, 'sent', 1)
redis.call('HSETNX', tally, 'rate', tostring(qps))
redis.call('EXPIRE', tally, 120)
return reply
"""

# KEYS[1] last judged second, KEYS[2] state hash; ARGV[1] tally key prefix, ARGV[2] window,
# ARGV[3] grace, ARGV[4] state TTL. Hands out, in order, the seconds whose calls all ended (or
# that are older than the grace), each once; returns {now, state fields…, {second, tally…}…}.
JUDGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local judged = tonumber(redis.call('GET', KEYS[1]) or '')
if not judged or judged < math.floor(now) - 120 then judged = math.floor(now) - 3 end
local ready = {}
local second = judged + 1
while second + tonumber(ARGV[2]) <= now do
  local key = ARGV[1] .. second
  local tally = redis.call('HGETALL', key)
  if #tally > 0 then
    local f = {}
    for i = 1, #tally, 2 do f[tally[i]] = tonumber(tally[i + 1]) end
    local ended = (f.ok or 0) + (f.throttled or 0) + (f.lost or 0)
    if ended < (f.sent or 0) and now < second + 1 + tonumber(ARGV[3]) then break end
    table.insert(ready, {tostring(second), tally})
  end
  judged = second
  second = second + 1
end
redis.call('SET', KEYS[1], tostring(judged), 'EX', 3600)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4])) end
return {string.format('%.6f', now), redis.call('HGETALL', KEYS[2]), ready}
"""

# KEYS[1] state hash; ARGV: TTL, then field, value pairs. Sets the state unless a worker already
# has; returns the state in Redis.
INIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return redis.call('HGETALL', KEYS[1])
"""


def _pairs(fields: Any) -> dict[Any, Any]:
    """A hash as Lua returns it (a flat list) or as redis-py does (a dict)."""
    return dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else dict(fields)


def _tally(fields: Any) -> Tally:
    values = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in _pairs(fields).items()}
    return Tally(sent=int(values.get("sent", 0)), ok=int(values.get("ok", 0)),
                 throttled=int(values.get("throttled", 0)), lost=int(values.get("lost", 0)),
                 rate=values.get("rate", 0.0))


def _state(fields: Any) -> RateState | None:
    return RateState.from_fields(_pairs(fields)) if fields else None


class RedisQuota:
    """The pacer shared by all workers that use the same Redis and app key: a fixed ``qps``, or
    the rate of the rule's state when a :class:`RedisBoard` keeps one under the same key."""

    def __init__(self, redis: Redis, app_key: str, qps: float = 1.0, *, window: float = 0.8,
                 prefix: str = "ali1688:quota", slack: float = 0.002) -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        self.redis = redis
        self.key = f"{prefix}:{app_key}"
        self.qps = qps
        self.window = window
        self.slack = slack
        self.cuts = 0  # the state's cut count as last seen (the board's judging refreshes it)
        self.offset = 0.0  # Redis's clock minus this machine's, from the last booking
        self._script: Any = redis.register_script(BOOK_SLOT)

    async def _book(self) -> tuple[str, float, float, int, float]:
        kind, slot, now, cuts, rate = await self._script(
            keys=[f"{self.key}:booked", self.key],
            args=[repr(self.qps), self.window, f"{self.key}:s:", self.slack])
        text = kind.decode() if isinstance(kind, bytes) else kind
        return text, float(slot), float(now), int(float(cuts)), float(rate)

    async def acquire(self) -> Permit:
        started = time.monotonic()
        while True:
            asked_at = time.monotonic()  # Redis's `now` is after this: a slow reply counts as lateness
            kind, slot, now, cuts, rate = await self._book()
            self.offset = now - time.time()
            wait = max(0.0, (min(slot, math.floor(now) + 1.0) if kind == "wait" else slot) - now)
            if wait:  # the slot is on Redis's clock: only durations cross over
                await asyncio.sleep(wait)
            if kind == "wait":
                continue
            if self.cuts > cuts:  # the rate was cut while this caller slept: book again
                await self._unsend(slot)
                continue
            rate_whole = rate >= 1 and float(rate).is_integer()
            if not rate_whole or not woke_too_late(slot, time.monotonic() - asked_at - wait):
                return Permit(math.floor(slot), time.monotonic() - started)
            await self._unsend(slot)

    async def _unsend(self, slot: float) -> None:
        await self.redis.hincrby(f"{self.key}:s:{math.floor(slot)}", "sent", -1)

    async def replied(self, second: int, outcome: str) -> None:
        return None

    async def close(self) -> None:
        await self.redis.aclose()


class RedisBoard:
    """The rule's state and the tallies in Redis, for :class:`~ali1688spider.gateway.adaptive.AdaptiveQuota`."""

    def __init__(self, redis: Redis, pacer: RedisQuota) -> None:
        self.redis = redis
        self.pacer = pacer
        self.key = pacer.key
        self.state: RateState | None = None
        self._judge: Any = redis.register_script(JUDGE)
        self._init: Any = redis.register_script(INIT)

    async def start(self, initial: RateState) -> RateState:
        """Use the state the app's workers share, or start it with ``initial``."""
        args: list[Any] = [STATE_TTL]
        for name, value in initial.as_fields().items():
            args += [name, value]
        self.state = _state(await self._init(keys=[self.key], args=args))
        assert self.state is not None
        self.pacer.cuts = self.state.cuts
        return self.state

    async def update(self, change: Callable[[RateState], bool]) -> RateState:
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    state = _state(await pipe.hgetall(self.key)) or self.state
                    assert state is not None
                    if change(state):
                        pipe.multi()
                        pipe.hset(self.key, mapping=state.as_fields())
                        pipe.expire(self.key, STATE_TTL)
                        await pipe.execute()
                    else:
                        await pipe.unwatch()
                    break
                except WatchError:  # another worker changed it first: read it again
                    continue
        self.state = state
        self.pacer.cuts = state.cuts
        return state

    async def record(self, second: int, outcome: str) -> Tally:
        field = {OK: "ok", THROTTLED: "throttled", LOST: "lost"}[outcome]
        key = f"{self.key}:s:{second}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, field, 1)
            pipe.hgetall(key)
            _, fields = await pipe.execute()
        return _tally(fields)

    async def finished(self, now: float) -> list[tuple[int, Tally]]:
        redis_now, state, ready = await self._judge(
            keys=[f"{self.key}:judged", self.key],
            args=[f"{self.key}:s:", self.pacer.window, GRACE, STATE_TTL])
        self.pacer.offset = float(redis_now) - time.time()
        current = _state(state)
        if current is not None:
            self.state = current
            self.pacer.cuts = current.cuts
        return [(int(second), _tally(fields)) for second, fields in ready]
