"""Keep calls inside the app's quota: the pacer.

A whole rate (``qps`` = 1, 2, 20…): at most ``qps`` call starts in any calendar second, paced
evenly through the first ``window`` of each second (not a burst at its top, and none in its last
~200 ms, so a call cannot slip into the next second at the gateway). Any other positive rate
(0.5, 2.5…): one start every ``1/qps`` seconds, so that no window of W seconds sees more than
``ceil(qps * W) + 1`` starts. A permit is a start time; the caller sleeps until then and sends at
once. A caller that wakes up in a later second than the one it booked books again.

The rate comes from a :class:`Schedule`: a fixed one, or the adaptive rule's state
(:mod:`.rate`), which can change the rate from one second to the next, close the rest of the
current second after a throttle, and make callers that booked before a cut book again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: What became of a call, as the pacer's owner hears it (:meth:`QuotaLimiter.replied`).
OK, THROTTLED, LOST = "ok", "throttled", "lost"


@dataclass(frozen=True)
class Permit:
    second: int  # the calendar second the call starts in, on the limiter's clock
    waited: float  # seconds the caller waited for it


class QuotaLimiter(Protocol):
    async def acquire(self) -> Permit:
        """Wait for a permit to start one call."""
        ...

    async def replied(self, second: int, outcome: str) -> None:
        """The call started in ``second`` ended: ``OK`` (any reply but a throttle), ``THROTTLED``
        or ``LOST`` (no reply)."""
        ...

    async def close(self) -> None:
        """Let go of what it holds (a Redis connection) at the end of the crawl."""
        ...


class Schedule(Protocol):
    """Where a pacer reads its rate."""

    rate: float  # calls/s for the permits given from now on
    cuts: int  # how many times the rate was cut: a caller that booked before a cut books again
    closed_until: float  # no call starts before this (the rest of a throttled second)


class FixedRate:
    """One rate for ever (a known quota, the tests)."""

    cuts = 0
    closed_until = 0.0

    def __init__(self, qps: float) -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        self.rate = int(qps) if whole(qps) else float(qps)


def woke_too_late(slot: float, late: float) -> bool:
    """Whether a caller ``late`` seconds past its ``slot`` would start its call in a later
    calendar second than the one it booked (a starved process, a long pause): that second's
    slots belong to other calls, so the caller books again instead of adding one more there."""
    return slot - math.floor(slot) + late >= 1.0


class NoQuota:
    """No quota (``ALI1688_QPS=0``): permits at once."""

    async def acquire(self) -> Permit:
        return Permit(math.floor(time.time()), 0.0)

    async def replied(self, second: int, outcome: str) -> None:
        return None

    async def close(self) -> None:
        return None


def whole(qps: float) -> bool:
    """Whether ``qps`` is paced per calendar second (a whole number of calls) or by fixed spacing."""
    return qps >= 1 and float(qps).is_integer()


def slot_after(now: float, booked: float | None, qps: float, window: float) -> float:
    """The first pacing slot at or after ``now`` and strictly after the last ``booked`` slot.

    A whole ``qps``: slot ``i`` of second ``s`` starts at ``s + i * window / qps`` for ``i < qps``.
    Any other: a slot every ``1 / qps`` seconds. This is the pure booking rule of the local
    limiter; ``cluster/quota.py`` runs the same rule in Redis.
    """
    if not whole(qps):
        return now if booked is None else max(now, booked + 1 / qps)
    spacing = window / qps
    earliest = now if booked is None else max(now, booked + spacing * 0.5)
    second = math.floor(earliest)
    index = math.ceil((earliest - second) / spacing - 1e-9)
    if index >= qps:
        second, index = second + 1, 0
    return second + index * spacing


class PacedQuota:
    """The pacer of one process; ``on_slot(second, rate)`` hears of every permit given.

    A caller books a slot only in the current calendar second: one whose next slot is in a later
    second sleeps until that second begins and looks again. So a new rate paces every slot booked
    after it, and no booking outlives the second it was made in.
    """

    SLACK = 0.002  # a slot this far in the past still counts (a sleeper wakes a little late)

    def __init__(
        self, schedule: Schedule | float, *, window: float = 0.8, clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = asyncio.sleep, on_slot: Callable[[int, float], None] | None = None,
    ) -> None:
        self.schedule: Schedule = schedule if not isinstance(schedule, int | float) else FixedRate(schedule)
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._on_slot = on_slot
        self._booked: float | None = None

    @property
    def qps(self) -> float:
        return self.schedule.rate

    async def acquire(self) -> Permit:
        started = self._clock()
        while True:
            now = self._clock()
            cuts, qps = self.schedule.cuts, self.schedule.rate
            late = self.SLACK if whole(qps) else 0.0
            slot = slot_after(max(now - late, self.schedule.closed_until), self._booked, qps, self.window)
            if math.floor(slot) > math.floor(now):
                await self._sleep(min(slot, math.floor(now) + 1.0) - now)  # type: ignore[misc]
                continue
            self._booked = slot
            if slot > now:
                await self._sleep(slot - now)  # type: ignore[misc]
            if self.schedule.cuts != cuts:
                continue  # the rate was cut while this caller waited: its slot may be over the quota
            if not whole(qps) or not woke_too_late(slot, self._clock() - slot):
                break
        if self._on_slot is not None:
            self._on_slot(math.floor(slot), qps)
        return Permit(math.floor(slot), self._clock() - started)

    async def replied(self, second: int, outcome: str) -> None:
        return None

    async def close(self) -> None:
        return None
