"""Keep calls inside the app's quota.

A whole quota (``qps`` = 1, 2, 20…): at most ``qps`` call starts in any calendar second, paced
evenly through the first ``window`` of each second (not a burst at its top, and none in its last
~200 ms, so a call cannot slip into the next second at the gateway). Any other positive quota
(0.5, 2.5…): one start every ``1/qps`` seconds, so that no window of W seconds sees more than
``ceil(qps * W) + 1`` starts. A permit is a start time; the caller sleeps until then and sends at
once. A caller that wakes up in a later second than the one it booked books again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol


class QuotaLimiter(Protocol):
    async def acquire(self) -> float:
        """Wait for a permit; return how long the caller waited (seconds)."""
        ...


def woke_too_late(slot: float, late: float) -> bool:
    """Whether a caller ``late`` seconds past its ``slot`` would start its call in a later
    calendar second than the one it booked (a starved process, a long pause): that second's
    slots belong to other calls, so the caller books again instead of adding one more there."""
    return slot - math.floor(slot) + late >= 1.0


class NoQuota:
    """No quota configured: permits at once."""

    async def acquire(self) -> float:
        return 0.0


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
    """The quota of one process."""

    def __init__(
        self, qps: float, *, window: float = 0.8, clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        self.qps = int(qps) if whole(qps) else float(qps)
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._booked: float | None = None

    async def acquire(self) -> float:
        started = self._clock()
        while True:
            now = self._clock()
            slot = slot_after(now, self._booked, self.qps, self.window)
            self._booked = slot
            if slot > now:
                await self._sleep(slot - now)  # type: ignore[misc]
            if not whole(self.qps) or not woke_too_late(slot, self._clock() - slot):
                return self._clock() - started
