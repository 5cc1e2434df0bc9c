"""Counters of the emulator, served as JSON by ``GET /_sandbox/stats``.

``requests`` counts every request to ``/openapi`` (the ``/_sandbox`` endpoints are not counted).
Each reply is counted once in ``by_outcome``: ``ok``, ``business_failure``, an error code
(``gw.SignatureInvalid``, ``401``, ``gw.QosAppFrequencyLimit``…), an OAuth error
(``invalid_grant``, ``invalid_client``…), or a fault without a code (``http_5xx``, ``malformed``,
``slow`` — a slow reply carries its normal answer).

:class:`PushStats` counts the message service (``push`` in the stats and in ``GET /_sandbox/push``):
messages made, delivery attempts and their fate, duplicates, confirmations (see :mod:`.push`).
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


class PushStats:
    """Counters of the message service, shared by the makers of messages (:mod:`.messages`), the
    replay store (:mod:`.replay`) and the pusher (:mod:`.push`); ``reset`` zeroes them all."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.made = 0  # messages made (from drifts of followed offers, or by POST /_sandbox/messages)
        self.delivered = 0  # messages a callback answered 2xx for (once each; duplicates apart)
        self.attempts = 0  # delivery attempts, duplicates and the failed-on-purpose ones included
        self.failed_attempts = 0  # attempts that got no 2xx, or that push_fail failed
        self.duplicates = 0  # second deliveries of delivered messages that got a 2xx
        self.exhausted = 0  # messages whose push_attempts all failed: left to the replay APIs
        self.unsent = 0  # messages listed for replay at once: no callback URL was set
        self.confirmed = 0  # listed messages confirmed (push.message.confirm, push.cursor.messageList)
        self.dropped = 0  # listed messages forgotten because the replay store was full

    def snapshot(self, gauges: dict[str, int]) -> dict[str, int]:
        """The counters and the given gauges (``pending_replay``, ``backlog``…)."""
        return {
            "made": self.made, "delivered": self.delivered, "attempts": self.attempts,
            "failed_attempts": self.failed_attempts, "duplicates": self.duplicates,
            "exhausted": self.exhausted, "unsent": self.unsent, "confirmed": self.confirmed,
            "dropped": self.dropped, **gauges,
        }
