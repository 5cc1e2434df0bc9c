"""The per-app quota: at most ``qps`` API calls per app key per calendar second.

Every API call that passed the signature check *arrives*, whether it is then admitted or
throttled. A call is throttled when more than ``qps`` calls of its app key arrived in the
current calendar second (``int(time.time())``), so once a second is over its quota every later
call of that second is throttled too. The meter also keeps the peaks the stats report: arrivals
per calendar second, arrivals in any sliding 1-second window, and admitted calls per second.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class _AppMeter:
    __slots__ = ("admitted", "arrived", "peak_admitted", "peak_second", "peak_sliding", "second", "window")

    def __init__(self) -> None:
        self.second = -1
        self.arrived = 0
        self.admitted = 0
        self.window: deque[float] = deque()
        self.peak_second = 0
        self.peak_sliding = 0
        self.peak_admitted = 0


class Quota:
    def __init__(
        self, qps: int, *, wall: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.qps = qps
        self._wall = wall
        self._clock = clock
        self._apps: dict[str, _AppMeter] = {}

    def arrive(self, app_key: str) -> bool:
        """Record one API call of ``app_key``; ``False`` when it must be throttled."""
        meter = self._apps.get(app_key)
        if meter is None:
            meter = self._apps[app_key] = _AppMeter()
        second = int(self._wall())
        if second != meter.second:
            meter.second, meter.arrived, meter.admitted = second, 0, 0
        meter.arrived += 1
        meter.peak_second = max(meter.peak_second, meter.arrived)

        now = self._clock()
        window = meter.window
        window.append(now)
        while now - window[0] >= 1.0:
            window.popleft()
        meter.peak_sliding = max(meter.peak_sliding, len(window))

        if self.qps and meter.arrived > self.qps:
            return False
        meter.admitted += 1
        meter.peak_admitted = max(meter.peak_admitted, meter.admitted)
        return True

    def peaks(self) -> dict[str, int]:
        """The highest counts over all app keys since the last :meth:`reset`."""
        meters = self._apps.values()
        return {
            "max_per_second": max((m.peak_second for m in meters), default=0),
            "max_per_sliding_second": max((m.peak_sliding for m in meters), default=0),
            "max_admitted_per_second": max((m.peak_admitted for m in meters), default=0),
        }

    def reset(self) -> None:
        self._apps.clear()
