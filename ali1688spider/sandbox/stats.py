"""Counters of the emulator, served as JSON by ``GET /_sandbox/stats``.

``requests`` counts every request to ``/openapi`` (the ``/_sandbox`` endpoints are not counted).
Each reply is counted once in ``by_outcome``: ``ok``, ``business_failure``, an error code
(``gw.SignatureInvalid``, ``401``, ``gw.QosAppFrequencyLimit``…), an OAuth error
(``invalid_grant``, ``invalid_client``…), or a fault without a code (``http_5xx``, ``malformed``,
``slow`` — a slow reply carries its normal answer).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

SIGNATURE_CODES = frozenset({"gw.SignatureMissing", "gw.SignatureInvalid"})
SERVED_OUTCOMES = frozenset({"ok", "business_failure", "slow"})


class Stats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.arrivals = 0  # API calls that passed the signature check (the quota's count)
        self.throttled = 0  # API calls refused by the real quota (not injected faults)
        self.served = 0  # API calls answered with the product or a business failure
        self.signature_failures = 0
        self.token_grants = 0  # access tokens issued (refresh and authorization_code grants)
        self.token_postpones = 0
        self.authorizations = 0  # codes issued by /_sandbox/authorize
        self.by_outcome: Counter[str] = Counter()
        self.by_api: Counter[str] = Counter()
        self.since = time.monotonic()

    def count(self, api_name: str, outcome: str, *, api_call: bool) -> None:
        """Count one ``/openapi`` reply."""
        self.requests += 1
        self.by_api[api_name] += 1
        self.by_outcome[outcome] += 1
        if outcome in SIGNATURE_CODES:
            self.signature_failures += 1
        elif api_call and outcome in SERVED_OUTCOMES:
            self.served += 1

    def snapshot(self, extra: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        data: dict[str, Any] = {
            "requests": self.requests,
            "served": self.served,
            "arrivals": self.arrivals,
            "throttled": self.throttled,
            "signature_failures": self.signature_failures,
            "token_grants": self.token_grants,
            "token_postpones": self.token_postpones,
            "authorizations": self.authorizations,
            "by_outcome": dict(self.by_outcome),
            "by_api": dict(self.by_api),
            "seconds_since_reset": round(now - self.since, 3),
            "uptime": round(now - self.started, 3),
        }
        data.update(extra)
        return data
