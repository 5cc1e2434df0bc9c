"""Change messages in MongoDB, and what they change in stored products at once (asyncio).

``messages``: ``_id`` = ``msgId`` (its digits, as text), ``topic``, ``born`` (``gmtBorn``),
``user_info``, ``data``, ``received_at`` (first delivery), ``deliveries`` (how often it came),
``via`` (``push`` or ``replay``), then, once handled, ``handled_at``, ``queued`` (offer ids queued
for a refresh), ``waiting`` (named offers that were queued already), ``gone``, ``stock_applied``
and ``bad_ids``. A message delivered again finds ``handled_at`` and does nothing more.

What a message changes at once, with a ``product_history`` document that names it (``changed_by``):

- an offer deleted or expired: the stored product becomes ``available: false``;
- an inventory change: the stored offer's and SKUs' ``stock``, unless the product was fetched
  after the change (``bizTime``, else the message's birth), so an old message never overwrites a
  newer fetch.

Offers not stored yet are left alone: their refresh stores them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from .. import config
from ..aop.messages import Meaning, Message, StockChange
from ..config import redact_uri
from . import history
from .documents import HISTORY, MESSAGES, PRODUCTS, short_error
from .mongo import CODEC_OPTIONS, StorageError, encodable, write_failed


def changed_by(message: Message, reason: str) -> dict[str, Any]:
    """What a product and its history keep of the message that changed it."""
    return {"message": message.msg_id, "topic": message.topic, "reason": reason, "born": message.born}


class MessageStore:
    """The ``messages`` collection and the products a message changes, through an async client."""

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000, journal: bool = True) -> None:
        self.uri = uri
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
            appname="ali1688spider-messages",
        )
        # journaled: a push is answered (and 1688 forgets it) only once the message is on disk
        db = self._client.get_database(database, codec_options=CODEC_OPTIONS,
                                       write_concern=WriteConcern(w=1, j=journal))
        self.messages = db[MESSAGES]
        self.products = db[PRODUCTS]
        self.history = db[HISTORY]

    @classmethod
    def from_settings(cls, settings: Any = None) -> MessageStore:
        return cls(config.MONGO_URI.get(settings), config.MONGO_DATABASE.get(settings),
                   timeout_ms=config.MONGO_TIMEOUT_MS.get(settings), journal=config.MONGO_JOURNAL.get(settings))

    @property
    def where(self) -> str:
        return redact_uri(self.uri)

    async def open(self) -> None:
        try:
            await self._client.admin.command("ping")
            await self.messages.create_index([("topic", ASCENDING), ("received_at", ASCENDING)])
            await self.messages.create_index([("received_at", ASCENDING)])
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {self.where} cannot be reached: {short_error(exc)}") from None

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    async def receive(self, message: Message, via: str) -> bool:
        """Store a message (once) and count the delivery; True when it was handled already."""
        now = datetime.now(UTC)
        document = encodable({"topic": message.topic, "born": message.born, "user_info": message.user_info,
                              "data": dict(message.data), "received_at": now, "via": via})
        try:
            try:
                before = await self._upsert(message.msg_id, document, now)
            except DuplicateKeyError:  # two deliveries at once, upserting together: the other one stored it
                before = await self.messages.find_one({"_id": message.msg_id}, {"handled_at": 1})
            except OperationFailure:  # the server refuses the data's keys ("$…"): kept as its JSON text
                text = json.dumps(document["data"], ensure_ascii=False, default=str)
                before = await self._upsert(message.msg_id, {**document, "data": {"json": text}}, now)
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None
        return before is not None and before.get("handled_at") is not None

    async def _upsert(self, msg_id: str, document: dict[str, Any], now: datetime) -> Mapping[str, Any] | None:
        """Store the message once and count the delivery; the stored message before, if any."""
        return await self.messages.find_one_and_update(
            {"_id": msg_id}, {"$setOnInsert": document, "$inc": {"deliveries": 1}, "$set": {"last_received_at": now}},
            upsert=True, return_document=ReturnDocument.BEFORE, projection={"handled_at": 1},
        )

    async def handled(self, message: Message, meaning: Meaning, queued: list[str], waiting: list[str],
                      stock_applied: int) -> None:
        """Mark the message handled: its work is done (stored products changed, ids queued)."""
        update = {"handled_at": datetime.now(UTC), "reason": meaning.reason, "queued": queued, "waiting": waiting,
                  "gone": meaning.gone, "stock_applied": stock_applied}
        if meaning.bad_ids:
            update["bad_ids"] = meaning.bad_ids
        try:
            await self.messages.update_one({"_id": message.msg_id}, {"$set": update})
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None

    # -- what a message changes at once ------------------------------------------------------------

    async def mark_gone(self, offer_ids: list[str], message: Message, reason: str) -> int:
        """Stored products among ``offer_ids`` become unavailable; returns how many changed."""
        if not offer_ids:
            return 0
        now = datetime.now(UTC)
        by = changed_by(message, reason)
        changed = 0
        try:
            async for previous in self.products.find({"_id": {"$in": offer_ids}}, history.PROJECTION):
                if previous.get("available") is False:
                    continue
                gone = {"available": False, "unavailable_since": now,
                        "unavailable_reason": {"message": message.msg_id, "topic": message.topic, "reason": reason,
                                               "at": now}}
                changed += await self._change(previous, gone, [{"field": "available", "old": True, "new": False}],
                                              now, by)
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None
        return changed

    async def apply_stock(self, changes: list[StockChange], message: Message, reason: str) -> int:
        """Write the stock an inventory message tells into the stored products it names, unless a
        product was fetched after the change; returns how many products changed."""
        by_offer: dict[str, list[StockChange]] = {}
        for change in changes:
            by_offer.setdefault(change.offer_id, []).append(change)
        if not by_offer:
            return 0
        now = datetime.now(UTC)
        by = changed_by(message, reason)
        projection = {**{key: 1 for key in history.PROJECTION if not key.startswith("skus.")}, "skus": 1}
        changed = 0
        try:
            async for previous in self.products.find({"_id": {"$in": list(by_offer)}}, projection):
                updated = _with_stock(previous, by_offer[previous["_id"]], message.born)
                if updated is None:
                    continue
                found = history.changes(previous, updated)
                if found:
                    stock = {"stock": updated.get("stock"), "skus": updated.get("skus", [])}
                    changed += await self._change(previous, stock, found, now, by)
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None
        return changed

    async def _change(self, previous: Mapping[str, Any], fields: dict[str, Any], found: list[dict[str, Any]],
                      now: datetime, by: dict[str, Any]) -> int:
        """Write ``fields`` into a stored product and the history of ``found``, both naming the
        message; the product only if no fetch stored it meanwhile. 1 when it changed, else 0."""
        new_hash = history.content_hash({**previous, **fields})
        document = {"_id": history.change_id(previous["_id"], dict(previous), new_hash), "product_id": previous["_id"],
                    "at": now, "source_api": "message", "changed_by": by, "changes": found}
        try:
            await self.history.insert_one(document)
        except DuplicateKeyError:  # the same change written by a delivery that died before answering
            pass
        result = await self.products.update_one(
            {"_id": previous["_id"], "fetched_at": previous.get("fetched_at")},
            {"$set": {**fields, "content_hash": new_hash, "changed_at": now, "changed_by": by}})
        return int(result.modified_count)

    async def close(self) -> None:
        await self._client.close()


def _with_stock(previous: Mapping[str, Any], changes: list[StockChange], born: datetime | None,
                ) -> dict[str, Any] | None:
    """The stored product with the stock of ``changes`` that are newer than its fetch; None when
    none is."""
    fetched = previous.get("fetched_at")
    fresh = [change for change in changes
             if not isinstance(fetched, datetime) or (change.at or born) is None or (change.at or born) > fetched]
    if not fresh:
        return None
    updated = dict(previous)
    skus = [dict(sku) for sku in previous.get("skus") or []]
    for change in fresh:
        if change.offer_stock is not None:
            updated["stock"] = change.offer_stock
        if change.sku_id is not None and change.sku_stock is not None:
            for sku in skus:
                if str(sku.get("sku_id")) == change.sku_id:
                    sku["stock"] = change.sku_stock
    updated["skus"] = skus
    return updated
