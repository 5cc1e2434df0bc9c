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

    waits = [(await quota.acquire()).waited for _ in range(9)]
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


@pytest.mark.parametrize("qps", [0.5, 0.1, 2.5, 1.5, 0.9])
def test_any_positive_quota_keeps_every_window(qps):
    """A quota that is not a whole number is paced by fixed spacing: no window of W seconds sees
    more than ceil(qps * W) + 1 starts, whatever the callers' timing (issue 12, case 4)."""
    booked, slots = None, []
    now = 1000.0
    for step in range(200):
        now += (step % 7) * 0.013  # callers arrive at uneven times
        booked = slot_after(now, booked, qps, 0.8)
        slots.append(booked)
        now = max(now, booked)
    assert slots == sorted(slots)
    for window in (0.5, 1.0, 2.0, 10.0):
        for start in slots:
            inside = sum(1 for slot in slots if start <= slot < start + window)
            assert inside <= math.ceil(qps * window) + 1
    span = slots[-1] - slots[0]
    assert (len(slots) - 1) / span == pytest.approx(qps, rel=0.01)  # and the quota is used


@pytest_twisted.ensureDeferred
async def test_half_a_call_per_second_is_one_call_every_two_seconds():
    now = [100.0]

    async def fake_sleep(seconds):
        now[0] += seconds

    quota = PacedQuota(0.5, clock=lambda: now[0], sleep=fake_sleep)
    starts = []
    for _ in range(5):
        await quota.acquire()
        starts.append(now[0])
    assert starts == pytest.approx([100.0, 102.0, 104.0, 106.0, 108.0])


@pytest_twisted.ensureDeferred
async def test_a_permit_gone_stale_during_a_token_refresh_books_again(emulator_factory, database):
    """Issue 12: calls whose quota permits were granted while a token refresh ran (here a 401
    and a 1.5 s token endpoint) used to start together once it ended, over the quota; each books
    a new slot instead, and the gateway throttles none."""
    from .crawling import crawl_settings, fresh_ids, run_crawl

    uri, name, db = database
    emulator = emulator_factory("--qps", "4")
    token = emulator.access_token()  # the crawl starts with it: the one refresh is the slow one
    emulator.script([{"kind": "token", "times": 1}, {"kind": "slow", "api": "getToken", "ms": 1500}])
    settings = crawl_settings(emulator.url, uri, name, ALI1688_QPS=4, ALI1688_ACCESS_TOKEN=token)
    crawler = await run_crawl(settings, ids=",".join(fresh_ids(24)))
    seen = emulator.stats()
    assert db.products.count_documents({}) == 24
    assert crawler.stats.get_value("ali1688/token/refresh") == 1
    assert seen["throttled"] == 0 and seen["max_per_second"] <= 4, seen
    assert crawler.stats.get_value("ali1688/quota/rebooked", 0) >= 1
