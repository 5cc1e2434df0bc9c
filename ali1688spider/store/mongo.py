"""MongoDB storage: products and failures, written in bulk, idempotent, exact prices.

``products``: ``_id`` = product id, the normalised product (Decimal → ``Decimal128``),
``source_api``, ``fetched_at``, ``first_seen_at``, ``changed_at``, ``content_hash``, the raw
payload, ``available`` and, while it is not, ``unavailable_since`` (with ``unavailable_reason``
when the API said the offer is gone). ``failures``: ``_id`` = product id (or the raw input
text), reason, error code, attempts, time. A product written here removes its id from
``failures``. ``product_history``: one document per fetch that changed a tracked field.
``runs``: one document per crawl.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import bson
from bson.codec_options import CodecOptions, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128
from bson.errors import InvalidDocument
from pymongo import ASCENDING, DeleteMany, MongoClient, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError
from pymongo.write_concern import WriteConcern

from .. import config
from ..aop.text import storable_text
from ..config import redact_uri
from . import history
from .documents import FAILURES, HISTORY, PRODUCTS, RUNS, short_error

DUPLICATE_KEY = 11000


class _DecimalEncoder(TypeEncoder):
    """Decimal → Decimal128. Prices always fit (normalisation caps them at 34 digits); a number in
    the raw payload that Decimal128 cannot hold exactly is kept as its text."""

    python_type = Decimal

    def transform_python(self, value: Decimal) -> Decimal128 | str:
        try:
            return Decimal128(value)
        except (ArithmeticError, ValueError):
            return str(value)


CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    type_registry=TypeRegistry([_DecimalEncoder()]), tz_aware=True, tzinfo=UTC,
)


class StorageError(Exception):
    """MongoDB cannot be reached or refused a write; the message says which server."""


def write_failed(uri: str, exc: Exception) -> StorageError:
    """The error of a write MongoDB at ``uri`` did not take (a password in the URI masked)."""
    return StorageError(f"writing to MongoDB at {redact_uri(uri)} failed: {short_error(exc)}")


class RefusedDocuments(Exception):
    """MongoDB took the batch but refused some documents themselves (too large, …): not an outage.
    ``ids`` are the refused documents' ``_id``; the others of the batch are written."""

    def __init__(self, message: str, ids: set[Any]) -> None:
        super().__init__(message)
        self.ids = ids


class MongoStore:
    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000, journal: bool = True) -> None:
        self.uri = uri
        self.database_name = database
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
            appname="ali1688spider",
        )
        # journaled: a write is acknowledged (and its queue entries acked in Redis) once it is in
        # MongoDB's journal, so a MongoDB crash right after cannot lose what a worker let go of
        self.db = self._client.get_database(database, codec_options=CODEC_OPTIONS,
                                            write_concern=WriteConcern(w=1, j=journal))
        self.products = self.db[PRODUCTS]
        self.failures = self.db[FAILURES]
        self.history = self.db[HISTORY]
        self.runs = self.db[RUNS]
        self.history_written = 0
        self.failures_yielded = 0
        self.marked_unavailable = 0

    @classmethod
    def from_settings(cls, settings: Any) -> MongoStore:
        """``MONGO_URI``, ``MONGO_DATABASE``, ``MONGO_TIMEOUT_MS``, ``MONGO_JOURNAL`` (config.py)."""
        return cls(config.MONGO_URI.get(settings), config.MONGO_DATABASE.get(settings),
                   timeout_ms=config.MONGO_TIMEOUT_MS.get(settings), journal=config.MONGO_JOURNAL.get(settings))

    @property
    def where(self) -> str:
        return f"{redact_uri(self.uri)}, database {self.database_name!r}"

    def open(self) -> None:
        """Check the server answers and create the indexes (idempotent)."""
        try:
            self._client.admin.command("ping")
            self.products.create_index([("fetched_at", ASCENDING)])
            self.products.create_index([("status", ASCENDING)])
            self.products.create_index([("category_id", ASCENDING)])
            self.products.create_index([("changed_at", ASCENDING)])
            self.products.create_index([("open_offer_id", ASCENDING)], sparse=True)
            self.failures.create_index([("reason", ASCENDING)])
            self.failures.create_index([("at", ASCENDING)])
            self.history.create_index([("product_id", ASCENDING), ("at", ASCENDING)])
            self.history.create_index([("at", ASCENDING)])
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {redact_uri(self.uri)} cannot be reached: {short_error(exc)}") from None

    def write(self, products: Iterable[dict[str, Any]], failures: Iterable[dict[str, Any]], *,
              since: datetime | None = None) -> tuple[int, int]:
        """Upsert product and failure documents in bulk; returns how many of each were written.

        Each product is compared with the stored one: a change of a tracked field (history.py)
        adds a ``product_history`` document and moves ``changed_at``; ``content_hash`` is kept on
        the product. A failure yields to a product: one for an id stored in this batch, or fetched
        at or after ``since`` (the crawl's start: by this crawl or another worker meanwhile), is
        not written (counted in ``failures_yielded``) — an input ends in one collection. A
        ``gone`` failure (the API says the offer does not exist) of a stored product marks that
        product unavailable instead (counted in ``marked_unavailable``).
        """
        now = datetime.now(UTC)
        products = list(products)
        failures = list(failures)
        try:
            stored = self._stored_versions([doc["_id"] for doc in products])
            product_ops, history_docs = self._product_updates(products, stored, now)
            fetched_now = {doc["_id"] for doc in products}
            if since is not None and failures:
                fetched_now |= self.fetched_since([doc["_id"] for doc in failures], since)
            kept = [doc for doc in failures if doc["_id"] not in fetched_now]
            yielded, failures = len(failures) - len(kept), kept
            gone_ops, gone_history, failures = self._unavailable_updates(failures, now)
            history_docs += gone_history
            failure_ops: list[Any] = []
            for doc in failures:
                doc = dict(doc)
                key = doc.pop("_id")
                failure_ops.append(UpdateOne({"_id": key}, {"$set": doc, "$inc": {"runs_failed": 1}}, upsert=True))
            if history_docs:  # first: a write retried after a failure finds the same change again
                self._insert_once(self.history, history_docs)
            if product_ops or gone_ops:
                self.products.bulk_write(product_ops + gone_ops, ordered=False)
            if product_ops:
                fetched = [doc["_id"] for doc in products]
                self.failures.bulk_write([DeleteMany({"_id": {"$in": fetched}})], ordered=False)
            if failure_ops:
                self.failures.bulk_write(failure_ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if errors and not exc.details.get("writeConcernErrors"):
                ids = {error.get("op", {}).get("q", {}).get("_id") for error in errors}
                raise RefusedDocuments(f"MongoDB refused {len(errors)} document(s): {short_error(exc)}", ids) from None
            raise write_failed(self.uri, exc) from None
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None
        self.history_written += len(history_docs)
        self.failures_yielded += yielded
        self.marked_unavailable += len(gone_ops)
        return len(product_ops), len(failure_ops)

    @staticmethod
    def _insert_once(collection: Any, docs: list[dict[str, Any]]) -> None:
        """Insert documents whose ``_id`` names the change; one already there (a retried write)
        is not an error."""
        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise

    def _stored_versions(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        return {doc["_id"]: doc for doc in self.products.find({"_id": {"$in": keys}}, history.PROJECTION)}

    @staticmethod
    def _product_updates(
        products: list[dict[str, Any]], stored: dict[str, dict[str, Any]], now: datetime,
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        ops: list[Any] = []
        history_docs: list[dict[str, Any]] = []
        for doc in products:
            doc = dict(doc)
            key = doc.pop("_id")
            doc["content_hash"] = history.content_hash(doc)
            previous = stored.get(key)
            on_insert: dict[str, Any] = {"first_seen_at": now}
            if previous is None:
                on_insert["changed_at"] = now
            elif (previous.get("content_hash") or history.content_hash(previous)) != doc["content_hash"]:
                found = history.changes(previous, doc)
                if found:
                    history_docs.append({
                        "_id": history.change_id(key, previous, doc["content_hash"]),
                        "product_id": key, "at": now, "source_api": doc.get("source_api"), "changes": found,
                        **({"changed_by": doc["changed_by"]} if doc.get("changed_by") else {}),
                    })
                    doc["changed_at"] = now
            update: dict[str, Any] = {"$set": doc, "$setOnInsert": on_insert}
            if doc.get("available", True):
                update["$unset"] = {"unavailable_since": "", "unavailable_reason": ""}
            elif previous is not None and previous.get("available") is False and previous.get("unavailable_since"):
                doc["unavailable_since"] = previous["unavailable_since"]  # unavailable since then, still
            else:
                doc["unavailable_since"] = now
            stored[key] = {**doc, "_id": key}  # a second fetch in the same batch compares with this one
            ops.append(UpdateOne({"_id": key}, update, upsert=True))
        return ops, history_docs

    def _unavailable_updates(self, failures: list[dict[str, Any]], now: datetime,
                             ) -> tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """For ``gone`` failures of products stored earlier: the updates that keep each product,
        marked ``available: false`` since now (or since it first went), and the history of that
        change. Returns them and the failures that remain failures."""
        gone = [doc["_id"] for doc in failures if doc.get("gone")]
        stored = self._stored_versions(gone) if gone else {}
        if not stored:
            return [], [], failures
        ops: list[Any] = []
        history_docs: list[dict[str, Any]] = []
        for doc in failures:
            previous = stored.get(doc["_id"])
            if previous is None or not doc.get("gone"):
                continue
            key = doc["_id"]
            reason = {"error_code": doc.get("error_code"), "message": doc.get("message"), "at": doc.get("at") or now}
            update: dict[str, Any] = {"available": False, "unavailable_reason": reason}
            if previous.get("available") is not False or not previous.get("unavailable_since"):
                update["unavailable_since"] = now
                new_hash = history.content_hash({**previous, "available": False})
                update["content_hash"] = new_hash
                update["changed_at"] = now
                history_docs.append({
                    "_id": history.change_id(key, previous, new_hash), "product_id": key, "at": now,
                    "source_api": doc.get("api"), "changes": [{"field": "available", "old": True, "new": False}],
                })
            ops.append(UpdateOne({"_id": key}, {"$set": update}))
        return ops, history_docs, [doc for doc in failures if doc["_id"] not in stored or not doc.get("gone")]

    def fetched_since(self, keys: list[str], since: datetime) -> set[str]:
        """Which of these products (offer ids, or encrypted ids stored as ``open_offer_id``) were
        fetched at or after ``since``."""
        encrypted = [key for key in keys if not key.isdigit()]
        which: dict[str, Any] = {"_id": {"$in": keys}}
        if encrypted:
            which = {"$or": [which, {"open_offer_id": {"$in": encrypted}}]}
        found = self.products.find({**which, "fetched_at": {"$gte": since}}, {"_id": 1, "open_offer_id": 1})
        wanted = set(keys)
        return {key for doc in found for key in (doc["_id"], doc.get("open_offer_id")) if key in wanted}

    def fetched_at_of(self, keys: list[str]) -> dict[str, datetime]:
        """When each of these stored products was last fetched (those not stored are left out)."""
        found = self.products.find({"_id": {"$in": keys}}, {"fetched_at": 1})
        return {doc["_id"]: doc["fetched_at"] for doc in found if isinstance(doc.get("fetched_at"), datetime)}

    def fetched_before(self, before: datetime, batch: int = 1000) -> Iterator[list[str]]:
        """Ids of products last fetched before ``before``, in batches (a cursor, not a list)."""
        cursor = self.products.find({"fetched_at": {"$lt": before}}, {"_id": 1}).batch_size(batch)
        chunk: list[str] = []
        for doc in cursor:
            chunk.append(doc["_id"])
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def count_fetched_before(self, before: datetime) -> int:
        return int(self.products.count_documents({"fetched_at": {"$lt": before}}))

    def record_run(self, run: dict[str, Any]) -> None:
        try:
            self.runs.insert_one(run)
        except PyMongoError as exc:
            raise write_failed(self.uri, exc) from None

    def close(self) -> None:
        self._client.close()


def product_document(product: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    """The stored form of a normalised product (``Product.to_dict()``)."""
    doc = dict(product)
    doc["_id"] = doc.pop("product_id")
    doc["fetched_at"] = fetched_at
    if doc.get("changed_by") is None:  # a fetch no message asked for keeps the last message's
        doc.pop("changed_by", None)
    return doc


#: The largest document MongoDB takes is 16 MiB; an update carries some more around it.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024


def encodable(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` if BSON can hold it, else its storable form: texts with lone surrogates escaped,
    integers beyond 64 bits as text, NUL bytes out of keys. Called only when a bulk write failed:
    walking every document up front would cost every product."""
    try:
        bson.encode(doc, codec_options=CODEC_OPTIONS)
        return doc
    except (OverflowError, InvalidDocument, UnicodeEncodeError):
        return _storable(doc)  # type: ignore[no-any-return]


def size_of(doc: dict[str, Any]) -> int:
    return len(bson.encode(doc, codec_options=CODEC_OPTIONS))


def storable_product(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as MongoDB can take it: escaped where BSON refuses it, and without its raw payload
    when it is over the size limit with it (``raw_dropped`` says so). ``ValueError`` when even that
    is too large."""
    doc = encodable(doc)
    size = size_of(doc)
    if size > MAX_DOCUMENT_BYTES and doc.get("raw") is not None:
        doc = {**doc, "raw": None, "raw_dropped": f"the raw payload made the document {size:,} bytes"}
        size = size_of(doc)
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"the product document is {size:,} bytes, over MongoDB's limit")
    return doc


def storable_failure(doc: dict[str, Any]) -> dict[str, Any]:
    """A failure document as MongoDB can take it (its texts are storable already, outcomes.py)."""
    doc = encodable(doc)
    if size_of(doc) > MAX_DOCUMENT_BYTES:
        doc = {**doc, "message": str(doc.get("message", ""))[:1000]}
    return doc


_INT64 = 2**63


def _storable(value: Any) -> Any:
    """``value`` as BSON can hold it: texts (and keys) with lone surrogates escaped, NUL bytes out
    of keys, integers beyond 64 bits as text."""
    if isinstance(value, dict):
        return {storable_text(str(key), from_bytes=False).replace("\x00", "\ufffd"): _storable(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, str):
        return storable_text(value, from_bytes=False)
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return str(value)
    return value
