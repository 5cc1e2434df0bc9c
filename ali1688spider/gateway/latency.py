"""How long the gateway takes to answer, per API: p50, p95 and the maximum of a crawl's calls.

Each reply's ``download_latency`` (Scrapy's: from sending the request to its response) goes into
logarithmic buckets 5 % wide, so a crawl of millions of calls keeps a few hundred counters per
API, and a percentile is read to within 5 %. The maximum is exact.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

GROWTH = 1.05  # bucket width: each bucket is 5 % wider than the one below
FLOOR_MS = 0.1  # latencies below this share the first bucket


def _bucket(ms: float) -> int:
    return 0 if ms <= FLOOR_MS else 1 + int(math.log(ms / FLOOR_MS, GROWTH))


def _upper(bucket: int) -> float:
    return FLOOR_MS * GROWTH ** bucket  # the top of the bucket: a percentile is never under-read


@dataclass
class Histogram:
    counts: Counter[int] = field(default_factory=Counter)
    calls: int = 0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.counts[_bucket(ms)] += 1
        self.calls += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, share: float) -> float:
        """The latency (ms) that ``share`` of the calls did not exceed."""
        wanted = max(1, math.ceil(share * self.calls))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= wanted:
                return min(_upper(bucket), self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, float]:
        return {"calls": self.calls, "p50_ms": round(self.percentile(0.5), 1),
                "p95_ms": round(self.percentile(0.95), 1), "max_ms": round(self.max_ms, 1)}


class Latencies:
    """The latencies of a crawl's gateway calls, per API and for all of them."""

    def __init__(self) -> None:
        self.by_api: dict[str, Histogram] = {}
        self.all = Histogram()

    def add(self, api: str, seconds: float) -> None:
        ms = max(0.0, seconds * 1000)
        self.by_api.setdefault(api, Histogram()).add(ms)
        self.all.add(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"all": {calls, p50_ms, p95_ms, max_ms}, "<api>": {…}, …}``; empty without calls."""
        if not self.all.calls:
            return {}
        return {"all": self.all.summary(), **{api: h.summary() for api, h in sorted(self.by_api.items())}}
