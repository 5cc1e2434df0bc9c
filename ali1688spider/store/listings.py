"""Search results in MongoDB: ``listings`` (one document per hit) and ``searches`` (one per search).

A hit's ``_id`` is ``<search id>:<rank>``, so writing a page twice (a retry) stores it once. A
search's document is written when it ends, with what the gateway reported and what was stored,
so a keyword's results can be followed over time (``query`` is the same for the same search).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, PyMongoError

from ..aop.search import Listing
from .documents import LISTINGS, SEARCHES
from .mongo import DUPLICATE_KEY, MongoStore, write_failed


def listing_document(listing: Listing, search_id: str, query: dict[str, Any], seen_at: datetime) -> dict[str, Any]:
    """The stored hit: the listing's fields (empty ones left out) with its search and time."""
    fields = {key: value for key, value in asdict(listing).items() if value not in (None, {}, [])}
    return {"_id": f"{search_id}:{listing.rank}", "search_id": search_id, "query": query, **fields,
            "seen_at": seen_at}


class ListingStore:
    """Writes hits and searches through a :class:`MongoStore`'s connection."""

    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.listings = store.db[LISTINGS]
        self.searches = store.db[SEARCHES]

    def open(self) -> None:
        self.store.open()
        try:
            self.listings.create_index([("offer_id", ASCENDING), ("seen_at", ASCENDING)])
            self.listings.create_index([("search_id", ASCENDING), ("rank", ASCENDING)])
            self.searches.create_index([("query", ASCENDING), ("started_at", ASCENDING)])
        except PyMongoError as exc:
            raise write_failed(self.store.uri, exc) from None

    def write_hits(self, documents: list[dict[str, Any]]) -> int:
        """Insert the hits; those already stored (a page written twice) are skipped."""
        if not documents:
            return 0
        try:
            return len(self.listings.insert_many(documents, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise write_failed(self.store.uri, exc) from None
            return int(exc.details.get("nInserted", 0))
        except PyMongoError as exc:
            raise write_failed(self.store.uri, exc) from None

    def record_search(self, document: dict[str, Any]) -> None:
        try:
            self.searches.replace_one({"_id": document["_id"]}, document, upsert=True)
        except PyMongoError as exc:
            raise write_failed(self.store.uri, exc) from None


    def close(self) -> None:
        self.store.close()


@dataclass
class FoundPage:
    """An item: the hits of one result page, to be stored in ``listings``."""

    search_id: str
    query: dict[str, Any]
    listings: list[Listing]
    seen_at: datetime


@dataclass
class SearchRun:
    """An item: one search that ended, to be stored in ``searches``."""

    search_id: str
    query: dict[str, Any]
    spider: str
    started_at: datetime
    finished_at: datetime
    finish_reason: str  # last_page, empty_page, max_results, failed, stopped
    total_records: int | None  # what the gateway reported (None: no page was read)
    pages: int
    hits: int
    unchanged: int  # found offers not fetched: their listing showed no change
    details: int  # found offers sent to the detail API

    def document(self) -> dict[str, Any]:
        return {"_id": self.search_id, **{key: value for key, value in asdict(self).items() if key != "search_id"}}
