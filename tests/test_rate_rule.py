"""The adaptive quota's rule and pacer against a simulated gateway, in virtual time (looptime):
40 seconds of crawling take milliseconds, and every figure the issue asks for is checked exactly.

The simulated gateway throttles like the emulator: past ``Q`` arrivals in a calendar second (or,
``sliding``, ``Q`` admitted in the last second); 32 callers (Scrapy's concurrency) each send a
call, wait ~50 ms for its reply and tell the quota how it ended.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import looptime
import pytest

from ali1688spider.gateway.adaptive import RateSeries, local_adaptive
from ali1688spider.gateway.quota import OK, THROTTLED
from ali1688spider.gateway.rate import MAX_WAIT, RateRule, RateState, Tally

T0 = 1000  # the simulation's first calendar second


@dataclass
class Run:
    admitted: Counter[int]
    throttled: Counter[int]
    rates: dict[int, float]  # the rule's rate at the end of each second
    state: RateState

    def seconds(self, start: float, end: float) -> range:
        return range(T0 + int(start), T0 + int(end))

    def share_throttled(self, start: float = 0, end: float = 40) -> float:
        seconds = self.seconds(start, end)
        throttled = sum(self.throttled[s] for s in seconds)
        return throttled / max(1, throttled + sum(self.admitted[s] for s in seconds))

    def utilisation(self, quota: Callable[[float], float], start: float, end: float = 40) -> float:
        seconds = self.seconds(start, end)
        return sum(self.admitted[s] for s in seconds) / sum(quota(s - T0 + 0.5) for s in seconds)

    def converged_after(self, quota: Callable[[float], float], since: float = 0) -> int:
        """Seconds from ``since`` until the first 5-second stretch at ≥ 85 % of the quota with
        no throttle."""
        for start in range(int(since), 36):
            seconds = self.seconds(start, start + 5)
            if (all(self.throttled[s] == 0 for s in seconds)
                    and sum(self.admitted[s] for s in seconds) >= 0.85 * sum(quota(s - T0 + 0.5) for s in seconds)):
                return start - int(since)
        return 10**6


def simulate(quota: Callable[[float], float], *, seconds: float = 40, ceiling: float = 0.0,
             learned: float = 0.0, found: bool = False, sliding: bool = False, callers: int = 32,
             latency: float = 0.05, seed: int = 1) -> Run:
    """Crawl for ``seconds`` against a gateway whose quota at time t (from the start) is ``quota(t)``."""
    randomness = random.Random(seed)
    admitted: Counter[int] = Counter()
    throttled: Counter[int] = Counter()
    arrivals: Counter[int] = Counter()
    passed: deque[float] = deque()
    rates: dict[int, float] = {}

    async def crawl(loop: asyncio.AbstractEventLoop) -> RateState:
        clock = loop.time
        rule = RateRule(ceiling)
        limiter = local_adaptive(rule, rule.initial(learned, found), clock=clock)
        end = clock() + seconds

        async def caller() -> None:
            while clock() < end:
                permit = await limiter.acquire()
                await asyncio.sleep(latency * randomness.uniform(0.4, 0.6))
                now = clock()
                second, allowed = math.floor(now), quota(now - T0)
                arrivals[second] += 1
                if sliding:
                    while passed and passed[0] <= now - 1.0:
                        passed.popleft()
                    ok = len(passed) < allowed
                    if ok:
                        passed.append(now)
                else:
                    ok = arrivals[second] <= allowed
                (admitted if ok else throttled)[second] += 1
                await asyncio.sleep(latency * randomness.uniform(0.4, 0.6))
                await limiter.replied(permit.second, OK if ok else THROTTLED)

        async def judge() -> None:
            while clock() < end + 1:
                await limiter.tick()
                rates[math.floor(clock())] = limiter.state.rate
                await asyncio.sleep(0.2)

        await asyncio.gather(judge(), *(caller() for _ in range(callers)))
        return limiter.state

    result: list[RateState] = []

    def run() -> None:  # its own thread: the test process's reactor owns this thread's loop
        loop = looptime.new_event_loop(start=float(T0))
        try:
            result.append(loop.run_until_complete(crawl(loop)))
        finally:
            loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return Run(admitted, throttled, rates, result[0])


@pytest.mark.parametrize("quota", [5, 20, 60])
def test_an_unknown_quota_is_found_and_used(quota):
    """The issue's targets: warm-up ≤ 15 s, then ≥ 85 % of the quota with ≤ 3 % throttled, and
    ≤ 8 % throttled over the whole 40 s."""
    run = simulate(lambda t: quota)
    assert run.converged_after(lambda t: quota) <= 15
    assert run.utilisation(lambda t: quota, 15) >= 0.85
    assert run.share_throttled(15) <= 0.03
    assert run.share_throttled() <= 0.08
    assert run.state.learned == quota and run.state.found


def test_a_quota_that_falls_is_followed_within_seconds():
    def quota(t: float) -> int:
        return 20 if t < 20 else 10

    run = simulate(quota)
    assert run.converged_after(quota, since=20) <= 15
    assert {rate for second, rate in run.rates.items() if second >= T0 + 23} <= {10, 11}  # 11: a probe
    assert run.share_throttled(25) <= 0.03


def test_a_raised_quota_is_found_by_probing():
    def quota(t: float) -> int:
        return 10 if t < 10 else 20

    run = simulate(quota, seconds=120)
    first_at_20 = min(second for second, rate in run.rates.items() if rate >= 20) - T0
    assert first_at_20 <= 10 + MAX_WAIT + 25  # probes wait at most MAX_WAIT, then double their step
    assert run.state.learned == 20


def test_a_learned_rate_is_where_the_next_run_starts():
    run = simulate(lambda t: 20, learned=20, found=True, seconds=20)
    assert run.admitted[T0] == 20 and run.throttled[T0] == 0  # no warm-up at all
    assert run.share_throttled() <= 0.03


def test_a_ceiling_is_never_exceeded_and_throttling_below_it_still_cuts():
    high = simulate(lambda t: 20, ceiling=15, seconds=20)
    assert max(high.admitted.values()) == 15 and not high.throttled  # at the ceiling from the start
    low = simulate(lambda t: 6, ceiling=15, seconds=20)
    assert max(c + low.throttled[s] for s, c in low.admitted.items()) <= 15
    assert low.state.rate == 6 and low.state.learned == 6


def test_a_sliding_window_quota_is_used_well_too():
    """How 1688 counts its second is not published: over a rolling second the rule settles a
    little lower (the pacer leaves each second's last 200 ms empty) but still uses most of it."""
    run = simulate(lambda t: 20, sliding=True)
    assert run.utilisation(lambda t: 20, 15) >= 0.75
    assert run.share_throttled() <= 0.05


def test_the_rule_cuts_once_per_second_and_never_below_the_floor():
    rule = RateRule()
    state = rule.initial(learned=3, found=True)
    assert rule.on_throttle(state, 100, Tally(sent=3, ok=0, throttled=1, rate=3), 100.5)
    assert state.rate == 2 and state.closed_until == 101 and state.cuts == 1
    assert not rule.on_throttle(state, 100, Tally(sent=3, ok=0, throttled=2, rate=3), 100.6)  # same second
    assert rule.on_throttle(state, 101, Tally(sent=2, ok=0, throttled=1, rate=2), 101.5)
    assert rule.on_throttle(state, 102, Tally(sent=1, ok=0, throttled=1, rate=1), 102.5)
    assert state.rate == 1  # the floor: a lower quota needs ALI1688_QPS


def test_the_state_travels_as_text_and_back():
    state = RateRule().initial()
    state.closed_until, state.cut_from = 1234.5, 20.0
    encoded = {key.encode(): value.encode() for key, value in state.as_fields().items()}
    assert RateState.from_fields(encoded) == state


def test_the_chart_of_a_long_run_keeps_a_bounded_number_of_points():
    series = RateSeries()
    for second in range(5000):
        series.add(T0 + second, 10, 1 if second % 10 == 0 else 0, 10.0)
    assert len(series.points) <= 720
    assert sum(point[2] for point in series.points) == 50_000 and sum(point[3] for point in series.points) == 500
    assert sum(point[1] for point in series.points) == 5000  # every second covered once
