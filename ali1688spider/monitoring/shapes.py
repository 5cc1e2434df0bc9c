"""Watch the shape of product replies while crawling: a sample of each API's payloads goes through
:func:`ali1688spider.aop.shape.drift`, and what it finds is counted in the stats
(``ali1688/shape/<api>/…``) for the "Reply shape" monitor, the summary and the ``runs`` document.

Sampled: every reply of an API up to :data:`SAMPLE_ALL`, then one in :data:`EVERY`. At most
:data:`MAX_KEYS` distinct keys per API and kind are counted by name; the rest share ``other``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import stat_keys
from ..aop.shape import drift
from ..aop.text import storable_text

SAMPLE_ALL = 200
EVERY = 20
MAX_KEYS = 50


class ShapeWatch:
    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self.replies: dict[str, int] = {}
        self.names: dict[tuple[str, str], set[str]] = {}

    def see(self, api: str, payload: Mapping[str, Any]) -> None:
        seen = self.replies[api] = self.replies.get(api, 0) + 1
        if seen > SAMPLE_ALL and seen % EVERY:
            return
        self.stats.inc_value(stat_keys.shape(api, "sampled"))
        unknown, missing = drift(api, payload)
        for kind, keys in (("unknown", unknown), ("missing", missing)):
            for key in keys:
                self.stats.inc_value(stat_keys.shape(api, kind, self._name(api, kind, key)))

    def _name(self, api: str, kind: str, key: str) -> str:
        name = storable_text(key)[:80].replace("/", "|") or "?"
        names = self.names.setdefault((api, kind), set())
        if name not in names:
            if len(names) >= MAX_KEYS:
                return "other"
            names.add(name)
        return name
