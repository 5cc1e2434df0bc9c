"""What changed between two fetches of a product: the tracked fields, their hash and their diff.

Tracked: ``subject``, ``status``, ``available``, ``stock``, ``min_price``/``max_price`` (the only
price of an offer sold by a reference price, without tiers or SKU prices), ``price_tiers`` and each
SKU's price and stock. A fetch that changes none of them leaves no history. A product stored before
``available`` existed reads as available. Prices compare as decimals, whether they come
from the crawl (``Decimal``) or from MongoDB (``Decimal128``): 12.5 and 12.50 are the same price.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from .documents import tier_prices, to_decimal

SCALARS = ("subject", "status", "stock")
MONEY = ("min_price", "max_price")
#: The projection that reads the tracked fields of a stored product.
PROJECTION = {"subject": 1, "status": 1, "available": 1, "unavailable_since": 1, "stock": 1, "min_price": 1,
              "max_price": 1, "price_tiers": 1, "skus.sku_id": 1, "skus.price": 1, "skus.stock": 1, "content_hash": 1,
              "fetched_at": 1}


def _money(value: Any) -> Decimal | None:
    price = to_decimal(value)
    return price.normalize() if price is not None else None


def _tiers(doc: dict[str, Any]) -> list[tuple[int, Decimal | None]]:
    return [(quantity, _money(price)) for quantity, price in tier_prices(doc.get("price_tiers"))]


def _skus(doc: dict[str, Any]) -> dict[str, tuple[Decimal | None, int | None]]:
    return {str(sku["sku_id"]): (_money(sku.get("price")), sku.get("stock")) for sku in doc.get("skus") or []}


def _available(doc: dict[str, Any]) -> bool:
    return doc.get("available") is not False


def content_hash(doc: dict[str, Any]) -> str:
    """A hash of the tracked fields only (not ``fetched_at``, not the raw payload)."""
    view = {
        **{name: doc.get(name) for name in SCALARS},
        **({} if _available(doc) else {"available": False}),  # hashes from before the field stay valid
        **{name: str(_money(doc.get(name))) for name in MONEY if _money(doc.get(name)) is not None},
        "price_tiers": [[quantity, str(price)] for quantity, price in _tiers(doc)],
        "skus": {sku: [str(price), stock] for sku, (price, stock) in sorted(_skus(doc).items())},
    }
    text = json.dumps(view, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def change_id(product_id: str, old: dict[str, Any], new_hash: str) -> str:
    """The ``_id`` of a history document: which stored version changed into which content, so a
    retried write of the same change cannot record it twice."""
    fetched = old.get("fetched_at")
    since = fetched.isoformat() if hasattr(fetched, "isoformat") else str(fetched)
    return f"{product_id}:{since}:{new_hash[:16]}"


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The changed tracked fields as ``{"field", "old", "new"}``, prices as ``Decimal``."""
    found: list[dict[str, Any]] = []
    for name in SCALARS:
        if old.get(name) != new.get(name):
            found.append({"field": name, "old": old.get(name), "new": new.get(name)})
    for name in MONEY:
        if _money(old.get(name)) != _money(new.get(name)):
            found.append({"field": name, "old": _money(old.get(name)), "new": _money(new.get(name))})
    if _available(old) != _available(new):
        found.append({"field": "available", "old": _available(old), "new": _available(new)})
    old_tiers, new_tiers = _tiers(old), _tiers(new)
    if old_tiers != new_tiers:
        found.append({
            "field": "price_tiers",
            "old": [{"min_quantity": q, "price": p} for q, p in old_tiers],
            "new": [{"min_quantity": q, "price": p} for q, p in new_tiers],
        })
    old_skus, new_skus = _skus(old), _skus(new)
    for sku in sorted(old_skus.keys() | new_skus.keys()):
        before, after = old_skus.get(sku), new_skus.get(sku)
        if before is None or after is None:
            found.append({"field": f"skus.{sku}", "old": _sku_value(before), "new": _sku_value(after)})
            continue
        if before[0] != after[0]:
            found.append({"field": f"skus.{sku}.price", "old": before[0], "new": after[0]})
        if before[1] != after[1]:
            found.append({"field": f"skus.{sku}.stock", "old": before[1], "new": after[1]})
    return found


def _sku_value(value: tuple[Decimal | None, int | None] | None) -> dict[str, Any] | None:
    return None if value is None else {"price": value[0], "stock": value[1]}
