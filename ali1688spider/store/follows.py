"""Which offers 1688 was asked to send change messages for: ``follows``, one document per offer.

``_id`` = offer id, ``followed`` (true until it is unfollowed), ``api`` (the follow API used),
``followed_at`` / ``unfollowed_at`` (the last time), ``first_followed_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import PyMongoError

from .documents import FOLLOWS
from .mongo import MongoStore, write_failed


@dataclass
class Follow:
    """An item: offers now followed (or no longer, ``followed`` False) through ``api``."""

    offer_ids: list[str]
    followed: bool
    api: str
    at: datetime


class FollowStore:
    """Writes ``follows`` through a :class:`MongoStore`'s connection."""

    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.follows = store.db[FOLLOWS]

    def create_indexes(self) -> None:
        """Indexes of ``follows`` (the store is open already)."""
        try:
            self.follows.create_index([("followed", ASCENDING)])
        except PyMongoError as exc:
            raise write_failed(self.store.uri, exc) from None

    def record(self, item: Follow) -> None:
        when = "followed_at" if item.followed else "unfollowed_at"
        update: dict[str, Any] = {"$set": {"followed": item.followed, "api": item.api, when: item.at}}
        if item.followed:
            update["$setOnInsert"] = {"first_followed_at": item.at}
        try:
            self.follows.bulk_write([UpdateOne({"_id": offer_id}, update, upsert=True) for offer_id in item.offer_ids],
                                    ordered=False)
        except PyMongoError as exc:
            raise write_failed(self.store.uri, exc) from None


    def close(self) -> None:
        self.store.close()
