"""Injected faults: a script of faults for the next matching calls, then random ones by rate.

A fault only replaces the answer of a call that passed every check (app key, signature, quota,
token, ACL, API, parameters, usage), so a faulted call still counts everywhere else.

Script entries (``POST /_sandbox/faults`` with ``{"script": [...]}``)::

    {"kind": "isp", "api": "product.get", "times": 2, "status": 200, "code": "gw.ISPInvokeTimeout"}

- ``kind``: ``5xx`` | ``isp`` | ``throttle`` | ``throttle200`` | ``malformed`` | ``slow`` |
  ``token`` (a 401) | ``invalid_grant`` | ``gone`` (the API's own "no such offer" reply, as for
  an offer deleted or delisted since; for the shop and image searches "no such seller" / "no such
  image"; for a relation API that names one offer, its "no such offer" answer, the offer not
  followed; the keyword search, the image upload, ``syncProductListPushed`` and the replay APIs
  answer normally).
- ``api``: a substring of the API name (the path segment, e.g. ``alibaba.product.get``,
  ``keywordQuery``, ``getToken``). Without it an entry matches the API calls (product, discovery,
  relation and replay APIs), except ``invalid_grant``, which then matches the token endpoint calls.
- ``times`` (default 1); optional ``status`` and ``code`` override the HTTP status and the error
  code; ``ms`` overrides the delay of a ``slow`` fault.

Random faults (the ``--fault-*`` rates) hit API calls only (product, discovery, relation and
replay APIs), never the token endpoint. A fault that replaces an answer replaces what it does too:
no follow, no confirmation (a ``malformed`` or ``slow`` reply is made from the served answer, so
it did both).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .config import SandboxConfig
from .replies import Reply, gateway_error, oauth_error, unauthorized

KINDS = ("5xx", "isp", "throttle", "throttle200", "malformed", "slow", "token", "invalid_grant", "gone")
#: The kinds drawn at random, in the order of ``config.FAULT_RATE_FIELDS``.
RANDOM_KINDS = ("5xx", "isp", "throttle", "throttle200", "malformed", "slow")

ISP_CODES = ("gw.ISPInvokeError", "gw.ISPConnectError", "gw.ISPInvokeTimeout")
QOS_CODES = ("gw.QosAppFrequencyLimit", "gw.QosApiFrequencyLimit", "gw.QosRequestLimit")
_ISP_MESSAGES = {
    "gw.ISPInvokeError": "backend service invocation failed",
    "gw.ISPConnectError": "could not connect to the backend service",
    "gw.ISPInvokeTimeout": "backend service timed out",
}
_5XX_BODIES = (
    (b"", "text/plain"),
    (b"502 Bad Gateway", "text/plain"),
    ((b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
      b"<h1>503 Service Temporarily Unavailable</h1></center><hr><center>Tengine</center></body></html>"),
     "text/html"),
)


@dataclass
class ScriptedFault:
    kind: str
    api: str | None = None
    times: int = 1
    status: int | None = None
    code: str | None = None
    ms: float | None = None

    def matches(self, api_name: str, token_endpoint: bool) -> bool:
        if self.api is not None:
            return self.api in api_name
        return token_endpoint == (self.kind == "invalid_grant")


def parse_script(data: Any) -> list[ScriptedFault]:
    """Validate a ``{"script": [...]}`` document; ``ValueError``/``TypeError`` say what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("script"), list):
        raise TypeError('expected {"script": [{"kind": ...}, ...]}')
    faults: list[ScriptedFault] = []
    for entry in data["script"]:
        if not isinstance(entry, dict):
            raise TypeError("each script entry must be an object")
        unknown = set(entry) - {"kind", "api", "times", "status", "code", "ms"}
        if unknown:
            raise ValueError(f"unknown script keys: {sorted(unknown)}")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        times, status, ms = entry.get("times", 1), entry.get("status"), entry.get("ms")
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ValueError("status must be an HTTP status code")
        if ms is not None and (not isinstance(ms, (int, float)) or ms < 0):
            raise ValueError("ms must be a non-negative number")
        api, code = entry.get("api"), entry.get("code")
        if not isinstance(api, str | None) or not isinstance(code, str | None):
            raise TypeError("api and code must be strings")
        faults.append(ScriptedFault(kind, api, times, status, code, ms))
    return faults


class Faults:
    """The fault script and the random fault draw of one emulator."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._seed = config.seed
        self._rng = random.Random(f"{config.seed}:faults")
        self._script: list[ScriptedFault] = []
        self.injected: Counter[str] = Counter()
        total = 0.0
        self._thresholds: list[tuple[float, str]] = []
        for kind, rate in zip(RANDOM_KINDS, config.fault_rates(), strict=True):
            if rate > 0:
                total += rate
                self._thresholds.append((total, kind))
        self._random_total = total

    # -- the script -------------------------------------------------------------------------

    def add(self, faults: list[ScriptedFault]) -> None:
        self._script.extend(faults)

    def pending(self) -> list[dict[str, Any]]:
        return [asdict(fault) for fault in self._script]

    def reset(self) -> None:
        """Drop the script, zero the counts and restart the random draw from the seed."""
        self._script.clear()
        self.injected.clear()
        self._rng = random.Random(f"{self._seed}:faults")

    # -- choosing and rendering ---------------------------------------------------------------

    def pick(self, api_name: str, *, token_endpoint: bool) -> ScriptedFault | None:
        """The fault for this call, if any: the first matching script entry, else a random draw."""
        if self._script:
            for index, fault in enumerate(self._script):
                if fault.matches(api_name, token_endpoint):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._script[index]
                    return fault
        if token_endpoint or not self._random_total:
            return None
        draw = self._rng.random()
        for threshold, kind in self._thresholds:
            if draw < threshold:
                return ScriptedFault(kind)
        return None

    def render(self, fault: ScriptedFault, request_id: str, answer: Callable[[], Reply],
               missing: Callable[[], Reply] | None = None) -> Reply:
        """The reply that ``fault`` gives instead of (or made from) the normal ``answer``;
        ``missing`` is the API's "no such offer" reply (for ``gone``; without it, the answer)."""
        self.injected[fault.kind] += 1
        rng = self._rng
        kind = fault.kind
        if kind == "5xx":
            body, content_type = rng.choice(_5XX_BODIES)
            return Reply(fault.status or rng.choice((502, 503)), body, "http_5xx", content_type)
        if kind == "isp":
            code = fault.code or rng.choice(ISP_CODES)
            status = fault.status or (500 if rng.random() < 0.8 else 200)
            return gateway_error(status, code, _ISP_MESSAGES.get(code, "backend failure"), request_id,
                                 exception="com.alibaba.openapi.isp.IspException")
        if kind in ("throttle", "throttle200"):
            code = fault.code or rng.choice(QOS_CODES)
            status = fault.status or (400 if kind == "throttle" else 200)
            return gateway_error(status, code, "flow control: too many requests", request_id)
        if kind == "token":
            reply = unauthorized(request_id)
            reply.status = fault.status or reply.status
            return reply
        if kind == "invalid_grant":
            return oauth_error(fault.status or 400, "invalid_grant", "refresh token is invalid or expired")
        if kind == "gone":  # an API that asks about nothing in particular has nothing to lose
            return missing() if missing is not None else answer()
        normal = answer()
        if kind == "malformed":
            return _malformed(normal, rng, fault.status)
        # slow: the normal answer, late
        normal.delay += (fault.ms if fault.ms is not None else self._config.slow_ms) / 1000
        normal.outcome = "slow"
        return normal


def _malformed(normal: Reply, rng: random.Random, status: int | None) -> Reply:
    """HTTP 200 (or ``status``) with a body that is not valid JSON: mostly the real answer cut short."""
    roll = rng.random()
    if roll < 0.7 and len(normal.body) > 2:
        body = normal.body[: rng.randint(1, len(normal.body) - 1)]
        # A cut inside a multi-byte character is fine: the body is broken either way.
    elif roll < 0.9:
        body = b"<html><body>system busy, please retry</body></html>"
    else:
        body = b'{"productInfo": {"productID": 1,, }'
    return Reply(status or 200, body, "malformed")
