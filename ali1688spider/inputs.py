"""What enters a crawl, read by one set of rules from every entry point.

- ``-a ids=…`` (``scrapy crawl product``, ``scrapy enqueue -a``): comma-separated references;
- files (``-a ids_file=…``, ``scrapy enqueue FILE``): one reference per line, streamed, UTF-8 or
  UTF-16 by its byte-order mark, ``#`` comments and blank lines skipped;
- Redis queue entries (``product_redis``): a reference, or a JSON object
  ``{"id": "…", "api": "…", "country": "…"}``.

A reference is an offer id or an offer URL (``aop.refs``, PROTOCOL.md §6); whatever is not one
raises one of :data:`NOT_A_REFERENCE` with a message that says what is wrong, and its entry point
records it as an ``invalid_reference`` failure.
"""

from __future__ import annotations

import codecs
import json
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from hashlib import blake2b
from heapq import merge
from pathlib import Path
from typing import Any

from .aop.apis import ApiSpec, product_api
from .aop.errors import InvalidOfferRef
from .aop.text import storable_text

#: What reading an input that is no offer reference raises.
NOT_A_REFERENCE = (InvalidOfferRef, ValueError, RecursionError)
#: The spider that reads the Redis queue: its list is ``REDIS_START_URLS_KEY`` % its name.
QUEUE_SPIDER = "product_redis"

_COMMENT = re.compile(r"(^|\s)#.*$")  # a '#' inside a URL (a fragment) is not a comment
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")


_ENCRYPTED = 1 << 63


class SeenIds:
    """The offer ids a crawl has taken, to fetch each once, at about 8 bytes an id (a set of
    fingerprints, Scrapy's dupefilter, costs ~100: 100 MB for a million-line file). Exact: an
    offer id fits in 64 bits. New ids wait in a small set; every ``BUFFER`` of them are merged
    into the last sorted ``array('Q')`` of up to ``CHUNK`` ids; lookups bisect each chunk. A
    chunk is a single block of up to 2 MB, which the tuned C allocator (monitoring/memory.py)
    maps and unmaps whole, so merging does not fragment the heap. (It used numpy: importing it
    cost every crawl 22 MB.)"""

    BUFFER = 1 << 14
    CHUNK = 1 << 18

    def __init__(self) -> None:
        self._chunks: list[array[int]] = []  # sorted; all but the last hold CHUNK ids or more
        self._recent: set[int] = set()

    def add(self, offer_id: str) -> bool:
        """Remember ``offer_id`` (digits, or an encrypted id); False when it was taken already.
        An encrypted id is kept as 63 bits of its BLAKE2b digest with the top bit set, apart
        from every offer id (< 2**50): two of a million collide with p ≈ 5e-8."""
        key = int(offer_id) if offer_id.isdigit() else _ENCRYPTED | int.from_bytes(
            blake2b(offer_id.encode(), digest_size=8).digest()) >> 1
        if key in self._recent or any(_holds(chunk, key) for chunk in self._chunks):
            return False
        self._recent.add(key)
        if len(self._recent) >= self.BUFFER:
            self._sort_recent()
        return True

    def _sort_recent(self) -> None:
        recent, self._recent = sorted(self._recent), set()
        if self._chunks and len(self._chunks[-1]) + len(recent) <= self.CHUNK:
            self._chunks[-1] = array("Q", merge(self._chunks[-1], recent))
        else:
            self._chunks.append(array("Q", recent))

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks) + len(self._recent)


def _holds(chunk: array[int], key: int) -> bool:
    index = bisect_left(chunk, key)
    return index < len(chunk) and chunk[index] == key


def language(value: object) -> str:
    """A ``country`` (the crossborder API's translation language: ``en``, ``ja``, ``ru``…, PROTOCOL.md
    §5), checked: anything else is a ValueError, before it can reach a request."""
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise ValueError(f"country must be a language code such as en, ja or ru, got {shown!r}")
    return value


def currency(value: object) -> str:
    """A ``currency`` for the crossborder API's ``foreignCurrency*`` prices: an ISO 4217 code
    (``USD``, ``EUR``, ``RUB``), upper-cased; anything else is a ValueError."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise ValueError(f"currency must be a three-letter code such as USD, EUR or RUB, got {shown!r}")
    return value.strip().upper()


def split_ids(groups: str | Iterable[str] | None) -> Iterator[str]:
    """The references of one or more comma-separated arguments, stripped, blanks left out."""
    if groups is None:
        return
    for group in [groups] if isinstance(groups, str) else groups:
        yield from (part.strip() for part in group.split(",") if part.strip())


def _encoding_of(path: str | Path) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 when the file starts with its BOM (Windows
    "Unicode" text)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not head.startswith(codecs.BOM_UTF32_LE):
        return "utf-16"
    return "utf-8-sig"


def read_references(path: str | Path) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, reference)`` from a file; skips blanks and ``#`` comments."""
    with open(path, encoding=_encoding_of(path), errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            text = _COMMENT.sub("", line).strip()
            if text:
                yield number, text


def count_references(path: str | Path) -> int:
    return sum(1 for _ in read_references(path))


def given_references(ids: str | None, ids_file: str | Path | None) -> Iterator[str]:
    """The references a spider was given, streamed: those of ``-a ids``, then ``-a ids_file``'s."""
    yield from split_ids(ids)
    if ids_file:
        for _, text in read_references(ids_file):
            yield text


def count_given(ids: str | None, ids_file: str | Path | None) -> int:
    """How many references :func:`given_references` yields (the file is read once more)."""
    return sum(1 for _ in split_ids(ids)) + (count_references(ids_file) if ids_file else 0)


def entry_text(entry: bytes) -> str:
    """A queue entry's text, as its failure and its log line show it."""
    return entry.decode("utf-8", errors="replace").strip()


def parse_queue_entry(text: str, default_api: ApiSpec, default_country: str) -> tuple[str, ApiSpec, str]:
    """``(reference, api, country)`` of a queue entry's text; raises one of :data:`NOT_A_REFERENCE`."""
    if not text.startswith("{"):
        return text, default_api, default_country
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ValueError("the entry is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)):
        raise ValueError('a JSON entry needs "id": {"id": "…", "api": "…", "country": "…"}')
    api = product_api(str(data["api"])) if data.get("api") else default_api
    return str(data["id"]), api, language(data.get("country") or default_country)


def queued_by(text: str) -> dict[str, Any] | None:
    """Why an entry was queued, when a change message queued it (``{"id", "reason", "message",
    "born"}``, messages/inbox.py): ``{"reason", "message", "born"}``, kept as the product's
    ``changed_by``; None for any other entry."""
    if not text.startswith("{") or '"reason"' not in text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return None
    born = data.get("born")
    return {"reason": storable_text(data["reason"])[:200], "message": storable_text(str(data.get("message", "")))[:40],
            "born": datetime.fromtimestamp(born / 1000, UTC) if isinstance(born, int) and 0 < born < 10**14 else None}


#: A queued search: ``{"search": "保温杯", "country": "en", "max_results": 500}``, ``{"shop": "BBB…", …}``
#: or ``{"image": "https://…/photo.jpg", …}``; the key names the kind of search.
SEARCH_ENTRY_KINDS = {"search": "keyword", "shop": "seller", "image": "image"}


def parse_search_entry(text: str) -> tuple[str, object, dict[str, Any]] | None:
    """``(kind, target, options)`` of a queued search, None for an entry that is no search (an
    offer); ``ValueError`` for a search entry that cannot be one."""
    if not text.startswith("{"):
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None  # parse_queue_entry says what is wrong with it
    if not isinstance(data, dict):
        return None
    kinds = [key for key in SEARCH_ENTRY_KINDS if key in data]
    if not kinds:
        return None
    if len(kinds) > 1:
        raise ValueError(f"a queued search names one of search, shop or image, not {' and '.join(kinds)}")
    options = {key: value for key, value in data.items() if key != kinds[0]}
    if any(isinstance(value, (dict, list)) for value in options.values()):
        raise ValueError("a queued search's options are text or numbers")
    return SEARCH_ENTRY_KINDS[kinds[0]], data[kinds[0]], options


def queue_key(template: str) -> str:
    """The Redis list the queue spider reads, from ``REDIS_START_URLS_KEY`` (scrapy-redis's form)."""
    return template % {"name": QUEUE_SPIDER}
