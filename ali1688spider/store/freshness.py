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


SECOND = timedelta(seconds=1)


class ListingChanges:
    """Change detection by listing: a found offer whose listing ``modifyDate`` is not newer than
    its stored product's ``fetched_at`` has not changed since; it is not fetched again (one search
    page checks up to 50 offers for one call). An offer not stored, or a listing without a
    ``modifyDate``, is fetched. ``modifyDate`` has whole seconds: a change in the second of the
    fetch counts as newer. The queue worker asks the same of an offer a change message named
    (:meth:`fetched_after` the message's birth)."""

    def __init__(self, store: MongoStore) -> None:
        self.store = store

    @classmethod
    def from_crawler(cls, crawler: Any) -> ListingChanges:
        return cls(MongoStore.from_settings(crawler.settings))

    async def unchanged(self, modified: dict[str, datetime | None]) -> set[str]:
        """Which of these offers (id → the listing's ``modify_date``) need no new fetch."""
        return await self.fetched_after({offer_id: when + SECOND for offer_id, when in modified.items()
                                         if when is not None})

    async def fetched_after(self, moments: dict[str, datetime]) -> set[str]:
        """Which of these offers have a stored product fetched at or after their moment."""
        if not moments:
            return set()
        fetched = await asyncio.to_thread(self.store.fetched_at_of, list(moments))
        return {offer_id for offer_id, when in moments.items() if offer_id in fetched and when <= fetched[offer_id]}

    def close(self) -> None:
        self.store.close()
