"""Which fields of a product are kept: ``-a fields=subject,price_tiers,skus.price,stock`` (or
``ALI1688_FIELDS``) and ``ALI1688_STORE_RAW``.

A selection names top-level fields of the product (``subject``, ``skus``) or fields inside its
parts (``skus.price``: every SKU keeps its ``sku_id`` and its ``price``). Whatever is chosen, a
document keeps its id, ``source_api``, ``available`` and the times the store adds, so freshness,
history and the "gone" rules keep working on what is stored. A name no product has is refused
with the list of names there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, get_args, get_origin, get_type_hints

from ..aop.product import Product

#: Kept whatever the selection: the identity and what the store's own rules read.
ALWAYS = ("product_id", "source_api", "available", "detail_url", "changed_by")
#: A part's field kept with any field chosen inside it: what identifies the part.
PART_KEYS = {"skus": "sku_id", "price_tiers": "min_quantity", "attributes": "attribute_id"}


def _part_class(name: str) -> type | None:
    """The dataclass of a product field's part(s): ``skus`` → Sku, ``seller`` → Seller."""
    hint = get_type_hints(Product)[name]
    for candidate in (hint, *get_args(hint)):
        if get_origin(candidate) is list:
            candidate = get_args(candidate)[0]
        if isinstance(candidate, type) and hasattr(candidate, "__dataclass_fields__"):
            return candidate
    return None


def field_names() -> list[str]:
    """Every name a selection may use: the product's fields and ``part.field`` for its parts."""
    names = []
    for item in fields(Product):
        if item.name == "raw":
            continue
        names.append(item.name)
        part = _part_class(item.name)
        if part is not None:
            names += [f"{item.name}.{inner.name}" for inner in fields(part)]
    return names


@dataclass(frozen=True)
class Selection:
    top: frozenset[str]  # whole fields
    inner: Mapping[str, frozenset[str]]  # part → the fields kept inside it

    @classmethod
    def parse(cls, text: str) -> Selection:
        """``"subject, skus.price"`` → a selection; ValueError naming what is unknown."""
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        if not chosen:
            raise ValueError("fields is empty: name at least one field")
        known = set(field_names())
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise ValueError(f"fields: no product has {', '.join(repr(n[:40]) for n in unknown[:5])}; "
                             f"choose from {', '.join(field_names())}")
        inner: dict[str, set[str]] = {}
        for name in chosen:
            if "." in name:
                part, field = name.split(".", 1)
                inner.setdefault(part, set()).add(field)
        top = frozenset(name for name in chosen if "." not in name)
        return cls(top, {part: frozenset(names | ({PART_KEYS[part]} if part in PART_KEYS else set()))
                         for part, names in inner.items() if part not in top})

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a product's ``to_dict()`` this selection keeps."""
        kept = {name: doc[name] for name in (*ALWAYS, *self.top) if name in doc}
        for part, names in self.inner.items():
            value = doc.get(part)
            if isinstance(value, list):
                kept[part] = [_only(item, names) for item in value]
            elif isinstance(value, Mapping):
                kept[part] = _only(value, names)
        return kept


def _only(item: Any, names: Iterable[str]) -> Any:
    return {name: item[name] for name in names if name in item} if isinstance(item, Mapping) else item


def chosen(crawler: Any) -> Selection | None:
    """The crawl's selection: the spider's ``-a fields``, else ``ALI1688_FIELDS``, else none."""
    from .. import config

    selection = getattr(crawler.spider, "selection", None)
    if selection is not None:
        return selection  # type: ignore[no-any-return]
    text = config.FIELDS.get(crawler.settings)
    return Selection.parse(text) if text else None


def product_view(item: Product, crawler: Any) -> dict[str, Any]:
    """What is kept of a product: its fields (the selection's, or all) and, with
    ``ALI1688_STORE_RAW``, its raw payload as received."""
    from .. import config

    doc = item.to_dict(include_raw=False)
    selection = chosen(crawler)
    if selection is not None:
        doc = selection.apply(doc)
    if config.STORE_RAW.get(crawler.settings):
        doc["raw"] = item.raw
    return doc
