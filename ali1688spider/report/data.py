"""What the report shows, read from MongoDB into plain dataclasses.

Money stays exact: ``Decimal128`` becomes :class:`~decimal.Decimal` here and is never turned into
a float (only :mod:`.charts` does that, for plotting). A product's *reference price* is the price
of its first tier (the lowest ``min_quantity``); price moves are read from the ``price_tiers``
changes in ``product_history``. The searches part groups ``searches`` by their ``query`` and reads
the hits of each query's latest run from ``listings``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from ..config import parse_duration, redact_uri
from ..store.documents import (
    FAILURES,
    HISTORY,
    LISTINGS,
    MESSAGES,
    PRODUCTS,
    RUNS,
    SEARCHES,
    short_error,
    tier_prices,
    to_decimal,
)

PRICE_TIERS = "price_tiers"
RECENT_RUNS = 10
MAX_SEARCHES = 10  # queries shown, most recently run first
TOP_HITS = 10  # hits of a query's latest run listed by month_sold
SHORT_ID = 12  # characters of a seller id or image digest shown in a query's label


class ReportError(Exception):
    """The report cannot be made; the message is one line that says why."""


def parse_window(text: str) -> timedelta | None:
    """``all`` → None (no window); else a duration (``7d``, ``24h``, ``30m``, ``2w``; config.py's grammar)
    that is not zero."""
    if text.strip().lower() == "all":
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(f"not a time window: {text!r} (use e.g. 7d, 24h, 30m, 2w or all)")
    return timedelta(seconds=seconds)


def connect(uri: str, database: str, *, timeout: float = 5.0) -> Database[dict[str, Any]]:
    """The database, after checking that the server answers."""
    ms = max(1, int(timeout * 1000))
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, tz_aware=True, tzinfo=UTC,
            appname="ali1688spider-report",
        )
        client.admin.command("ping")
    except PyMongoError as exc:
        raise ReportError(f"MongoDB at {redact_uri(uri)} cannot be reached: {short_error(exc)}") from None
    return client.get_database(database)


def tiers_of(value: Any) -> dict[int, Decimal]:
    """``[{min_quantity, price}, …]`` → ``{min_quantity: price}`` (tiers without a price left out)."""
    tiers = {quantity: price for quantity, price in tier_prices(value) if price is not None and price.is_finite()}
    return dict(sorted(tiers.items()))


def reference_price(value: Any) -> Decimal | None:
    """The first tier's price: the one with the lowest ``min_quantity``."""
    tiers = tiers_of(value)
    return next(iter(tiers.values())) if tiers else None


def percent_change(old: Decimal, new: Decimal) -> Decimal | None:
    return None if old == 0 else (new - old) / old * 100


@dataclass(frozen=True)
class RunQuota:
    """The adaptive quota of a run: how it ended, and its chart's points ``(second, seconds covered,
    calls started, throttled, rate)``."""

    mode: str
    rate: float
    learned: float
    found: bool
    start_rate: float
    cuts: int
    raises: int
    series: list[tuple[float, float, int, int, float]]


@dataclass(frozen=True)
class LastRun:
    run_id: str
    spider: str
    started_at: datetime | None
    finished_at: datetime | None
    finish_reason: str
    fetched: int
    failed: int
    elapsed_seconds: float | None
    products_per_second: float | None
    quota: RunQuota | None = None
    latency: dict[str, dict[str, float]] = field(default_factory=dict)  # "all" / API → p50_ms, p95_ms, max_ms


@dataclass(frozen=True)
class Totals:
    products: int
    fetched_in_window: int
    new_in_window: int
    changed_in_window: int
    failures: int
    failures_in_window: int
    runs_in_window: int
    fetched_by_runs: int
    failed_by_runs: int


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    count: int
    in_window: int
    last_at: datetime | None


@dataclass(frozen=True)
class Mover:
    product_id: str
    subject: str
    detail_url: str
    old: Decimal
    new: Decimal
    change_pct: Decimal
    moves: int
    last_at: datetime


@dataclass(frozen=True)
class PricePoint:
    at: datetime
    tiers: dict[int, Decimal]


@dataclass(frozen=True)
class TierHistory:
    product_id: str
    subject: str
    detail_url: str
    points: list[PricePoint]

    @property
    def quantities(self) -> list[int]:
        return sorted({quantity for point in self.points for quantity in point.tiers})


@dataclass(frozen=True)
class QueryRun:
    """One run of a search (a ``searches`` document): what the gateway reported and what was stored."""

    search_id: str
    spider: str
    started_at: datetime
    finished_at: datetime | None
    finish_reason: str
    total_records: int | None  # the gateway's count of all matching offers (None: no page was read)
    pages: int
    hits: int
    unchanged: int
    details: int


@dataclass(frozen=True)
class Hit:
    """One hit of a run (a ``listings`` document), as the top-offers table shows it."""

    rank: int
    offer_id: str
    subject: str
    price: Decimal | None
    month_sold: int | None
    repurchase_rate: float | None  # percent


@dataclass(frozen=True)
class SearchedQuery:
    """A query run in the window: its runs there (oldest first) and its latest run's hits."""

    query: dict[str, Any]
    label: str
    runs: list[QueryRun]
    stored_hits: int  # hits of the latest run found in ``listings``
    prices: list[Decimal]  # their prices (CNY), in rank order
    top: list[Hit]  # those with a month_sold, most sold first (at most TOP_HITS)

    @property
    def latest(self) -> QueryRun:
        return self.runs[-1]


@dataclass
@dataclass
class MessageSummary:
    """Change messages received in the window, and the refreshes they led to."""

    received: int
    by_topic: list[tuple[str, int]]  # most frequent first
    redelivered: int  # delivered more than once (duplicates, redeliveries)
    unhandled: int  # stored, not handled yet: 1688 is to deliver them again
    queued: int  # offers queued for a refresh
    changes: int  # product changes a message-queued refresh (or the message itself) recorded
    delays: list[float]  # seconds from a message's birth to the change it led to, sorted

    def delay(self, share: float) -> float | None:
        """The ``share`` percentile of the delays (None without any)."""
        return nearest_rank(self.delays, share) if self.delays else None


def nearest_rank(ordered: Sequence[float], share: float) -> float:
    """The ``share`` percentile (0 < share <= 1) of sorted, non-empty values, by nearest rank: the
    smallest value with at least that share of the values at or below it."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class ReportData:
    database: str
    uri: str
    generated_at: datetime
    window: timedelta | None
    since: datetime | None
    totals: Totals
    last_run: LastRun | None
    runs: list[LastRun]
    reasons: list[ReasonRow]
    movers: list[Mover]
    changes_pct: list[Decimal] = field(default_factory=list)
    history: TierHistory | None = None
    searches: list[SearchedQuery] = field(default_factory=list)
    messages: MessageSummary | None = None


def load(db: Database[dict[str, Any]], *, uri: str, window: timedelta | None, product_id: str | None = None,
         top: int = 20, now: datetime | None = None) -> ReportData:
    """Everything the page shows. Raises :class:`ReportError` when the database is empty, the
    product is unknown or MongoDB fails part-way."""
    now = now or datetime.now(UTC)
    since = now - window if window is not None else None
    try:
        if not any(db[name].find_one({}, {"_id": 1}) for name in (PRODUCTS, FAILURES, RUNS, SEARCHES)):
            raise ReportError(
                f"database {db.name!r} at {redact_uri(uri)} holds no products, failures, runs or searches")
        last_run, runs, run_totals = _runs(db, since)
        movers, changes_pct = _moves(db, since, top)
        history = None
        chosen = product_id or (movers[0].product_id if movers else None)
        if chosen is not None:
            history = tier_history(db, chosen)
            if history is None:
                raise ReportError(f"product {chosen!r} is in neither {PRODUCTS} nor {HISTORY} of {db.name!r}")
        return ReportData(
            database=db.name, uri=redact_uri(uri), generated_at=now, window=window, since=since,
            totals=_totals(db, since, run_totals), last_run=last_run, runs=runs,
            reasons=_reasons(db, since), movers=movers, changes_pct=changes_pct, history=history,
            searches=recent_searches(db, since), messages=message_summary(db, since),
        )
    except PyMongoError as exc:
        raise ReportError(f"reading {db.name!r} at {redact_uri(uri)} failed: {short_error(exc)}") from None


def _since(name: str, since: datetime | None) -> dict[str, Any]:
    return {} if since is None else {name: {"$gte": since}}


def _changed(products: Collection[dict[str, Any]], since: datetime | None) -> int:
    """Products that changed in the window after they were first seen: a product's first fetch
    sets ``changed_at`` to ``first_seen_at`` (it is new, not changed)."""
    found = products.find(_since("changed_at", since) or {"changed_at": {"$ne": None}},
                          {"_id": 0, "changed_at": 1, "first_seen_at": 1})
    return sum(1 for doc in found if doc.get("first_seen_at") is None or doc["changed_at"] > doc["first_seen_at"])


def _totals(db: Database[dict[str, Any]], since: datetime | None, runs: tuple[int, int, int]) -> Totals:
    products, failures = db[PRODUCTS], db[FAILURES]
    return Totals(
        products=products.count_documents({}),
        fetched_in_window=products.count_documents(_since("fetched_at", since)),
        new_in_window=products.count_documents(_since("first_seen_at", since)),
        changed_in_window=_changed(products, since),
        failures=failures.count_documents({}),
        failures_in_window=failures.count_documents(_since("at", since)),
        runs_in_window=runs[0], fetched_by_runs=runs[1], failed_by_runs=runs[2],
    )


def _run(doc: Mapping[str, Any]) -> LastRun:
    def number(name: str) -> float | None:
        value = doc.get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return LastRun(
        run_id=str(doc.get("_id", "")), spider=str(doc.get("spider") or ""),
        started_at=_when(doc.get("started_at")), finished_at=_when(doc.get("finished_at")),
        finish_reason=str(doc.get("finish_reason") or "—"),
        fetched=_count(doc.get("fetched")), failed=_count(doc.get("failed")),
        elapsed_seconds=number("elapsed_seconds"), products_per_second=number("products_per_second"),
        quota=_quota(doc.get("quota")),
        latency=_latency(doc.get("latency")),
    )


def _latency(doc: Any) -> dict[str, dict[str, float]]:
    if not isinstance(doc, Mapping):
        return {}
    return {str(scope): {str(k): _number(v) for k, v in figures.items()}
            for scope, figures in doc.items() if isinstance(figures, Mapping)}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else 0.0


def _quota(doc: Any) -> RunQuota | None:
    """A run's ``quota`` part, read defensively (a hand-edited or older document may hold anything)."""
    if not isinstance(doc, Mapping):
        return None
    series = []
    for point in doc.get("series") or []:
        if isinstance(point, (list, tuple)) and len(point) == 5:
            second, covered, sent, throttled, rate = (_number(value) for value in point)
            if covered > 0:
                series.append((second, covered, int(sent), int(throttled), rate))
    return RunQuota(mode=_text(doc.get("mode")) or "auto", rate=_number(doc.get("rate")),
                    learned=_number(doc.get("learned")), found=doc.get("found") is True,
                    start_rate=_number(doc.get("start_rate")), cuts=_count(doc.get("cuts")),
                    raises=_count(doc.get("raises")), series=series)


def _runs(db: Database[dict[str, Any]],
          since: datetime | None) -> tuple[LastRun | None, list[LastRun], tuple[int, int, int]]:
    """The last run overall, the recent runs in the window (newest first) and the window's
    (runs, fetched, failed). A run is in the window when it started or finished in it."""
    runs = db[RUNS]
    last = runs.find_one({}, sort=[("started_at", DESCENDING)])
    query = {} if since is None else {"$or": [_since("started_at", since), _since("finished_at", since)]}
    count = fetched = failed = 0
    recent: list[LastRun] = []
    projection = {"failed_by_reason": 0, "quota.series": 0}
    for doc in runs.find(query, projection).sort("started_at", DESCENDING):
        count += 1
        fetched += _count(doc.get("fetched"))
        failed += _count(doc.get("failed"))
        if len(recent) < RECENT_RUNS:
            recent.append(_run(doc))
    return (_run(last) if last else None), recent, (count, fetched, failed)


def _reasons(db: Database[dict[str, Any]], since: datetime | None) -> list[ReasonRow]:
    """Failures by reason, most frequent first: all that are failing now, and those recorded in the window."""
    group = {"$group": {"_id": "$reason", "n": {"$sum": 1}, "last": {"$max": "$at"}}}
    everything = {str(row["_id"] or "unknown"): row for row in db[FAILURES].aggregate([group])}
    windowed: dict[str, int] = {}
    if since is not None:
        for row in db[FAILURES].aggregate([{"$match": _since("at", since)}, group]):
            key = str(row["_id"] or "unknown")
            windowed[key] = windowed.get(key, 0) + _count(row["n"])
    rows = [
        ReasonRow(reason, _count(row["n"]), windowed.get(reason, 0) if since is not None else _count(row["n"]),
                  _when(row.get("last")))
        for reason, row in everything.items()
    ]
    return sorted(rows, key=lambda row: (-row.count, row.reason))


def _price_changes(docs: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, datetime, Any, Any]]:
    for doc in docs:
        at = _when(doc.get("at"))
        if at is None:
            continue
        for change in doc.get("changes") or []:
            if isinstance(change, Mapping) and change.get("field") == PRICE_TIERS:
                yield str(doc.get("product_id")), at, change.get("old"), change.get("new")


def _moves(db: Database[dict[str, Any]], since: datetime | None, top: int) -> tuple[list[Mover], list[Decimal]]:
    """The products whose reference price moved most (net, first old → last new in the window),
    and the % change of every single reference-price move in the window."""
    query = {**_since("at", since), "changes.field": PRICE_TIERS}
    cursor = db[HISTORY].find(query, {"product_id": 1, "at": 1, "changes": 1}).sort(
        [("at", ASCENDING), ("_id", ASCENDING)])
    first: dict[str, Decimal] = {}
    last: dict[str, tuple[Decimal, datetime]] = {}
    moves: dict[str, int] = {}
    changes_pct: list[Decimal] = []
    for product_id, at, old_tiers, new_tiers in _price_changes(cursor):
        old, new = reference_price(old_tiers), reference_price(new_tiers)
        if old is not None:
            first.setdefault(product_id, old)
        if new is not None:
            last[product_id] = (new, at)
        if old is not None and new is not None and old != new:
            moves[product_id] = moves.get(product_id, 0) + 1
            pct = percent_change(old, new)
            if pct is not None:
                changes_pct.append(pct)
    ranked: list[tuple[str, Decimal, Decimal, Decimal, datetime]] = []
    for product_id, old in first.items():
        if product_id not in last:
            continue
        new, at = last[product_id]
        pct = percent_change(old, new)
        if pct is not None and pct != 0:
            ranked.append((product_id, old, new, pct, at))
    ranked.sort(key=lambda row: (-abs(row[3]), row[0]))
    ranked = ranked[:max(0, top)]
    products = {doc["_id"]: doc for doc in db[PRODUCTS].find(
        {"_id": {"$in": [row[0] for row in ranked]}}, {"subject": 1, "detail_url": 1})} if ranked else {}
    movers = [
        Mover(product_id, _text(products.get(product_id, {}).get("subject")),
              _text(products.get(product_id, {}).get("detail_url")), old, new, pct, moves.get(product_id, 0), at)
        for product_id, old, new, pct, at in ranked
    ]
    return movers, changes_pct


def tier_history(db: Database[dict[str, Any]], product_id: str) -> TierHistory | None:
    """The product's tier prices at each recorded change (all its history), starting with the
    tiers it had when first seen and ending with its current tiers; None if the id is unknown."""
    product = db[PRODUCTS].find_one({"_id": product_id}, {"subject": 1, "detail_url": 1, "price_tiers": 1,
                                                           "fetched_at": 1, "first_seen_at": 1})
    cursor = db[HISTORY].find({"product_id": product_id, "changes.field": PRICE_TIERS}).sort(
        [("at", ASCENDING), ("_id", ASCENDING)])
    changes = list(_price_changes(cursor))
    if product is None and not changes:
        return None
    points: list[PricePoint] = []
    if changes:
        _, at, old, _ = changes[0]
        first_seen = _when(product.get("first_seen_at")) if product else None
        if tiers_of(old) and first_seen is not None and first_seen < at:
            points.append(PricePoint(first_seen, tiers_of(old)))
        points.extend(PricePoint(at, tiers_of(new)) for _, at, _, new in changes)
    if product is not None:
        fetched_at = _when(product.get("fetched_at"))
        current = tiers_of(product.get("price_tiers"))
        if fetched_at is not None and current:
            if points and fetched_at <= points[-1].at:
                points[-1] = PricePoint(points[-1].at, current)
            else:
                points.append(PricePoint(fetched_at, current))
    product = product or {}
    return TierHistory(product_id, _text(product.get("subject")), _text(product.get("detail_url")), points)


def query_label(query: Mapping[str, Any]) -> str:
    """A stored search query in one line, e.g. ``keyword "保温杯" (en, price:asc)``,
    ``shop BBB… (ja)`` or ``image sha256:abcd… (en)``: long ids are cut, every option is named."""
    kind = _text(query.get("kind"))
    keyword = _text(query.get("keyword"))
    if kind == "keyword":
        head = f'keyword "{keyword}"'
    elif kind == "seller":
        head = f"shop {_shorten(_text(query.get('seller')))}"
    elif kind == "image":
        digest = _text(query.get("image"))
        prefix = "sha256:" if digest.startswith("sha256:") else ""
        head = f"image {prefix}{_shorten(digest.removeprefix(prefix))}"
    else:
        head = f"search {kind}".strip()
    if keyword and kind != "keyword":
        head += f' matching "{keyword}"'
    options = [_text(query.get("country")), _text(query.get("sort")), _price_range(query.get("price"))]
    category = query.get("category")
    if category is not None and category != "":
        options.append(f"category {category}")
    filters = query.get("filters")
    if isinstance(filters, list) and filters:
        options.append("filter " + ",".join(str(name) for name in filters))
    shown = [option for option in options if option]
    return f"{head} ({', '.join(shown)})" if shown else head


def _shorten(text: str) -> str:
    return text if len(text) <= SHORT_ID else text[:SHORT_ID] + "…"


def _price_range(value: Any) -> str:
    """``["10", "50"]`` → ``¥10–50``; one open end → ``≥ ¥10`` / ``≤ ¥50``."""
    if not isinstance(value, list) or len(value) != 2:
        return ""
    low, high = (str(end) if end is not None else "" for end in value)
    if low and high:
        return f"¥{low}–{high}"
    return f"≥ ¥{low}" if low else f"≤ ¥{high}" if high else ""


def recent_searches(db: Database[dict[str, Any]], since: datetime | None) -> list[SearchedQuery]:
    """The queries run in the window (a run started or finished in it), most recently run first
    (at most :data:`MAX_SEARCHES`), each with its runs in the window and its latest run's hits."""
    return [_searched(db, query, runs) for query, runs in _runs_by_query(db, since)[:MAX_SEARCHES]]


def _runs_by_query(db: Database[dict[str, Any]],
                   since: datetime | None) -> list[tuple[dict[str, Any], list[QueryRun]]]:
    """The window's ``searches`` grouped by their ``query`` dict (key order aside); each group's
    runs oldest first, the groups by their latest run, newest first."""
    window = {} if since is None else {"$or": [_since("started_at", since), _since("finished_at", since)]}
    groups: dict[str, tuple[dict[str, Any], list[QueryRun]]] = {}
    for doc in db[SEARCHES].find(window):
        query, run = doc.get("query"), _query_run(doc)
        if isinstance(query, Mapping) and run is not None:
            key = json.dumps(query, sort_keys=True, ensure_ascii=False, default=str)
            groups.setdefault(key, (dict(query), []))[1].append(run)
    for _, runs in groups.values():
        runs.sort(key=lambda run: (run.started_at, run.search_id))
    return sorted(groups.values(), key=lambda group: (group[1][-1].started_at, group[1][-1].search_id), reverse=True)


def _query_run(doc: Mapping[str, Any]) -> QueryRun | None:
    """A ``searches`` document; None when it has no time to be placed at."""
    started = _when(doc.get("started_at")) or _when(doc.get("finished_at"))
    if started is None:
        return None
    total = doc.get("total_records")
    return QueryRun(
        search_id=str(doc.get("_id", "")), spider=_text(doc.get("spider")), started_at=started,
        finished_at=_when(doc.get("finished_at")), finish_reason=_text(doc.get("finish_reason")) or "—",
        total_records=_count(total) if _is_number(total) else None, pages=_count(doc.get("pages")),
        hits=_count(doc.get("hits")), unchanged=_count(doc.get("unchanged")), details=_count(doc.get("details")),
    )


def _searched(db: Database[dict[str, Any]], query: dict[str, Any], runs: list[QueryRun]) -> SearchedQuery:
    hits = _hits(db, runs[-1].search_id)
    prices = [hit.price for hit in hits if hit.price is not None]
    sold = sorted((hit for hit in hits if hit.month_sold is not None),
                  key=lambda hit: (-(hit.month_sold or 0), hit.rank))
    return SearchedQuery(query=query, label=query_label(query), runs=runs, stored_hits=len(hits), prices=prices,
                         top=sold[:TOP_HITS])


def _hits(db: Database[dict[str, Any]], search_id: str) -> list[Hit]:
    """The stored hits of one run, by rank."""
    projection = {"rank": 1, "offer_id": 1, "subject": 1, "subject_trans": 1, "price": 1, "month_sold": 1,
                  "repurchase_rate": 1}
    cursor = db[LISTINGS].find({"search_id": search_id}, projection).sort("rank", ASCENDING)
    return [_hit(doc) for doc in cursor]


def _hit(doc: Mapping[str, Any]) -> Hit:
    price = to_decimal(doc.get("price"))
    sold, rate = doc.get("month_sold"), doc.get("repurchase_rate")
    return Hit(
        rank=_count(doc.get("rank")), offer_id=str(doc.get("offer_id") or ""),
        subject=_text(doc.get("subject")) or _text(doc.get("subject_trans")),
        price=price if price is not None and price.is_finite() else None,
        month_sold=_count(sold) if _is_number(sold) else None,
        repurchase_rate=_number(rate) if _is_number(rate) else None,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _count(value: Any) -> int:
    return int(_number(value))  # inf and NaN (a hand-edited document) count as 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def message_summary(db: Database[dict[str, Any]], since: datetime | None) -> MessageSummary | None:
    """The change messages received in the window (None when there are none)."""
    messages = db[MESSAGES]
    match = _since("received_at", since)
    if messages.find_one(match, {"_id": 1}) is None:
        return None
    topics = Counter[str]()
    redelivered = unhandled = queued = 0
    for doc in messages.find(match, {"topic": 1, "deliveries": 1, "handled_at": 1, "queued": 1}):
        topics[str(doc.get("topic"))] += 1
        redelivered += (doc.get("deliveries") or 1) > 1
        unhandled += doc.get("handled_at") is None
        queued += len(doc.get("queued") or [])
    delays: list[float] = []
    changes = 0
    for doc in db[HISTORY].find({**_since("at", since), "changed_by": {"$exists": True}}, {"at": 1, "changed_by": 1}):
        changes += 1
        born = (doc.get("changed_by") or {}).get("born")
        if isinstance(born, datetime) and isinstance(doc.get("at"), datetime):
            delays.append(max(0.0, (doc["at"] - born).total_seconds()))
    return MessageSummary(received=sum(topics.values()), by_topic=topics.most_common(), redelivered=redelivered,
                          unhandled=unhandled, queued=queued, changes=changes, delays=sorted(delays))
