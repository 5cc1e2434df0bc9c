"""Gateway calls as Scrapy requests: built unsigned, signed in place at the last moment.

An unsigned request carries the business parameters in its form body and in
``meta["ali1688"]``; :func:`sign_in_place` adds ``access_token``, ``_aop_timestamp`` and
``_aop_signature`` just before the download and :func:`unsign_in_place` removes them when the
response (or the error) comes back, so the scheduler, the dupefilter, a Redis queue and the HTTP
cache only ever hold token-free requests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from weakref import WeakKeyDictionary

from scrapy import Request
from scrapy.utils.request import RequestFingerprinter

from ..aop.apis import ApiSpec
from ..aop.signing import AUTH_PARAMS, SIGNATURE_PARAM, TIMESTAMP_PARAM, TOKEN_PARAM, encode_params, sign_encoded

#: ``request.meta`` keys of a gateway call. ``META`` holds the call itself (api, offer id, input
#: text, the unsigned parameters); the others are set on the way by the middlewares.
META = "ali1688"
RESULT = "ali1688_result"  # the Classification of the final reply (set for the spider's callback)
NOT_BEFORE = "ali1688_not_before"  # epoch seconds before which a retry must not be sent
GENERATION = "ali1688_token_generation"  # which token signed the request (a count, never the token)
TOKEN_RETRIES = "ali1688_token_retries"  # how often this call was retried after a token error
BATCH = "ali1688_batch"  # the ids one call is for: offers to follow, messages to confirm
PAGE = "ali1688_page"  # the page a paged call asked for (the message replay)
PERMIT = "ali1688_permit"  # the calendar second of the quota permit it was sent with (until its reply)

FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}


def api_request(
    api: ApiSpec, gateway_url: str, app_key: str, offer_id: str, *, ref: str | None = None,
    options: dict[str, Any] | None = None, **kwargs: Any,
) -> Request:
    """An unsigned POST for one offer; ``kwargs`` go to :class:`scrapy.Request`."""
    return call_request(api, gateway_url, app_key, api.params_for(offer_id, **(options or {})), key=offer_id,
                        ref=ref, options=options, **kwargs)


def call_request(
    api: ApiSpec, gateway_url: str, app_key: str, params: dict[str, object], *, key: str,
    ref: str | None = None, options: dict[str, Any] | None = None, **kwargs: Any,
) -> Request:
    """An unsigned POST of any API with these business ``params``; ``key`` names what the call is
    for (an offer id, a search) in its failure record."""
    encoded = encode_params(params)
    meta = dict(kwargs.pop("meta", None) or {})
    meta[META] = {
        "api": api.key, "offer_id": key, "ref": ref if ref is not None else key,
        "path": api.url_path(app_key), "params": encoded, "options": dict(options or {}),
    }
    meta.setdefault("handle_httpstatus_all", True)  # every reply goes to the classifier
    return Request(
        api.url(gateway_url, app_key), method="POST", body=urlencode(encoded),
        headers=FORM_HEADERS, meta=meta, **kwargs,
    )


def sign_in_place(request: Request, access_token: str, timestamp_ms: int, app_secret: str) -> None:
    """Add the token, the timestamp and the signature to the body of ``request``."""
    call = request.meta[META]
    params = dict(call["params"])
    params[TOKEN_PARAM] = access_token
    params[TIMESTAMP_PARAM] = str(timestamp_ms)
    params[SIGNATURE_PARAM] = sign_encoded(call["path"], params, app_secret)
    request._set_body(urlencode(params))  # in place: a new Request would be rescheduled


def unsign_in_place(request: Request) -> None:
    """Put back the unsigned body (no token, no timestamp, no signature)."""
    call = request.meta.get(META)
    if call is not None:
        request._set_body(urlencode(call["params"]))


def attempts_of(request: Request) -> int:
    """How many times this call was sent (1 + retries)."""
    return int(request.meta.get("retry_times", 0)) + 1


class AopRequestFingerprinter:
    """Fingerprints that ignore the token, the timestamp and the signature.

    A gateway call is identified by its method, URL and business parameters, so the dupefilter
    and the HTTP cache see the same request across retries and token refreshes. Other requests
    get Scrapy's default fingerprint.
    """

    def __init__(self, crawler: Any = None) -> None:
        self._default = RequestFingerprinter(crawler)
        self._cache: WeakKeyDictionary[Request, bytes] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Any) -> AopRequestFingerprinter:
        return cls(crawler)

    def fingerprint(self, request: Request) -> bytes:
        call = request.meta.get(META)
        if call is None:
            return self._default.fingerprint(request)
        cached = self._cache.get(request)
        if cached is None:
            url = urlsplit(request.url)
            query = sorted(kv for kv in parse_qsl(url.query, keep_blank_values=True) if kv[0] not in AUTH_PARAMS)
            identity = [request.method, f"{url.scheme}://{url.netloc}{url.path}", query, sorted(call["params"].items())]
            cached = hashlib.sha1(json.dumps(identity, ensure_ascii=False).encode(), usedforsecurity=False).digest()
            self._cache[request] = cached
        return cached
