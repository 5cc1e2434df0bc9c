"""The adaptive quota: the pacer, driven by the rate rule from what the gateway answers.

:class:`AdaptiveQuota` is the crawl's :class:`~.quota.QuotaLimiter` unless ``ALI1688_QPS=0``. It
gives permits through a pacer, hears how every call ended, and applies the rule of :mod:`.rate`:
at once on the first throttle of a second, and when a second is complete. Where the rule's state
and the per-second tallies live is a :class:`Board`: this process's memory
(:class:`LocalBoard`), or Redis for all the workers of an app
(:class:`ali1688spider.cluster.quota.RedisBoard`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .quota import LOST, OK, THROTTLED, PacedQuota, Permit, QuotaLimiter
from .rate import RateRule, RateState, Tally

GRACE = 5.0  # a second whose calls have not all ended this long after it is judged as it stands
SERIES_POINTS = 720  # the run's chart keeps at most this many points (merged pairwise beyond)


class Board(Protocol):
    """Where the rule's state and the tallies of each second live."""

    async def start(self, initial: RateState) -> RateState:
        """The state to start from: ``initial``, or the one other workers already share."""
        ...

    async def update(self, change: Callable[[RateState], bool]) -> RateState:
        """Apply ``change`` to the state atomically (it returns whether it changed anything)."""
        ...

    async def record(self, second: int, outcome: str) -> Tally:
        """Count how one call of ``second`` ended; the tally of that second so far."""
        ...

    async def finished(self, now: float) -> list[tuple[int, Tally]]:
        """Seconds ready to be judged, each handed out once (to one worker of many)."""
        ...


class LocalBoard:
    """The state and tallies of one process; the state is also the pacer's schedule."""

    def __init__(self, state: RateState, *, window: float = 0.8) -> None:
        self.state = state  # also the pacer's schedule: changed in place
        self.window = window
        self.tallies: dict[int, Tally] = {}

    async def start(self, initial: RateState) -> RateState:
        for name, value in vars(initial).items():
            setattr(self.state, name, value)
        return self.state

    def sent(self, second: int, rate: float) -> None:
        tally = self.tallies.get(second)
        if tally is None:
            tally = self.tallies[second] = Tally(rate=rate)
        tally.sent += 1

    async def update(self, change: Callable[[RateState], bool]) -> RateState:
        change(self.state)
        return self.state

    async def record(self, second: int, outcome: str) -> Tally:
        tally = self.tallies.get(second)
        if tally is None:  # a call of a second already judged (answered after GRACE)
            return Tally()
        if outcome == OK:
            tally.ok += 1
        elif outcome == THROTTLED:
            tally.throttled += 1
        else:
            tally.lost += 1
        return tally

    async def finished(self, now: float) -> list[tuple[int, Tally]]:
        ready = [(second, tally) for second, tally in sorted(self.tallies.items())
                 if now >= second + self.window and (tally.complete or now >= second + 1 + GRACE)]
        for second, _ in ready:
            del self.tallies[second]
        return ready


@dataclass
class RateSeries:
    """The run's calls per second, throttles and rate, for the report's chart: ``points`` are
    ``[start second, seconds covered, calls started, throttled, rate]``."""

    points: list[list[float]] = field(default_factory=list)
    span: int = 1  # seconds per point; doubles when the list is full

    def add(self, second: int, sent: int, throttled: int, rate: float) -> None:
        last = self.points[-1] if self.points else None
        if last is not None and second < last[0] + self.span:
            last[2] += sent
            last[3] += throttled
            last[4] = rate
            last[1] = second - last[0] + 1
            return
        self.points.append([second, 1, sent, throttled, rate])
        if len(self.points) > SERIES_POINTS:
            self.span *= 2
            merged = []
            for index in range(0, len(self.points), 2):
                pair = self.points[index:index + 2]
                first, end = pair[0], pair[-1]
                merged.append([first[0], end[0] + end[1] - first[0], sum(p[2] for p in pair),
                               sum(p[3] for p in pair), end[4]])
            self.points = merged


class AdaptiveQuota:
    """Permits at the rule's rate; the rule hears every reply. Also the crawl's view of the rate:
    ``state`` (the last seen), ``series`` (this process's calls) and counters for the stats."""

    def __init__(self, rule: RateRule, board: Board, pacer: QuotaLimiter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.rule = rule
        self.board = board
        self.pacer = pacer
        self._clock = clock  # the pacer's clock (Redis's, for workers that share one)
        self.state: RateState = rule.initial()
        self.series = RateSeries()
        self._mine: dict[int, list[int]] = {}  # this process's [sent, throttled] per second
        self.raised = 0
        self.cut = 0

    async def start(self, initial: RateState) -> None:
        self.state = await self.board.start(initial)

    async def acquire(self) -> Permit:
        permit = await self.pacer.acquire()
        self._mine.setdefault(permit.second, [0, 0])[0] += 1
        return permit

    async def replied(self, second: int, outcome: str) -> None:
        if outcome not in (OK, THROTTLED, LOST):
            raise ValueError(f"unknown outcome {outcome!r}")
        tally = await self.board.record(second, outcome)
        if outcome != THROTTLED:
            return
        if second in self._mine:
            self._mine[second][1] += 1
        if tally.throttled == 1:  # the first of its second: cut now
            now = self._clock()
            changed = False

            def cut(state: RateState) -> bool:
                nonlocal changed
                changed = self.rule.on_throttle(state, second, tally, now)
                return changed

            self.state = await self.board.update(cut)
            self.cut += changed

    async def tick(self) -> None:
        """Judge the seconds that are complete, and chart this process's finished seconds."""
        now = self._clock()
        for second, tally in await self.board.finished(now):
            raised = False

            def judge(state: RateState, second: int = second, tally: Tally = tally) -> bool:
                nonlocal raised
                before = state.rate
                changed = self.rule.on_second(state, second, tally, now)
                raised = changed and state.rate > before
                return changed

            self.state = await self.board.update(judge)
            self.raised += raised
        self._chart(until=now - 1 - GRACE)

    def _chart(self, until: float) -> None:
        """Move this process's seconds before ``until`` into the chart."""
        for second in sorted(self._mine):
            if second > until:
                break
            sent, throttled = self._mine.pop(second)
            self.series.add(second, sent, throttled, self.state.rate)

    async def close(self) -> None:
        await self.pacer.close()

    def flush_series(self) -> RateSeries:
        """The chart with every second so far (at the end of the crawl)."""
        self._chart(until=math.inf)
        return self.series


def local_adaptive(rule: RateRule, initial: RateState, *, clock: Callable[[], float] = time.time) -> AdaptiveQuota:
    """The adaptive quota of one process."""
    board = LocalBoard(initial)
    pacer = PacedQuota(board.state, clock=clock, on_slot=board.sent)
    quota = AdaptiveQuota(rule, board, pacer, clock=clock)
    quota.state = initial
    return quota
