"""The stored documents' vocabulary: collection names, and the decoding of stored money.

Both the crawl (history, storage) and the report read prices back from MongoDB; they do it here,
so that ``12.5`` and ``12.50``, a ``Decimal128`` and a ``Decimal`` are one price everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from bson.decimal128 import Decimal128

PRODUCTS = "products"
FAILURES = "failures"
HISTORY = "product_history"
RUNS = "runs"
LISTINGS = "listings"  # one document per search hit (store/listings.py)
SEARCHES = "searches"  # one document per search run
MESSAGES = "messages"  # one document per change message (store/messages.py)
FOLLOWS = "follows"  # one document per offer 1688 was asked to send messages for (store/follows.py)
QUOTAS = "quotas"  # the call rate each app key was last found to pass (gateway/adaptive.py)


def to_decimal(value: Any) -> Decimal | None:
    """A stored price as a Decimal (``Decimal128``, Decimal, int or numeric string), else None.

    Floats are not money here; None and anything else neither.
    """
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def tier_prices(value: Any) -> list[tuple[int, Decimal | None]]:
    """``[{min_quantity, price}, …]`` → ``[(min_quantity, price), …]`` in stored order; a tier
    without a readable quantity is left out, one without a readable price keeps ``None``."""
    tiers: list[tuple[int, Decimal | None]] = []
    for tier in value if isinstance(value, list) else []:
        if not isinstance(tier, Mapping):
            continue
        quantity = tier.get("min_quantity")
        if isinstance(quantity, int) and not isinstance(quantity, bool):
            tiers.append((quantity, to_decimal(tier.get("price"))))
    return tiers


def short_error(exc: BaseException) -> str:
    """A driver error in one line of at most 300 characters (without pymongo's topology dump)."""
    text = " ".join(str(exc).split(", Timeout:")[0].split())
    return text if len(text) < 300 else text[:297] + "..."
