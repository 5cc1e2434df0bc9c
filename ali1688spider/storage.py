"""MongoDB storage: products and failures, written in bulk, idempotent, exact prices.

``products``: ``_id`` = product id, the normalised product (Decimal → ``Decimal128``),
``source_api``, ``fetched_at``, ``first_seen_at`` and the raw payload. ``failures``: ``_id`` =
product id (or the raw input text), reason, error code, attempts, time. A product written here
removes its id from ``failures``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson.codec_options import CodecOptions, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128
from pymongo import ASCENDING, DeleteMany, MongoClient, UpdateOne
from pymongo.errors import PyMongoError

PRODUCTS = "products"
FAILURES = "failures"


class _DecimalEncoder(TypeEncoder):
    python_type = Decimal

    def transform_python(self, value: Decimal) -> Decimal128:
        return Decimal128(value)


CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    type_registry=TypeRegistry([_DecimalEncoder()]), tz_aware=True, tzinfo=UTC,
)


class StorageError(Exception):
    """MongoDB cannot be reached or refused a write; the message says which server."""


def redact_uri(uri: str) -> str:
    """The URI without its password, fit for a log line."""
    if "@" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class MongoStore:
    def __init__(self, uri: str, database: str, *, timeout_ms: int = 5000) -> None:
        self.uri = uri
        self.database_name = database
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
            appname="ali1688spider",
        )
        self.db = self._client.get_database(database, codec_options=CODEC_OPTIONS)
        self.products = self.db[PRODUCTS]
        self.failures = self.db[FAILURES]

    def open(self) -> None:
        """Check the server answers and create the indexes (idempotent)."""
        try:
            self._client.admin.command("ping")
            self.products.create_index([("fetched_at", ASCENDING)])
            self.products.create_index([("status", ASCENDING)])
            self.products.create_index([("category_id", ASCENDING)])
            self.failures.create_index([("reason", ASCENDING)])
            self.failures.create_index([("at", ASCENDING)])
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {redact_uri(self.uri)} cannot be reached: {_short(exc)}") from None

    def write(self, products: Iterable[dict[str, Any]], failures: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Upsert product and failure documents in bulk; returns how many of each were written."""
        now = datetime.now(UTC)
        product_ops: list[Any] = []
        fetched: list[str] = []
        for doc in products:
            doc = dict(doc)
            key = doc.pop("_id")
            fetched.append(key)
            product_ops.append(UpdateOne({"_id": key}, {"$set": doc, "$setOnInsert": {"first_seen_at": now}},
                                         upsert=True))
        failure_ops: list[Any] = []
        for doc in failures:
            doc = dict(doc)
            key = doc.pop("_id")
            failure_ops.append(UpdateOne({"_id": key}, {"$set": doc, "$inc": {"runs_failed": 1}}, upsert=True))
        try:
            if product_ops:
                self.products.bulk_write(product_ops, ordered=False)
                self.failures.bulk_write([DeleteMany({"_id": {"$in": fetched}})], ordered=False)
            if failure_ops:
                self.failures.bulk_write(failure_ops, ordered=False)
        except PyMongoError as exc:
            raise StorageError(f"writing to MongoDB at {redact_uri(self.uri)} failed: {_short(exc)}") from None
        return len(product_ops), len(failure_ops)

    def close(self) -> None:
        self._client.close()


def _short(exc: Exception) -> str:
    text = str(exc).split(", Timeout:")[0]
    return text if len(text) < 300 else text[:297] + "..."


def product_document(product: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    """The stored form of a normalised product (``Product.to_dict()``)."""
    doc = dict(product)
    doc["_id"] = doc.pop("product_id")
    doc["fetched_at"] = fetched_at
    return doc
