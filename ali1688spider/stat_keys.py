"""The crawl's own stats: every ``ali1688/…`` key named once, and the one reader of the counts.

Components count with these names (``stats.inc_value(stat_keys.PRODUCTS)``); the progress
line, the summary, the ``runs`` document, the alerts and the monitors read them back through
:func:`count` and :func:`failures_by_reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREFIX = "ali1688/"

# -- inputs: what was read, and where each input ended -------------------------------------------
INPUT_TOTAL = "ali1688/input/total"  # inputs expected (lines of the file, ids given, stale products)
INPUT_READ = "ali1688/input/read"  # inputs read so far
INPUT_DUPLICATE = "ali1688/input/duplicate"  # inputs naming an offer already taken (fetched once)
FRESH = "ali1688/fresh"  # ids skipped: fetched within ALI1688_FRESH_FOR
PRODUCTS = "ali1688/products"  # products that passed validation
UNAVAILABLE = "ali1688/unavailable"  # stored products the API now says are gone: kept, available=false
SEARCHES = "ali1688/search/done"  # searches that ended with their hits stored (search, shop, image)
SEARCH_PAGES = "ali1688/search/pages"  # result pages read
SEARCH_HITS = "ali1688/search/hits"  # hits read into listings
QUEUED = "ali1688/search/queued"  # found offers queued as product entries (queued searches)
UNCHANGED = "ali1688/search/unchanged"  # found offers not fetched: the listing shows no change since the stored one
FOLLOWED = "ali1688/follow/followed"  # offers 1688 now sends messages for (scrapy crawl follow)
UNFOLLOWED = "ali1688/follow/unfollowed"  # offers it was told to stop sending them for
MESSAGES_READ = "ali1688/messages/read"  # messages replayed (scrapy crawl messages)
MESSAGES_ACCEPTED = "ali1688/messages/accepted"  # … stored and handled now
MESSAGES_DUPLICATE = "ali1688/messages/duplicate"  # … handled before (a push got through after all)
MESSAGES_MALFORMED = "ali1688/messages/malformed"  # … that are no message (no msgId, not JSON)
MESSAGES_QUEUED = "ali1688/messages/queued"  # offers queued for a refresh by them
MESSAGES_CONFIRMED = "ali1688/messages/confirmed"  # … confirmed to 1688 after they were stored
MESSAGE_REFRESHES = "ali1688/messages/refreshes"  # queue entries a message queued, fetched (product_redis)
MESSAGE_SEEN = "ali1688/messages/seen"  # … not fetched: stored products fetched after the message's birth
MESSAGE_MAX_WAIT = "ali1688/messages/max_wait_seconds"  # longest from a message's birth to its fetch
FAILED_PREFIX = "ali1688/failed/"  # + a FailureReason: inputs that became a failure

# -- the Redis queue -----------------------------------------------------------------------------
QUEUE_TAKEN = "ali1688/queue/taken"
QUEUE_RECLAIMED = "ali1688/queue/reclaimed"
QUEUE_DEAD = "ali1688/queue/dead"
QUEUE_ACKED = "ali1688/queue/acked"
REDIS_ERRORS = "ali1688/redis/errors"

# -- gateway calls -------------------------------------------------------------------------------
REQUEST_SENT = "ali1688/request/sent"
REQUEST_FIRST_AT = "ali1688/request/first_at"
REQUEST_LAST_AT = "ali1688/request/last_at"
QUOTA_WAITED_MS = "ali1688/quota/waited_ms"
QUOTA_REBOOKED = "ali1688/quota/rebooked"  # permits gone stale while a token refresh ran
STATUS_UNKNOWN = "ali1688/status/unknown"  # products whose status no rule knows (aop/product.py)
QUOTA_MODE = "ali1688/quota/mode"  # auto (found while crawling), ceiling (ALI1688_QPS=N) or off
QUOTA_CEILING = "ali1688/quota/ceiling"  # ALI1688_QPS when it is set
QUOTA_START = "ali1688/quota/start_rate"  # calls/s the crawl started from
QUOTA_RATE = "ali1688/quota/rate"  # calls/s now (at the end: the last rate)
QUOTA_LEARNED = "ali1688/quota/learned"  # the highest rate known to pass (0: none yet)
QUOTA_FOUND = "ali1688/quota/found"  # 1 once a throttle bounded the learned rate
QUOTA_CUTS = "ali1688/quota/cuts"  # rate cuts after a throttle
QUOTA_RAISES = "ali1688/quota/raises"  # rate raises (doubling, probes)
SHAPE_PREFIX = "ali1688/shape/"  # + <api>/sampled, <api>/unknown/<key path>, <api>/missing/<key>
LATENCY_PREFIX = "ali1688/latency/"  # + p50_ms, p95_ms, max_ms (all calls), + <api>/p95_ms… (per API)
RESPONSE_PREFIX = "ali1688/response/"  # + an Outcome: how replies were classified
ERROR_PREFIX = "ali1688/error/"  # + a gateway error code or an exception name
RETRY_BASE = "ali1688/retry"  # get_retry_request's stats_base_key: …/count, …/reason_count/…
RETRY_COUNT = "ali1688/retry/count"
TOKEN_REFRESH = "ali1688/token/refresh"
FATAL = "ali1688/fatal"  # the code of the error that stopped the crawl
STOPPED = "ali1688/stopped"  # why the crawl stopped early without an error (calls_per_day)

# -- MongoDB -------------------------------------------------------------------------------------
MONGO_BULK_WRITES = "ali1688/mongo/bulk_writes"
MONGO_PRODUCTS_WRITTEN = "ali1688/mongo/products_written"
MONGO_FAILURES_WRITTEN = "ali1688/mongo/failures_written"
MONGO_HISTORY_WRITTEN = "ali1688/mongo/history_written"
MONGO_FAILURES_YIELDED = "ali1688/mongo/failures_yielded"  # failures not written: the id has a newer product
MONGO_MAX_BUFFERED = "ali1688/mongo/max_buffered"
MONGO_ITEMS_WAITED = "ali1688/mongo/items_waited"
MONGO_WRITE_RETRIES = "ali1688/mongo/write_retries"
MONGO_UNSAVED = "ali1688/mongo/unsaved"

# -- the run -------------------------------------------------------------------------------------
ELAPSED_SECONDS = "ali1688/elapsed_seconds"
ALERT = "ali1688/alert"  # monitors that failed at the end of the crawl
ALERT_PERIODIC = "ali1688/alert/periodic"  # periodic checks in which a monitor failed


def failed(reason: str) -> str:
    return FAILED_PREFIX + reason


def response(outcome: str) -> str:
    return RESPONSE_PREFIX + outcome


def latency(figure: str, api: str | None = None) -> str:
    """``ali1688/latency/p95_ms`` (all calls) or ``ali1688/latency/<api>/p95_ms``."""
    return f"{LATENCY_PREFIX}{api}/{figure}" if api else f"{LATENCY_PREFIX}{figure}"


def latency_figures(stats: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{"all": {"p50_ms", "p95_ms", "max_ms"}, "<api>": {…}}`` from the ``ali1688/latency/…`` stats."""
    figures: dict[str, dict[str, float]] = {}
    for key, value in stats.items():
        if key.startswith(LATENCY_PREFIX):
            scope, _, figure = key[len(LATENCY_PREFIX):].rpartition("/")
            figures.setdefault(scope or "all", {})[figure] = value
    return figures


def shape(api: str, kind: str, key: str | None = None) -> str:
    """``ali1688/shape/<api>/sampled`` or ``ali1688/shape/<api>/<unknown|missing>/<key>``."""
    return f"{SHAPE_PREFIX}{api}/{kind}" + (f"/{key}" if key else "")


def shape_counts(stats: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{api: {"sampled": n, "unknown": {key: n}, "missing": {key: n}}}`` from the stats."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in stats.items():
        if not name.startswith(SHAPE_PREFIX):
            continue
        api, _, rest = name[len(SHAPE_PREFIX):].partition("/")
        entry = found.setdefault(api, {"sampled": 0, "unknown": {}, "missing": {}})
        kind, _, key = rest.partition("/")
        if kind == "sampled":
            entry["sampled"] = value
        elif kind in ("unknown", "missing") and key:
            entry[kind][key] = value
    return found


def error(code: str) -> str:
    return ERROR_PREFIX + code


def count(stats: Mapping[str, Any], key: str) -> int:
    """A counter's value; 0 when it is absent or not a number."""
    value = stats.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def failures_by_reason(stats: Mapping[str, Any]) -> dict[str, int]:
    """``{reason: count}`` of the inputs that became failures, from ``ali1688/failed/<reason>``."""
    return {key[len(FAILED_PREFIX):]: count(stats, key) for key in sorted(stats) if key.startswith(FAILED_PREFIX)}
