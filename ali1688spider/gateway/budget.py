"""A daily call budget (``ALI1688_CALLS_PER_DAY``): every call sent counts against the calendar
day it is sent on, in ``ALI1688_QUOTA_TZ`` (1688 counts days in China time), shared by every
crawl of the app key.

The count lives in a ledger that outlives the crawl: Redis (``cluster/budget.py``) when crawls
share state, else a small JSON file (:class:`FileLedger`). A crawl reserves calls in blocks (one
ledger round trip per block, not per call) and gives back what it did not use when it closes; a
crawl that is killed loses at most one block, never lets the day go over. When nothing is left
:meth:`DailyBudget.take` says no, and the crawl stops cleanly: the next run (tomorrow, or today
with a larger budget) continues.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

#: Calls reserved at a time: small against the budget, so that crawls sharing it end close together.
MAX_BLOCK = 50


def day_of(moment: float, zone: ZoneInfo) -> str:
    """The calendar day (``YYYY-MM-DD``) of the epoch time ``moment`` in ``zone``."""
    return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d")


class Ledger(Protocol):
    async def reserve(self, day: str, wanted: int, limit: int) -> int:
        """Count up to ``wanted`` more calls on ``day`` without passing ``limit``; how many were."""
        ...

    async def give_back(self, day: str, unused: int) -> None:
        """Uncount calls reserved on ``day`` and not sent."""
        ...


class FileLedger:
    """Calls per day in a JSON file ``{"2026-11-30": 1234, …}`` (the last week kept), read and
    written under an OS lock so that crawls on one machine share it."""

    KEEP_DAYS = 7

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def reserve(self, day: str, wanted: int, limit: int) -> int:
        with self._locked() as counts:
            granted = max(0, min(wanted, limit - counts.get(day, 0)))
            counts[day] = counts.get(day, 0) + granted
            return granted

    async def give_back(self, day: str, unused: int) -> None:
        with self._locked() as counts:
            counts[day] = max(0, counts.get(day, 0) - unused)

    def used(self, day: str) -> int:
        with self._locked() as counts:
            return counts.get(day, 0)

    def _locked(self) -> _LockedCounts:
        return _LockedCounts(self.path, self.KEEP_DAYS)


class _LockedCounts:
    """The file's counts, held under ``flock`` for the ``with`` block and written back after it."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path, self.keep = path, keep
        self.counts: dict[str, int] = {}

    def __enter__(self) -> dict[str, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        raw = b""
        while chunk := os.read(self._fd, 65536):
            raw += chunk
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {}  # a damaged file: counting starts again rather than stopping every crawl
        if isinstance(data, dict):
            self.counts = {str(day): n for day, n in data.items() if type(n) is int}
        return self.counts

    def __exit__(self, *exc: object) -> None:
        try:
            kept = dict(sorted(self.counts.items())[-self.keep:])
            payload = json.dumps(kept, sort_keys=True).encode()
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, payload)
            os.fsync(self._fd)
        finally:
            os.close(self._fd)  # releases the lock


class DailyBudget:
    """Permits calls while the day's budget lasts."""

    def __init__(self, ledger: Ledger, limit: int, zone: ZoneInfo, *, clock: Callable[[], float] = time.time) -> None:
        if limit < 1:
            raise ValueError("the daily budget must be at least 1 call")
        self.ledger = ledger
        self.limit = limit
        self.zone = zone
        self.block = max(1, min(MAX_BLOCK, limit // 100))
        self._clock = clock
        self._day: str | None = None
        self._left = 0  # reserved in the ledger for self._day, not yet sent

    @property
    def day(self) -> str:
        return day_of(self._clock(), self.zone)

    async def take(self) -> bool:
        """Whether one more call may be sent today (and count it)."""
        day = self.day
        if day != self._day:  # a new day: what was reserved yesterday was counted yesterday
            self._day, self._left = day, 0
        if self._left == 0:
            self._left = await self.ledger.reserve(day, self.block, self.limit)
            if self._left == 0:
                return False
        self._left -= 1
        return True

    async def close(self) -> None:
        """Give back the calls reserved and not sent."""
        if self._day is not None and self._left:
            unused, self._left = self._left, 0
            await self.ledger.give_back(self._day, unused)
