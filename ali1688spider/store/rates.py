"""The call rate an app key was found to pass, kept in MongoDB for the next run to start from.

One document per app key in ``quotas``: ``rate`` (calls/s), ``found`` (a throttle bounded it, so
it is the quota as measured; else only a rate known to pass), ``ceiling`` (``ALI1688_QPS`` then,
0 for none) and ``updated_at``. Any crawl using the same database reads it when it opens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from .. import config
from ..config import redact_uri
from .documents import QUOTAS, short_error
from .mongo import StorageError


class RateMemory:
    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000) -> None:
        self.uri = uri
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
            appname="ali1688spider")
        self.quotas = self._client[database][QUOTAS]

    @classmethod
    def from_settings(cls, settings: Any) -> RateMemory:
        return cls(config.MONGO_URI.get(settings), config.MONGO_DATABASE.get(settings),
                   timeout_ms=config.MONGO_TIMEOUT_MS.get(settings))

    def recall(self, app_key: str) -> tuple[float, bool] | None:
        """The rate learned for ``app_key`` and whether a throttle bounded it; None if nothing is known."""
        try:
            doc = self.quotas.find_one({"_id": app_key})
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {redact_uri(self.uri)}: {short_error(exc)}") from None
        rate = doc.get("rate") if doc else None
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
            return None
        return float(rate), bool(doc.get("found")) if doc else False

    def remember(self, app_key: str, rate: float, found: bool, ceiling: float) -> None:
        try:
            self.quotas.update_one(
                {"_id": app_key},
                {"$set": {"rate": rate, "found": found, "ceiling": ceiling, "updated_at": datetime.now(UTC)}},
                upsert=True)
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {redact_uri(self.uri)}: {short_error(exc)}") from None

    def close(self) -> None:
        self._client.close()
