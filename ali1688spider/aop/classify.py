"""Classify a gateway reply: (HTTP status, body) → what the client should do (PROTOCOL.md §4).

The JSON body is read first: a throttle or backend code can arrive with HTTP 200. Prices are
decoded as :class:`~decimal.Decimal`, never through float.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .apis import ApiSpec
from .errors import BusinessFailure
from .text import may_hold_surrogates, storable_strings


class Outcome(enum.StrEnum):
    OK = "ok"
    BUSINESS = "business_failure"  # give up for this item: record it as a failure
    THROTTLE = "throttle"  # back off, retry later
    TOKEN = "token"  # refresh the access token once, re-sign, retry
    TRANSIENT = "transient"  # retry with backoff
    FATAL = "fatal"  # configuration error: nothing will succeed, stop the crawl
    UNKNOWN = "unknown"  # a code this table does not know: recorded, never retried forever

    @property
    def retryable(self) -> bool:
        return self in (Outcome.THROTTLE, Outcome.TOKEN, Outcome.TRANSIENT)


#: PROTOCOL.md §4, one row per gateway error code: (outcome, what the user should do).
ERROR_TABLE: dict[str, tuple[Outcome, str]] = {
    "gw.AppKeyNotFound": (Outcome.FATAL, "the app key is unknown to the gateway: check ALI1688_APP_KEY"),
    "gw.AppKeyMissing": (Outcome.FATAL, "no app key in the request URL: set ALI1688_APP_KEY"),
    "gw.SignatureMissing": (Outcome.FATAL, "the request was not signed: set ALI1688_APP_SECRET"),
    "gw.SignatureInvalid": (Outcome.FATAL, "the signature is wrong: check ALI1688_APP_SECRET"),
    "401": (Outcome.TOKEN, "the access token is missing, unknown or expired"),
    "gw.APIACLDecline": (Outcome.FATAL, "this API is not granted to the app: apply for it in the 1688 console"),
    "gw.APIUnsupported": (Outcome.FATAL, "the gateway does not know this API: check the API name and version"),
    "gw.ParamMissing": (Outcome.BUSINESS, "a required parameter is missing"),
    "gw.QosAppFrequencyLimit": (Outcome.THROTTLE, "app flow control: lower ALI1688_QPS"),
    "gw.QosApiFrequencyLimit": (Outcome.THROTTLE, "API flow control: lower ALI1688_QPS"),
    "gw.QosRequestLimit": (Outcome.THROTTLE, "request flow control: lower ALI1688_QPS"),
    "gw.NoUsageLeftError": (Outcome.FATAL, "the app's paid quota is used up: buy more or wait for the next period"),
    "gw.ISPInvokeError": (Outcome.TRANSIENT, "backend failure"),
    "gw.ISPConnectError": (Outcome.TRANSIENT, "backend unreachable"),
    "gw.ISPInvokeTimeout": (Outcome.TRANSIENT, "backend timeout"),
}

#: OAuth2 errors of the token endpoint; all of them need the user to act.
OAUTH_ERRORS: dict[str, str] = {
    "invalid_grant": "the refresh token or code is invalid or expired: authorise the app again",
    "invalid_client": "the app key or secret is wrong: check ALI1688_APP_KEY and ALI1688_APP_SECRET",
    "unauthorized_client": "the app may not use this grant: check the app in the 1688 console",
    "invalid_request": "the token request is malformed",
    "unsupported_grant_type": "the grant type is not supported",
}

MALFORMED_BODY = "ali1688.MalformedBody"
HTTP_ERROR = "ali1688.HttpError"
NOT_GATEWAY = "ali1688.NotGatewayReply"

#: Keys that some reply of the gateway or of its APIs carries at the top level (PROTOCOL.md §4-§5).
#: A JSON object with none of them is not a gateway reply (a proxy's, a web server's).
GATEWAY_KEYS = frozenset({
    "error_code", "error_message", "error", "request_id", "requestId",  # the gateway, the token endpoint
    "productInfo", "result", "success", "errorCode", "errorMsg", "errMsg", "code", "message",  # the APIs
})


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    error_code: str | None = None
    message: str = ""
    request_id: str | None = None
    status: int = 200
    payload: Any = field(default=None, repr=False)  # the decoded reply (or the product, with an api)
    #: The reply is not one the 1688 gateway sends (HTML, no JSON, a JSON of no gateway shape): a
    #: proxy, a web server, a wrong ALI1688_GATEWAY_URL. Retried like a transient error.
    foreign: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def gone(self) -> bool:
        """A business failure saying the offer does not exist (any more): deleted, delisted."""
        return self.outcome is Outcome.BUSINESS and offer_gone(self.error_code, self.message)


#: Business failure codes that say "no such offer" (PROTOCOL.md §5; the real list is not published).
GONE_CODES = frozenset({"500_004", "SP0056", "OFFER_NOT_FOUND", "OFFER_NOT_EXIST", "PRODUCT_NOT_EXIST",
                        "PRODUCT_NOT_FOUND", "ITEM_NOT_FOUND"})
#: Words of a business failure's message that say the same, in the languages the gateway uses.
GONE_WORDS = ("不存在", "已删除", "已下架", "已过期", "not exist", "not found", "no such offer", "deleted",
              "expired", "offline")


def offer_gone(code: str | None, message: str | None) -> bool:
    """Whether a business failure (its code, its message) says the offer does not exist (any more)."""
    if code and code.upper() in GONE_CODES:
        return True
    text = (message or "").lower()
    return any(word in text for word in GONE_WORDS)


def decode_json(body: bytes | str) -> Any:
    """Decode a gateway body; numbers with a fraction become :class:`Decimal`; a lone surrogate
    (a ``"\\ud83d"`` escape) becomes its escaped text (aop/text.py), so every text can be stored."""
    data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    return storable_strings(data) if may_hold_surrogates(body) else data


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def classify_response(status: int, body: bytes | str, api: ApiSpec | None = None) -> Classification:
    """Classify one reply. With ``api``, a served call is further checked for a business failure
    and ``payload`` holds the product payload of that API."""
    try:
        data = decode_json(body) if body else None
    except (ValueError, UnicodeDecodeError, ArithmeticError, RecursionError):
        data = None
        if 200 <= status < 300:
            return Classification(Outcome.TRANSIENT, MALFORMED_BODY, "the reply is not valid JSON", status=status,
                                  foreign=True)

    if isinstance(data, Mapping):
        found = _gateway_error(status, data, oauth=api is None or status >= 400)
        if found is not None:
            return found
    # Not a reply the gateway sends: no JSON object, or one of no gateway shape (a refusal by the
    # gateway always carries an error code, which _gateway_error has read).
    foreign = not isinstance(data, Mapping) or not GATEWAY_KEYS.intersection(data) or not 200 <= status < 300

    if status >= 500 or status in (0, 408):
        return Classification(Outcome.TRANSIENT, HTTP_ERROR, f"HTTP {status}", status=status, foreign=foreign)
    if status == 429:
        return Classification(Outcome.THROTTLE, HTTP_ERROR, "HTTP 429", status=status, foreign=foreign)
    if status == 401:
        return Classification(Outcome.TOKEN, "401", "HTTP 401", status=status, foreign=foreign)
    if not 200 <= status < 300:
        # a proxy's or a web server's page: retried, and a run of them stops the crawl
        return Classification(Outcome.TRANSIENT, NOT_GATEWAY, f"HTTP {status}, not a gateway reply",
                              status=status, foreign=True)
    if not isinstance(data, Mapping):
        return Classification(Outcome.TRANSIENT, MALFORMED_BODY, "the reply is not a JSON object", status=status,
                              foreign=True)

    if api is None or api.extract is None:
        return Classification(Outcome.OK, status=status, payload=data)
    try:
        product = api.product_payload(data)
    except BusinessFailure as exc:
        if foreign:
            return Classification(Outcome.TRANSIENT, NOT_GATEWAY, "a JSON reply of no gateway shape",
                                  status=status, foreign=True)
        return Classification(Outcome.BUSINESS, exc.code, exc.message, status=status, payload=data)
    return Classification(Outcome.OK, status=status, payload=product)


def _gateway_error(status: int, data: Mapping[str, Any], *, oauth: bool) -> Classification | None:
    """A gateway error code, or (``oauth``: token calls and refused calls) an OAuth error."""
    request_id = data.get("request_id") or data.get("requestId")
    request_id = str(request_id) if request_id else None
    code = data.get("error_code")
    if code is not None and str(code) != "":
        code = str(code)
        message = str(data.get("error_message") or "")
        row = ERROR_TABLE.get(code)
        if row is None:
            # A code this table does not know: its own outcome, never retried forever.
            outcome = Outcome.TRANSIENT if status >= 500 or status == 0 else Outcome.UNKNOWN
            return Classification(outcome, code, message or "unknown gateway error", request_id, status)
        outcome, hint = row
        return Classification(outcome, code, f"{message} ({hint})" if message else hint, request_id, status)
    error = data.get("error") if oauth else None
    if isinstance(error, str) and error:
        hint = OAUTH_ERRORS.get(error, "the token endpoint refused the request")
        description = str(data.get("error_description") or "")
        message = f"{description} ({hint})" if description else hint
        return Classification(Outcome.FATAL, error, message, request_id, status)
    return None
