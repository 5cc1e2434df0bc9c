"""The quota pacing rule: at most qps starts per calendar second, spread over its first 0.8 s."""

import math
from collections import Counter

import pytest
import pytest_twisted

from ali1688spider.gateway.quota import PacedQuota, slot_after


@pytest.mark.parametrize("qps", [1, 7, 20, 50])
def test_slots_never_exceed_the_quota_in_any_second(qps):
    booked, slots = None, []
    for _ in range(qps * 5):
        booked = slot_after(1000.0, booked, qps, 0.8)
        slots.append(booked)
    per_second = Counter(math.floor(slot) for slot in slots)
    assert set(per_second.values()) == {qps}
    assert all(slot - math.floor(slot) < 0.8 for slot in slots)
    assert slots == sorted(set(slots))


def test_a_late_caller_gets_the_next_slot_not_a_past_one():
    assert slot_after(10.05, None, 10, 0.8) == pytest.approx(10.08)
    assert slot_after(10.79, None, 10, 0.8) == pytest.approx(11.0)
    # after a long pause the booking restarts from now, it does not replay the backlog
    assert slot_after(50.0, 10.0, 10, 0.8) == pytest.approx(50.0)


@pytest_twisted.ensureDeferred
async def test_paced_quota_sleeps_until_each_slot():
    now = [100.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    quota = PacedQuota(4, clock=lambda: now[0], sleep=fake_sleep)

    waits = [await quota.acquire() for _ in range(9)]
    assert waits[0] == 0
    assert slept == pytest.approx([0.2, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2, 0.4])
    assert now[0] == pytest.approx(102.0)


@pytest_twisted.ensureDeferred
async def test_a_caller_that_wakes_up_in_a_later_second_books_again():
    """A starved process oversleeps its slot at 100.64 until 101.14, a second whose slots other
    callers may hold already: it books again (101.16) instead of starting there."""
    now = [100.0]
    sleeps = []

    async def starved_sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds + (0.5 if len(sleeps) == 4 else 0.0)

    quota = PacedQuota(5, clock=lambda: now[0], sleep=starved_sleep)
    starts = []
    for _ in range(15):
        await quota.acquire()
        starts.append(round(now[0], 6))
    assert max(Counter(math.floor(start) for start in starts).values()) == 5
    assert 101.14 not in starts and 101.16 in starts
    assert starts == sorted(starts)


def test_quota_must_be_positive():
    with pytest.raises(ValueError):
        PacedQuota(0)
