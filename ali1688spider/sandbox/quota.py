"""The per-app quota: at most ``qps`` API calls per app key per second.

Every API call that passed the signature check *arrives*, whether it is then admitted or
throttled. How "per second" is counted is not published, so both plausible readings are here:

- ``second`` (the default): more than ``qps`` calls of the app key arrived in the current calendar
  second (``int(time.time())``) → throttled, so once a second is over its quota every later call
  of that second is throttled too;
- ``sliding``: ``qps`` calls were admitted in the last 1.0 s (a rolling window) → throttled.

The quota can change while the emulator runs (``POST /_sandbox/quota``). The meter also keeps the
peaks the stats report (arrivals per calendar second, arrivals in any sliding 1-second window,
admitted calls per second) and, for charts, the admitted and throttled calls of each of the last
:data:`KEPT_SECONDS` calendar seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOWS = ("second", "sliding")
KEPT_SECONDS = 3600


class _AppMeter:
    __slots__ = ("admitted", "arrived", "passed", "peak_admitted", "peak_second", "peak_sliding", "second", "window")

    def __init__(self) -> None:
        self.second = -1
        self.arrived = 0
        self.admitted = 0
        self.window: deque[float] = deque()  # arrival times in the last second (all calls)
        self.passed: deque[float] = deque()  # admission times in the last second (a sliding quota)
        self.peak_second = 0
        self.peak_sliding = 0
        self.peak_admitted = 0


class Quota:
    def __init__(
        self, qps: int, *, window: str = "second", wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.qps = qps
        self.window = window
        self._wall = wall
        self._clock = clock
        self._apps: dict[str, _AppMeter] = {}
        self._seconds: OrderedDict[int, list[int]] = OrderedDict()  # second → [admitted, throttled]
        self.set(qps, window)

    def set(self, qps: int, window: str | None = None) -> None:
        """Change the quota from the next call on."""
        if qps < 0:
            raise ValueError("qps must not be negative")
        if window is not None and window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
        self.qps = qps
        self.window = window or self.window

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

        if self.window == "sliding":
            passed = meter.passed
            while passed and now - passed[0] >= 1.0:
                passed.popleft()
            over = bool(self.qps) and len(passed) >= self.qps
        else:
            over = bool(self.qps) and meter.arrived > self.qps
        counts = self._seconds.get(second)
        if counts is None:
            counts = self._seconds[second] = [0, 0]
            while len(self._seconds) > KEPT_SECONDS:
                self._seconds.popitem(last=False)
        if over:
            counts[1] += 1
            return False
        counts[0] += 1
        meter.passed.append(now)
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

    def seconds(self) -> list[list[int]]:
        """``[second, admitted, throttled]`` for each recent calendar second with calls."""
        return [[second, *counts] for second, counts in self._seconds.items()]

    def reset(self) -> None:
        self._apps.clear()
        self._seconds.clear()
