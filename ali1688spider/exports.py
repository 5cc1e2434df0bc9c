"""Feed exports of products (``scrapy crawl product -a ids=… -O products.jsonl`` or ``.csv``).

An exported product holds what MongoDB would hold (:func:`~.store.fields.product_view`: the
``-a fields`` / ``ALI1688_FIELDS`` selection, ``raw`` unless ``ALI1688_STORE_RAW=false``). Prices
are exact decimal strings (``"12.50"``), never floats; times are ISO 8601 with their offset.
JSON and JSON lines nest the parts (tiers, SKUs, seller, shipping) as objects. CSV has one row
per product and one column per field; a nested field (``price_tiers``, ``skus``, ``attributes``,
``seller``, ``shipping``, ``raw``, …) is its JSON text in its cell, prices inside it decimal
strings; an empty value is an empty cell, a flag ``true``/``false``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exporters import CsvItemExporter, JsonItemExporter, JsonLinesItemExporter
from scrapy.utils.serialize import ScrapyJSONEncoder

from .aop.product import Product
from .store.fields import product_view


class _ProductView:
    """Export a :class:`Product` as the document the store would keep."""

    crawler: Crawler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Any:
        exporter = cls(*args, **kwargs)
        exporter.crawler = crawler
        return exporter

    def export_item(self, item: Any) -> None:
        if isinstance(item, Product) and self.crawler is not None:
            item = product_view(item, self.crawler)
        super().export_item(item)  # type: ignore[misc]


class ProductJsonExporter(_ProductView, JsonItemExporter):
    pass


class ProductJsonLinesExporter(_ProductView, JsonLinesItemExporter):
    pass


_JSON = ScrapyJSONEncoder(ensure_ascii=False, separators=(",", ":"))


def csv_cell(value: Any) -> str:
    """One CSV cell: nested values as JSON text (exact decimal strings), scalars as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return _JSON.encode(value)
    return str(value)


class ProductCsvExporter(_ProductView, CsvItemExporter):
    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        return csv_cell(value)

