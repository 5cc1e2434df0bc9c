"""Find the app's quota when nobody publishes it: the rule that sets the call rate.

The gateway throttles calls past a quota it never states (``gw.QosAppFrequencyLimit``). The pacer
(:mod:`.quota`) spaces the calls of each calendar second evenly at a rate; this rule moves that
rate from what the gateway answered, one calendar second at a time (a :class:`Tally` of the calls
started in that second):

- **Search.** With nothing known, the rate starts at :data:`START` and doubles from the next
  second after each second in which the pacer was the limit (:func:`saturated`) and nothing was
  throttled.
- **Cut, at once.** The first throttled reply of a second closes that second (no more calls in
  it) and sets the rate to what the gateway admitted in it so far, never below :data:`CUT` (¾)
  of the rate: with the quota counted per calendar second and the rate no more than a third
  over it, that is the quota itself; from further above it takes more than one cut. When the second is
  complete and more calls passed than were counted at the cut, the rate goes up to that count.
- **Probe.** After ``wait`` clean saturated seconds the rate goes up one ``step``. A probe that
  passes :data:`PROBE_SECONDS` full seconds is kept (one clean second may only mean that a call
  slipped into the next second), doubles the step and probes again two seconds later (a raised
  quota is found quickly); a throttled probe is cut back and the wait doubles (up to
  :data:`MAX_WAIT`), so a stable quota costs fewer and fewer throttled calls.
- **A ceiling** (``ALI1688_QPS=N``) is never exceeded; throttling below it still cuts.

Known limit: every throttle reads as "over the quota". A gateway that throttles calls at random,
whatever the rate (a flaky gateway, another client sharing the quota in bursts), gets cut again
and again, down to one call a second. Telling the two apart (a quota throttles the tail of a
second, noise falls anywhere) is not done yet.

A change applies to the next permit; the seconds after it are judged at the new rate. The rule is
pure: the state is a small record that one process keeps in memory and many workers keep in Redis
(:mod:`ali1688spider.cluster.quota`), so one rule drives the app however many workers call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

START = 4.0  # calls/s when nothing is known: conservative, and doubling finds 60 calls/s in ~8 s
FLOOR = 1.0  # the adaptive rate never goes below one call a second (a lower quota needs a ceiling)
PROBE_AFTER = 10  # clean saturated seconds at a found rate before the first probe upwards
PROBE_SECONDS = 2  # full clean seconds at a probe's rate before it is kept
MAX_WAIT = 30  # the longest wait between probes after failed ones (seconds at the rate)
SATURATED = 0.9  # a second used at least this share of its rate's calls: the pacer was the limit
CUT = 0.75  # a cut keeps at least this share of the rate (the quota may be a sliding window)


@dataclass
class Tally:
    """The calls started (permits given) in one calendar second, and how they ended."""

    sent: int = 0
    ok: int = 0  # any reply that was not a throttle
    throttled: int = 0
    lost: int = 0  # no reply (an exception, a stop): neither ok nor throttled
    rate: float = 0.0  # the rate the second was paced at

    @property
    def complete(self) -> bool:
        return self.ok + self.throttled + self.lost >= self.sent


@dataclass
class RateState:
    """Where the rule stands; every field is a number (it travels as a Redis hash)."""

    rate: float  # calls/s now
    effective: int = 0  # the first calendar second paced wholly at ``rate`` (judged for raises)
    learned: float = 0.0  # the highest rate known to pass (0: none yet)
    found: int = 0  # 1 once a throttle bounded ``learned`` (the quota is known, not only a floor)
    searching: int = 1  # 1 until the first throttle: doubling
    clean: int = 0  # clean saturated seconds since the last change
    wait: int = PROBE_AFTER  # clean seconds before the next probe
    step: float = 1.0
    probing: int = 0  # from 1 while the current rate is a probe: 1 + its full clean seconds
    cut_second: int = -1  # the second of the last cut
    cut_from: float = 0.0  # the rate before that cut
    cuts: int = 0  # how many cuts so far (callers that booked before a cut book again)
    closed_until: float = 0.0  # no call starts before this: the rest of a throttled second

    def as_fields(self) -> dict[str, str]:
        return {key: repr(value) for key, value in asdict(self).items()}

    @classmethod
    def from_fields(cls, data: dict[Any, Any]) -> RateState:
        decoded = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                   for k, v in data.items()}
        kinds = {item.name: item.type for item in fields(cls)}
        return cls(**{name: (float(value) if kinds[name] == "float" else int(float(value)))
                      for name, value in decoded.items() if name in kinds})


def whole_rate(rate: float) -> float:
    """Rates of one call a second or more are whole numbers (paced per calendar second)."""
    return float(math.floor(rate + 1e-9)) if rate >= 1 else rate


def saturated(tally: Tally) -> bool:
    return tally.rate > 0 and tally.sent >= max(1, math.floor(tally.rate * SATURATED))


def probe_step(rate: float) -> float:
    return max(1.0, whole_rate(rate * 0.05))


class RateRule:
    """The rule, for one app (or one API); ``ceiling`` is ``ALI1688_QPS`` when it is set."""

    def __init__(self, ceiling: float = 0.0, *, start: float = START, floor: float = FLOOR) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling) if ceiling else floor
        self.start_rate = start

    def _bounded(self, rate: float) -> float:
        rate = max(self.floor, rate)
        if self.ceiling:
            rate = min(self.ceiling, rate)
        return whole_rate(rate) if not self.ceiling or rate < self.ceiling else rate

    def initial(self, learned: float = 0.0, found: bool = False) -> RateState:
        """The state a crawl starts from: the rate learned before (``found``: bounded by a throttle,
        else only known to pass), the ceiling, or :data:`START`."""
        if learned > 0:
            rate = self._bounded(learned)
            searching = not found and not (self.ceiling and rate >= self.ceiling)
            return RateState(rate=rate, learned=rate if found else 0.0, found=int(found),
                             searching=int(searching), step=probe_step(rate))
        if self.ceiling:
            rate = self._bounded(self.ceiling)
            return RateState(rate=rate, searching=0, step=probe_step(rate))
        rate = self._bounded(self.start_rate)
        return RateState(rate=rate, step=probe_step(rate))

    def on_throttle(self, state: RateState, second: int, tally: Tally, now: float) -> bool:
        """A call started in ``second`` was throttled (``tally``: that second so far): cut at once,
        once per second."""
        if second <= state.cut_second:
            return False
        current = state.rate
        target = max(tally.ok, current * CUT)
        if target >= current:
            target = current - 1 if current > 1 else current * 0.5
        new = self._bounded(target)
        if state.probing:  # the probe failed: back off the next one
            state.wait = min(MAX_WAIT, 2 * max(state.wait, PROBE_AFTER))
        elif not state.searching:
            state.wait = PROBE_AFTER
        state.rate = new
        state.effective = math.floor(now) + 1
        state.learned, state.found, state.searching, state.probing = new, 1, 0, 0
        state.clean, state.step = 0, probe_step(new)
        state.cut_second, state.cut_from = second, current
        state.closed_until = max(state.closed_until, second + 1.0)
        state.cuts += 1
        return True

    def on_second(self, state: RateState, second: int, tally: Tally, now: float) -> bool:
        """``second`` is complete (every call answered, or given up on): raise the rate if it earned
        it, or correct the cut made while it was running. Returns whether the state changed."""
        if second == state.cut_second:
            if state.rate < tally.ok < state.cut_from and not state.probing:
                self._raise(state, tally.ok, now)  # more passed than was counted at the cut
                state.learned = state.rate
                return True
            return False
        if tally.throttled or second < state.effective or not saturated(tally):
            return False  # a cut handled it / an older rate / the crawl, not the pacer, was the limit
        if self.ceiling and state.rate >= self.ceiling:
            state.learned = max(state.learned, state.rate)
            return False
        if state.searching:
            state.learned = max(state.learned, tally.rate)
            self._raise(state, tally.rate * 2, now)
            return True
        if state.probing:  # a probe kept after PROBE_SECONDS full clean seconds; the next comes soon
            if tally.sent < tally.rate:
                return False
            state.probing += 1
            if state.probing <= PROBE_SECONDS:  # one clean second may be a call slipped into the next
                return True
            state.learned = state.rate
            state.probing, state.clean, state.wait = 0, 0, 2
            state.step *= 2
            return True
        state.clean += 1
        if state.clean < state.wait:
            return True
        self._raise(state, state.rate + state.step, now)
        state.probing = 1
        return True

    def _raise(self, state: RateState, rate: float, now: float) -> None:
        state.rate = self._bounded(max(rate, state.rate))
        state.effective = math.floor(now) + 1
        state.clean = 0
