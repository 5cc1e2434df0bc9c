"""Don't pay API calls for fresh data: ids fetched less than ``ALI1688_FRESH_FOR`` seconds ago
are skipped (counted as ``ali1688/fresh``); their product is already in MongoDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import config
from .mongo import MongoStore


class FreshnessFilter:
    def __init__(self, store: MongoStore, fresh_for: float) -> None:
        self.store = store
        self.fresh_for = fresh_for

    @classmethod
    def from_crawler(cls, crawler: Any) -> FreshnessFilter | None:
        """None when ``ALI1688_FRESH_FOR`` is 0 (the default): every id is fetched."""
        fresh_for = config.FRESH_FOR.get(crawler.settings)
        return cls(MongoStore.from_settings(crawler.settings), fresh_for) if fresh_for > 0 else None

    async def fresh(self, keys: list[str]) -> set[str]:
        """Which of these product ids were fetched within the freshness window."""
        if not keys:
            return set()
        since = datetime.now(UTC) - timedelta(seconds=self.fresh_for)
        return await asyncio.to_thread(self.store.fetched_since, keys, since)

    def close(self) -> None:
        self.store.close()
