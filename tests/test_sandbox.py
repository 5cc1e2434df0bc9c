"""The gateway emulator against PROTOCOL.md, with the client's own signing and classifier.

Every row of PROTOCOL.md §4 is triggered on a real emulator process and classified with
:func:`ali1688spider.aop.classify.classify_response`.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from ali1688spider.aop.apis import CROSSBORDER, FENXIAO, FENXIAO_INFO, PRODUCT_APIS, PRODUCT_GET, ApiSpec
from ali1688spider.aop.classify import MALFORMED_BODY, Classification, Outcome, classify_response
from ali1688spider.aop.signing import encode_params, sign
from ali1688spider.demo.services import GatewayEmulator
from ali1688spider.sandbox import open_ids
from ali1688spider.sandbox.catalogue import MAX_EPOCH, Catalogue, Offer
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN
from ali1688spider.sandbox.shapes import shape_of
from ali1688spider.sandbox.views import ProductBodies

from .crawling import CATALOGUE, ROOT, SEED

IDS = CATALOGUE.offer_ids(40, start=610_000_000_000)
MISSING = CATALOGUE.missing_ids(3, start=610_000_000_000)
UNKNOWN_API = ApiSpec(key="nothing", namespace="com.alibaba.product", name="alibaba.product.nothing")
FORM = "application/x-www-form-urlencoded"

Reply = tuple[int, bytes]


# -- talking to the emulator -------------------------------------------------------------------

def http_call(url: str, form: Mapping[str, str] | None = None, *, timeout: float = 5) -> Reply:
    """POST a form (or GET without one); any HTTP status comes back as ``(status, body)``."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": FORM} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def api_call(
    emulator: GatewayEmulator, api: ApiSpec, params: Mapping[str, object], *, token: str | None,
    secret: str = DEMO_APP_SECRET, app_key: str = DEMO_APP_KEY, signed: bool = True,
    timestamp: str | None = None, timeout: float = 5,
) -> Reply:
    """A call signed like the client signs it: ``access_token`` and ``_aop_timestamp`` included."""
    path = api.url_path(app_key)
    sent = encode_params({
        **params, "access_token": token,
        "_aop_timestamp": timestamp if timestamp is not None else str(int(time.time() * 1000)),
    })
    if signed:
        sent["_aop_signature"] = sign(path, sent, secret)
    return http_call(f"{emulator.url}/{path}", sent, timeout=timeout)


def product_call(emulator: GatewayEmulator, token: str, offer_id: int, api: ApiSpec = PRODUCT_GET) -> Reply:
    return api_call(emulator, api, api.params_for(str(offer_id)), token=token)


def token_call(emulator: GatewayEmulator, form: Mapping[str, str], protocol: str = "http",
               name: str = "getToken") -> Reply:
    return http_call(f"{emulator.url}/{protocol}/1/system.oauth2/{name}/{emulator.app_key}", form)


def refresh_form(emulator: GatewayEmulator, **changes: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "client_id": emulator.app_key, "client_secret": emulator.app_secret,
            "refresh_token": emulator.refresh_token}
    form.update(changes)
    return form


def classified(reply: Reply, outcome: Outcome, code: str | None = None, api: ApiSpec | None = None,
               status: int | None = None) -> Classification:
    result = classify_response(reply[0], reply[1], api)
    assert result.outcome is outcome, (result, reply[1][:300])
    if code is not None:
        assert result.error_code == code, result
    if status is not None:
        assert reply[0] == status
    return result


@pytest.fixture(scope="module")
def token(emulator: GatewayEmulator) -> str:
    return emulator.access_token()


# -- the happy path ----------------------------------------------------------------------------

def test_signed_product_get_answers_the_product(emulator: GatewayEmulator, token: str) -> None:
    reply = product_call(emulator, token, IDS[0])
    assert reply[0] == 200
    result = classified(reply, Outcome.OK, api=PRODUCT_GET)
    info = result.payload["productInfo"]
    assert info["productID"] == IDS[0]
    assert info["subject"] == CATALOGUE.offer(IDS[0]).subject  # type: ignore[union-attr]
    assert result.payload["bizGroupInfos"] == []
    assert re.fullmatch(r"\d{17}\+0800", result.payload["createTime"])


@pytest.mark.parametrize("api", list(PRODUCT_APIS.values()), ids=list(PRODUCT_APIS))
def test_every_product_api_serves_the_catalogue_bytes(emulator: GatewayEmulator, token: str, api: ApiSpec) -> None:
    reply = product_call(emulator, token, IDS[1], api)
    classified(reply, Outcome.OK, api=api)
    country = "en" if api is CROSSBORDER else ""
    assert reply[1] == ProductBodies(CATALOGUE).body(api.key, IDS[1], country)[0]


def test_parameters_from_query_string_and_form_are_merged(emulator: GatewayEmulator, token: str) -> None:
    path = PRODUCT_GET.url_path(DEMO_APP_KEY)
    sent = encode_params({"productID": IDS[2], "webSite": "1688", "access_token": token,
                          "_aop_timestamp": int(time.time() * 1000)})
    sent["_aop_signature"] = sign(path, sent, DEMO_APP_SECRET)
    query = urllib.parse.urlencode({"productID": sent.pop("productID"), "webSite": sent.pop("webSite")})
    classified(http_call(f"{emulator.url}/{path}?{query}", sent), Outcome.OK, api=PRODUCT_GET)


@pytest.mark.parametrize("api", list(PRODUCT_APIS.values()), ids=list(PRODUCT_APIS))
@pytest.mark.parametrize("offer_id", [MISSING[0], 12345], ids=["missing", "too-short"])
def test_unknown_offer_is_a_business_failure(emulator: GatewayEmulator, token: str, api: ApiSpec,
                                             offer_id: int) -> None:
    reply = product_call(emulator, token, offer_id, api)
    result = classified(reply, Outcome.BUSINESS, api=api, status=200)
    assert result.error_code in {"500_004", "SP0056", "OFFER_NOT_FOUND"}
    assert "商品不存在" in result.message


def test_fenxiao_info_answers_the_encrypted_ids_the_emulator_lists(emulator: GatewayEmulator, token: str) -> None:
    listed = emulator.get("/_sandbox/offers?n=3")
    assert [open_ids.decrypt(CATALOGUE.seed, text) for text in listed["open_offer_ids"]] == listed["offer_ids"]
    for offer_id, open_id in zip(listed["offer_ids"], listed["open_offer_ids"], strict=True):
        assert FENXIAO_INFO.params_for(open_id) == {"openOfferId": open_id}
        reply = api_call(emulator, FENXIAO_INFO, FENXIAO_INFO.params_for(open_id), token=token)
        result = classified(reply, Outcome.OK, api=FENXIAO_INFO)
        assert result.payload.get("openOfferId") == open_id
        assert result.payload.get("productID", offer_id) == offer_id
    forged = open_ids.encrypt(CATALOGUE.seed + 1, listed["offer_ids"][0])
    reply = api_call(emulator, FENXIAO_INFO, {"openOfferId": forged}, token=token)
    assert "商品不存在" in classified(reply, Outcome.BUSINESS, api=FENXIAO_INFO, status=200).message
    reply = api_call(emulator, FENXIAO_INFO, {}, token=token)
    assert b"offerId or openOfferId is required" in reply[1]


# -- PROTOCOL.md §4, row by row ----------------------------------------------------------------

def test_unknown_app_key_is_fatal(emulator: GatewayEmulator, token: str) -> None:
    reply = api_call(emulator, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token, app_key="999999")
    result = classified(reply, Outcome.FATAL, "gw.AppKeyNotFound", status=400)
    assert result.request_id


def test_missing_app_key_is_fatal(emulator: GatewayEmulator) -> None:
    reply = http_call(f"{emulator.url}/param2/1/com.alibaba.product/alibaba.product.get", {"productID": "1"})
    classified(reply, Outcome.FATAL, "gw.AppKeyMissing", status=400)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"signed": False}, "gw.SignatureMissing"),
        ({"secret": "not-the-secret"}, "gw.SignatureInvalid"),
        ({"timestamp": "17000000000"}, "gw.SignatureInvalid"),  # 11 digits: seconds, not milliseconds
    ],
    ids=["missing", "wrong-secret", "bad-timestamp"],
)
def test_signature_problems_are_fatal(emulator: GatewayEmulator, token: str, options: dict[str, Any],
                                      code: str) -> None:
    reply = api_call(emulator, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token, **options)
    classified(reply, Outcome.FATAL, code, status=400)


def test_signature_covers_what_was_sent(emulator: GatewayEmulator, token: str) -> None:
    path = PRODUCT_GET.url_path(DEMO_APP_KEY)
    sent = encode_params({"productID": IDS[0], "webSite": "1688", "access_token": token})
    sent["_aop_signature"] = sign(path, sent, DEMO_APP_SECRET)
    sent["productID"] = str(IDS[1])  # changed after signing
    classified(http_call(f"{emulator.url}/{path}", sent), Outcome.FATAL, "gw.SignatureInvalid")


@pytest.mark.parametrize("token_value", [None, "00000000-0000-4000-8000-000000000000"], ids=["missing", "unknown"])
def test_missing_or_unknown_token_is_401(emulator: GatewayEmulator, token_value: str | None) -> None:
    reply = api_call(emulator, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token_value)
    classified(reply, Outcome.TOKEN, "401", status=401)
    body = json.loads(reply[1])
    assert set(body) == {"error_code", "error_message", "request_id"}
    assert body["error_message"] == "Request need user authorized"


def test_expired_token_is_401_and_a_refresh_heals(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    short = emulator_factory(token_ttl=1)
    first = short.access_token()
    second = short.access_token()
    for value in (first, second):  # a newer token does not end an older one
        classified(product_call(short, value, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    time.sleep(1.1)
    classified(product_call(short, first, IDS[0]), Outcome.TOKEN, "401", status=401)
    classified(product_call(short, short.access_token(), IDS[0]), Outcome.OK, api=PRODUCT_GET)


def test_denied_api_is_fatal_after_the_token_check(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    denied = emulator_factory(deny_api=["alibaba.product.get"])
    token = denied.access_token()
    classified(product_call(denied, "not-a-token", IDS[0]), Outcome.TOKEN, "401")
    classified(product_call(denied, token, IDS[0]), Outcome.FATAL, "gw.APIACLDecline", status=400)
    classified(product_call(denied, token, IDS[0], FENXIAO), Outcome.OK, api=FENXIAO)


def test_unknown_api_is_fatal(emulator: GatewayEmulator, token: str) -> None:
    reply = api_call(emulator, UNKNOWN_API, {"productID": IDS[0]}, token=token)
    classified(reply, Outcome.FATAL, "gw.APIUnsupported", status=400)


@pytest.mark.parametrize(
    ("api", "params"),
    [
        (PRODUCT_GET, {"webSite": "1688"}),
        (PRODUCT_GET, {"productID": "abc", "webSite": "1688"}),
        (CROSSBORDER, {}),
        (CROSSBORDER, {"offerDetailParam": {"country": "en"}}),
        (CROSSBORDER, {"offerDetailParam": "not json"}),
        (FENXIAO, {}),
    ],
    ids=["productID", "productID-not-a-number", "offerDetailParam", "offerId-in-json", "json", "offerId"],
)
def test_missing_parameter_is_a_failure_of_the_item(emulator: GatewayEmulator, token: str, api: ApiSpec,
                                                    params: dict[str, object]) -> None:
    classified(api_call(emulator, api, params, token=token), Outcome.BUSINESS, "gw.ParamMissing", status=400)


def test_real_quota_excess_is_throttled(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    limited = emulator_factory(qps=5)
    token = limited.access_token()
    started = time.time()
    replies = [product_call(limited, token, IDS[i % len(IDS)]) for i in range(30)]
    seconds_touched = int(time.time()) - int(started) + 1
    throttled = [r for r in replies if r[0] != 200]
    assert 0 < len(throttled) and len(replies) - len(throttled) <= 5 * seconds_touched
    for reply in throttled:
        classified(reply, Outcome.THROTTLE, "gw.QosAppFrequencyLimit", status=400)
    stats = limited.stats()
    assert stats["arrivals"] == 30
    assert stats["throttled"] == len(throttled)
    assert stats["served"] == 30 - len(throttled)
    assert stats["max_admitted_per_second"] <= 5
    assert stats["max_per_second"] > 5  # arrivals: what the client sent
    assert stats["by_outcome"]["gw.QosAppFrequencyLimit"] == len(throttled)

    # A client that paces itself below the quota is never throttled, in any window.
    limited.reset()
    for i in range(8):
        classified(product_call(limited, token, IDS[i]), Outcome.OK, api=PRODUCT_GET)
        time.sleep(0.25)
    stats = limited.stats()
    assert stats["throttled"] == 0
    assert stats["max_per_second"] <= 5
    assert stats["max_per_sliding_second"] <= 5


def test_unsigned_calls_do_not_count_against_the_quota(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    limited = emulator_factory(qps=2)
    token = limited.access_token()
    for _ in range(5):
        api_call(limited, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token, signed=False)
    classified(product_call(limited, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    assert limited.stats()["arrivals"] == 1


@pytest.mark.parametrize(("kind", "status"), [("throttle", 400), ("throttle200", 200)])
def test_scripted_throttle(emulator: GatewayEmulator, token: str, kind: str, status: int) -> None:
    emulator.reset()
    emulator.script([{"kind": kind, "api": "alibaba.product.get"}])
    result = classified(product_call(emulator, token, IDS[0]), Outcome.THROTTLE, status=status)
    assert result.error_code in {"gw.QosAppFrequencyLimit", "gw.QosApiFrequencyLimit", "gw.QosRequestLimit"}
    classified(product_call(emulator, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)  # used up
    assert emulator.stats()["faults"] == {kind: 1}


def test_used_up_usage_is_fatal(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    metered = emulator_factory(usage_limit=3)
    token = metered.access_token()
    for offer_id in (IDS[0], IDS[1], MISSING[0]):  # a business failure is a served call too
        assert product_call(metered, token, offer_id)[0] == 200
    classified(product_call(metered, token, IDS[2]), Outcome.FATAL, "gw.NoUsageLeftError", status=400)
    assert metered.stats()["usage"] == 3


@pytest.mark.parametrize("status", [500, 200])
@pytest.mark.parametrize("code", ["gw.ISPInvokeError", "gw.ISPConnectError", "gw.ISPInvokeTimeout"])
def test_scripted_backend_failure_is_transient(emulator: GatewayEmulator, token: str, code: str, status: int) -> None:
    emulator.script([{"kind": "isp", "code": code, "status": status}])
    classified(product_call(emulator, token, IDS[0]), Outcome.TRANSIENT, code, status=status)


def test_random_isp_faults_are_mostly_500(emulator: GatewayEmulator, token: str) -> None:
    emulator.reset()  # restarts the fault draw from the seed: the statuses below are reproducible
    emulator.script([{"kind": "isp", "times": 10}])
    statuses = [product_call(emulator, token, IDS[0])[0] for _ in range(10)]
    assert set(statuses) <= {500, 200} and statuses.count(500) >= 5


def test_scripted_5xx_is_transient(emulator: GatewayEmulator, token: str) -> None:
    emulator.script([{"kind": "5xx", "times": 6}])
    for _ in range(6):
        reply = product_call(emulator, token, IDS[0])
        assert reply[0] in (502, 503)
        assert not reply[1].startswith(b"{")
        classified(reply, Outcome.TRANSIENT)


def test_malformed_json_is_transient(emulator: GatewayEmulator, token: str) -> None:
    emulator.script([{"kind": "malformed", "times": 8}])
    for offer_id in IDS[:8]:
        classified(product_call(emulator, token, offer_id), Outcome.TRANSIENT, MALFORMED_BODY, status=200)


def test_slow_reply_is_late_but_whole(emulator: GatewayEmulator, token: str) -> None:
    emulator.reset()
    emulator.script([{"kind": "slow", "ms": 400}, {"kind": "slow", "ms": 400}])
    started = time.monotonic()
    classified(product_call(emulator, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    assert time.monotonic() - started >= 0.4
    params = encode_params({**PRODUCT_GET.params_for(str(IDS[0])), "access_token": token})
    params["_aop_signature"] = sign(PRODUCT_GET.url_path(DEMO_APP_KEY), params, DEMO_APP_SECRET)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        http_call(f"{emulator.url}/{PRODUCT_GET.url_path(DEMO_APP_KEY)}", params, timeout=0.15)
    assert emulator.stats()["by_outcome"]["slow"] == 2


def test_scripted_token_fault_is_401(emulator: GatewayEmulator, token: str) -> None:
    emulator.script([{"kind": "token"}])
    classified(product_call(emulator, token, IDS[0]), Outcome.TOKEN, "401", status=401)
    classified(product_call(emulator, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)


def test_scripted_faults_on_the_token_endpoint(emulator: GatewayEmulator) -> None:
    emulator.script([{"kind": "5xx", "api": "getToken"}, {"kind": "invalid_grant"}])
    classified(token_call(emulator, refresh_form(emulator)), Outcome.TRANSIENT)
    classified(token_call(emulator, refresh_form(emulator)), Outcome.FATAL, "invalid_grant", status=400)
    classified(token_call(emulator, refresh_form(emulator)), Outcome.OK)


def test_faults_only_hit_calls_that_passed_every_check(emulator: GatewayEmulator, token: str) -> None:
    emulator.reset()
    emulator.script([{"kind": "5xx"}])
    classified(product_call(emulator, "not-a-token", IDS[0]), Outcome.TOKEN, "401")
    assert emulator.get("/_sandbox/faults")["pending"]  # not used by the refused call
    classified(product_call(emulator, token, IDS[0]), Outcome.TRANSIENT)
    assert emulator.get("/_sandbox/faults")["pending"] == []


def test_random_faults_by_rate(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    faulty = emulator_factory(fault_5xx=0.15, fault_isp=0.15, fault_throttle=0.1, fault_throttle200=0.1,
                             fault_malformed=0.1, fault_slow=0.1, slow_ms=5)
    token = faulty.access_token()  # the token endpoint never gets random faults
    outcomes = [classify_response(*product_call(faulty, token, IDS[i % 40]), PRODUCT_GET).outcome
                for i in range(120)]
    assert set(outcomes) == {Outcome.OK, Outcome.TRANSIENT, Outcome.THROTTLE}
    stats = faulty.stats()
    assert set(stats["faults"]) == {"5xx", "isp", "throttle", "throttle200", "malformed", "slow"}
    assert 30 < sum(stats["faults"].values()) < 110  # 70 % on average
    by_outcome = stats["by_outcome"]
    assert stats["served"] == by_outcome["ok"] - 1 + by_outcome.get("slow", 0)  # - 1: the token grant
    assert stats["throttled"] == 0  # injected throttles are faults, not quota refusals


def test_bad_fault_script_is_refused(emulator: GatewayEmulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        emulator.script([{"kind": "meteor"}])
    caught.value.close()
    assert caught.value.code == 400


# -- tokens ------------------------------------------------------------------------------------

def _timeout_moment(text: str) -> datetime:
    assert re.fullmatch(r"\d{17}\+0800", text), text
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize("protocol", ["http", "param2"])
def test_refresh_grant_has_the_documented_shape(emulator: GatewayEmulator, protocol: str) -> None:
    reply = token_call(emulator, refresh_form(emulator), protocol)
    assert reply[0] == 200
    classified(reply, Outcome.OK)
    body = json.loads(reply[1])
    assert set(body) == {"aliId", "resource_owner", "memberId", "expires_in", "access_token",
                         "refresh_token_timeout"}  # no refresh_token for a refresh grant
    assert all(isinstance(value, str) for value in body.values())
    assert body["expires_in"] == "36000"
    ahead = _timeout_moment(body["refresh_token_timeout"]) - datetime.now(UTC)
    assert timedelta(days=170) < ahead < timedelta(days=190)


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "999"}, 401, "invalid_client"),
        ({"refresh_token": "never-issued"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
    ids=["secret", "client-id", "refresh-token", "grant-type"],
)
def test_refused_token_requests(emulator: GatewayEmulator, changes: dict[str, str], status: int, error: str) -> None:
    classified(token_call(emulator, refresh_form(emulator, **changes)), Outcome.FATAL, error, status=status)


def test_token_endpoint_checks_the_app_key(emulator: GatewayEmulator) -> None:
    reply = http_call(f"{emulator.url}/http/1/system.oauth2/getToken/999999", refresh_form(emulator))
    classified(reply, Outcome.FATAL, "gw.AppKeyNotFound", status=400)


def _authorize(emulator: GatewayEmulator, redirect_uri: str, state: str) -> dict[str, str]:
    host, port = urllib.parse.urlsplit(emulator.base).netloc.split(":")
    query = urllib.parse.urlencode({"client_id": emulator.app_key, "site": "1688", "redirect_uri": redirect_uri,
                                    "state": state})
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", f"/_sandbox/authorize?{query}")
        response = connection.getresponse()
        response.read()
        assert response.status == 302
        location = response.getheader("Location") or ""
    finally:
        connection.close()
    assert location.startswith(redirect_uri)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def test_authorization_code_flow(emulator: GatewayEmulator) -> None:
    redirect = "http://127.0.0.1:9/callback"
    query = _authorize(emulator, redirect, "opaque-42")
    assert query["state"] == "opaque-42"
    form = {"grant_type": "authorization_code", "need_refresh_token": "true", "client_id": emulator.app_key,
            "client_secret": emulator.app_secret, "redirect_uri": redirect, "code": query["code"]}
    reply = token_call(emulator, form)
    classified(reply, Outcome.OK, status=200)
    body = json.loads(reply[1])
    assert body["access_token"] and body["refresh_token"] and body["expires_in"] == "36000"
    classified(product_call(emulator, body["access_token"], IDS[0]), Outcome.OK, api=PRODUCT_GET)
    # the code is single-use; the new refresh token works for refresh grants
    classified(token_call(emulator, form), Outcome.FATAL, "invalid_grant", status=400)
    classified(token_call(emulator, refresh_form(emulator, refresh_token=body["refresh_token"])), Outcome.OK)


def test_postpone_token_issues_a_new_refresh_token(emulator: GatewayEmulator, token: str) -> None:
    form = {"client_id": emulator.app_key, "client_secret": emulator.app_secret,
            "refresh_token": DEMO_REFRESH_TOKEN, "access_token": token}
    reply = token_call(emulator, form, "param2", "postponeToken")
    classified(reply, Outcome.OK, status=200)
    body = json.loads(reply[1])
    assert body["refresh_token"] != DEMO_REFRESH_TOKEN
    _timeout_moment(body["refresh_token_timeout"])
    for refresh_token in (body["refresh_token"], DEMO_REFRESH_TOKEN):  # the old one stays valid
        classified(token_call(emulator, refresh_form(emulator, refresh_token=refresh_token)), Outcome.OK)
    form["access_token"] = "not-a-token"
    classified(token_call(emulator, form, "param2", "postponeToken"), Outcome.TOKEN, "401")


def test_revoked_tokens(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    revoked = emulator_factory()
    token = revoked.access_token()
    revoked.revoke()
    classified(token_call(revoked, refresh_form(revoked)), Outcome.FATAL, "invalid_grant", status=400)
    classified(product_call(revoked, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    revoked.revoke(access_tokens=True)
    classified(product_call(revoked, token, IDS[0]), Outcome.TOKEN, "401")


# -- stats -------------------------------------------------------------------------------------

def test_stats_count_every_outcome(emulator: GatewayEmulator, token: str) -> None:
    emulator.reset()
    api_call(emulator, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token, secret="wrong")
    product_call(emulator, token, IDS[0])
    product_call(emulator, token, IDS[1], FENXIAO)
    product_call(emulator, token, MISSING[0])
    token_call(emulator, refresh_form(emulator))
    stats = emulator.stats()
    assert stats["requests"] == 5
    assert stats["signature_failures"] == 1
    assert stats["served"] == 3 and stats["arrivals"] == 3
    assert stats["token_grants"] == 1
    assert stats["by_outcome"] == {"gw.SignatureInvalid": 1, "ok": 3, "business_failure": 1}
    assert stats["by_api"] == {"alibaba.product.get": 3, "alibaba.fenxiao.productInfo.get": 1, "getToken": 1}
    assert stats["max_per_second"] <= 3 and stats["max_per_sliding_second"] <= 3
    assert "app_secret" not in stats["config"] and DEMO_APP_SECRET not in json.dumps(stats)
    emulator.reset()
    assert emulator.stats()["requests"] == 0


# -- the catalogue -----------------------------------------------------------------------------

def test_catalogue_is_deterministic() -> None:
    one, two, other = ProductBodies(Catalogue(7)), ProductBodies(Catalogue(7)), ProductBodies(Catalogue(8))
    ids = Catalogue(7).offer_ids(20)
    for api in ("product.get", "crossborder", "fenxiao"):
        assert [one.body(api, i, "en") for i in ids] == [two.body(api, i, "en") for i in ids]
    assert Catalogue(7).offer_ids(20) == ids
    assert [one.body("product.get", i)[0] for i in ids] != [other.body("product.get", i)[0] for i in ids]


def test_offer_ids_exist_and_missing_ids_do_not() -> None:
    ids = CATALOGUE.offer_ids(500, start=10**8)
    assert len(set(ids)) == 500 and all(CATALOGUE.exists(i) and 9 <= len(str(i)) <= 15 for i in ids)
    missing = CATALOGUE.missing_ids(20)
    assert len(set(missing)) == 20 and not any(CATALOGUE.exists(i) for i in missing)
    assert all(CATALOGUE.offer(i) is None for i in missing)
    for bad in ("abc", "12345", 10**15, -610784549587, "６１０７８４５４９５８７"):
        assert not CATALOGUE.exists(bad)
    share = sum(not CATALOGUE.exists(i) for i in range(10**11, 10**11 + 20000)) / 20000
    assert 0.02 < share < 0.04


def test_offers_look_real() -> None:
    offers = [CATALOGUE.offer(i) for i in CATALOGUE.offer_ids(400)]
    assert all(o is not None for o in offers)
    statuses = {o.status for o in offers if o}
    assert statuses == {"published", "expired", "auditing"}
    assert {o.unit for o in offers if o} <= {"件", "个", "双", "套"}
    sku_counts = {len(o.skus) for o in offers if o}
    assert 0 in sku_counts and max(sku_counts) > 20
    for offer in offers:
        assert offer is not None
        assert 1 <= len(offer.tiers) <= 6 and len(offer.skus) <= 50
        quantities = [t.start_quantity for t in offer.tiers]
        prices = [t.price_cents for t in offer.tiers]
        assert quantities == sorted(set(quantities)) and prices == sorted(set(prices), reverse=True)
        assert offer.min_order_quantity == quantities[0]
        assert re.search(r"[\u4e00-\u9fff]", offer.subject)
    assert {o.prices_as_text for o in offers if o} == {True, False}


def _decimal_prices(node: Any, found: list[Decimal]) -> list[Decimal]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "referencePrice":  # one price or a "low-high" range
                found.extend(Decimal(part) for part in str(value).split("-"))
            elif "price" in key.lower() and not isinstance(value, (dict, list, bool)):
                found.append(Decimal(str(value)) if not isinstance(value, Decimal) else value)
            _decimal_prices(value, found)
    elif isinstance(node, list):
        for item in node:
            _decimal_prices(item, found)
    return found


def _view(api: str, offer_id: int) -> dict[str, Any]:
    body, found = ProductBodies(CATALOGUE).body(api, offer_id, "ja")
    assert found
    data = json.loads(body, parse_float=Decimal)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("offer_id", IDS[:25])
def test_the_three_views_of_one_offer_agree(offer_id: int) -> None:
    get = _view("product.get", offer_id)["productInfo"]
    cross = _view("crossborder", offer_id)["result"]["result"]
    fen = _view("fenxiao", offer_id)["productInfo"]
    assert get["subject"] == cross["subject"] == fen["subject"]
    assert cross["subjectTrans"].startswith("[ja] ")
    shape = shape_of(SEED, offer_id)
    fen_tiers = "priceRanges" if shape.real_fenxiao else "priceRangeList"  # real distribution spelling
    tiers = [(t["startQuantity"], Decimal(str(t["price"]))) for t in cross["productSaleInfo"]["priceRangeList"]]
    assert len(get["skuInfos"]) == len(cross["productSkuInfos"]) == len(fen["productSkuInfos"])
    if shape.reference_only:  # a private-price offer: only referencePrice, in both non-crossborder views
        assert "priceRanges" not in get["saleInfo"] and fen_tiers not in fen["productSaleInfo"]
        assert get["referencePrice"] == fen["referencePrice"]
        assert all("price" not in sku for sku in get["skuInfos"] + fen["productSkuInfos"])
        return
    assert tiers == [(t["startQuantity"], Decimal(str(t["price"]))) for t in get["saleInfo"]["priceRanges"]]
    assert tiers == [(t["startQuantity"], Decimal(str(t["price"]))) for t in fen["productSaleInfo"][fen_tiers]]
    for a, b, c in zip(get["skuInfos"], cross["productSkuInfos"], fen["productSkuInfos"], strict=True):
        assert a["skuId"] == b["skuId"] == c["skuId"] and a["specId"] == b["specId"] == c["specId"]
        assert Decimal(str(a["price"])) == Decimal(b["price"]) == Decimal(str(c["price"]))
        assert isinstance(b["price"], str)
    assert ["https://cbu01.alicdn.com/" + path for path in get["image"]["images"]] == cross["productImage"]["images"]
    assert all(path.startswith("img/ibank/") for path in get["image"]["images"])
    assert cross["productImage"]["images"] == fen["productImage"]["images"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cross["createDate"])
    # money is exact: at most two decimals, never a float artefact
    for view in (get, cross, fen):
        prices = _decimal_prices(view, [])
        assert prices and all(p > 0 and p.as_tuple().exponent >= -2 for p in prices), prices  # type: ignore[operator]


# -- epochs: prices and stock that change between fetches ------------------------------------

def _at(offer_id: int, epoch: int, catalogue: Catalogue = CATALOGUE) -> Offer:
    offer = catalogue.offer(offer_id, epoch)
    assert offer is not None
    return offer


def test_epoch_zero_is_the_base_catalogue() -> None:
    bodies = ProductBodies(Catalogue(SEED))
    for offer_id in IDS + MISSING:
        assert CATALOGUE.offer(offer_id, 0) == CATALOGUE.offer(offer_id)
        assert CATALOGUE.drift_epoch(offer_id, 0) == 0
        for api in ("product.get", "crossborder", "fenxiao"):
            assert bodies.body(api, offer_id, "en", 0) == bodies.body(api, offer_id, "en")
    assert CATALOGUE.drifted_ids(IDS, 0) == []
    for bad in (-1, MAX_EPOCH + 1, True, 1.0):
        with pytest.raises(ValueError, match="epoch"):
            CATALOGUE.offer(IDS[0], bad)  # type: ignore[arg-type]


def test_epochs_are_deterministic() -> None:
    ids = Catalogue(7).offer_ids(200)
    one, two = ProductBodies(Catalogue(7)), ProductBodies(Catalogue(7))
    for epoch in (1, 2, 5):
        assert Catalogue(7).drifted_ids(ids, epoch) == Catalogue(7).drifted_ids(ids, epoch)
        for api in ("product.get", "crossborder", "fenxiao"):
            first = [one.body(api, i, "en", epoch) for i in ids[:30]]
            assert first == [two.body(api, i, "en", epoch) for i in ids[:30]]
    for epoch in (3, 1, 3):  # the order of the questions does not matter
        assert [Catalogue(7).offer(i, epoch) for i in ids[:30]] == [one.catalogue.offer(i, epoch) for i in ids[:30]]
    assert Catalogue(7).drifted_ids(ids, 1) != Catalogue(7).drifted_ids(ids, 2)
    assert Catalogue(7).drifted_ids(ids, 1) != Catalogue(8).drifted_ids(ids, 1)


def test_drift_follows_the_latest_epoch_that_chose_the_offer() -> None:
    ids = CATALOGUE.offer_ids(400)
    for epoch in (1, 2, 3, 4):
        drifted = CATALOGUE.drifted_ids(ids, epoch)
        assert 0.2 * len(ids) < len(drifted) < 0.4 * len(ids)
        assert drifted == [i for i in ids if _at(i, epoch) != _at(i, epoch - 1)]
        assert set(drifted) == {i for i in ids if CATALOGUE.drift_epoch(i, epoch) == epoch}
    assert CATALOGUE.drifted_ids([*MISSING, "abc", 12345], 1) == []
    kept = [i for i in CATALOGUE.drifted_ids(ids, 1) if i not in CATALOGUE.drifted_ids(ids, 2)]
    assert kept
    for offer_id in kept:  # drifted at 1, not chosen at 2: the epoch-1 offer, not the base one
        assert _at(offer_id, 2) == _at(offer_id, 1) != _at(offer_id, 0)
        assert CATALOGUE.drift_epoch(offer_id, 2) == 1
    for offer_id in ids[:100]:  # a drift is relative to epoch 0, never compounded
        assert _at(offer_id, 9) == _at(offer_id, CATALOGUE.drift_epoch(offer_id, 9))


def test_drift_moves_only_prices_stock_and_update_time() -> None:
    ids = CATALOGUE.offer_ids(300)
    stock_moved = 0
    for epoch in (1, 2):
        for offer_id in CATALOGUE.drifted_ids(ids, epoch):
            base, now = _at(offer_id, 0), _at(offer_id, epoch)
            for name in ("subject", "description", "status", "images", "attributes", "seller", "created",
                         "quote_type", "min_order_quantity", "prices_as_text"):
                assert getattr(now, name) == getattr(base, name), name
            assert now.updated > _at(offer_id, epoch - 1).updated and now.updated > base.updated  # edited
            assert [t.start_quantity for t in now.tiers] == [t.start_quantity for t in base.tiers]
            assert [(s.sku_id, s.spec_id, s.values) for s in now.skus] == [(s.sku_id, s.spec_id, s.values)
                                                                            for s in base.skus]
            prices = [t.price_cents for t in now.tiers]
            assert prices == sorted(set(prices), reverse=True) and prices[-1] > 0
            factor = Decimal(now.tiers[0].price_cents) / base.tiers[0].price_cents
            assert Decimal("0.79") < factor < Decimal("1.21") and not Decimal("0.98") < factor < Decimal("1.02")
            for old, new in zip(base.skus, now.skus, strict=True):  # the SKUs move by the same factor
                assert abs(Decimal(new.price_cents) / old.price_cents - factor) < Decimal("0.02")
                if now.quote_type == 0:
                    assert new.price_cents == prices[0]
            stock_moved += [s.amount_on_sale for s in now.skus] != [s.amount_on_sale for s in base.skus]
            assert now.amount_on_sale == (sum(s.amount_on_sale for s in now.skus) if now.skus else now.amount_on_sale)
    assert stock_moved > 50


@pytest.mark.parametrize("epoch", [1, 2, 7])
def test_drifted_views_have_exact_falling_prices(epoch: int) -> None:
    bodies = ProductBodies(CATALOGUE)
    drifted = CATALOGUE.drifted_ids(IDS, epoch)
    assert drifted
    for offer_id in drifted:
        for api in ("product.get", "crossborder", "fenxiao"):
            body, found = bodies.body(api, offer_id, "en", epoch)
            assert found and body != bodies.body(api, offer_id, "en")[0]
            view = json.loads(body, parse_float=Decimal)
            prices = _decimal_prices(view, [])
            assert prices and all(p > 0 and p.as_tuple().exponent >= -2 for p in prices), prices  # type: ignore[operator]
            tiers = [Decimal(str(price)) for _, price in _prices_and_stock(api, view)[0]]
            assert tiers == sorted(set(tiers), reverse=True)


PricesAndStock = tuple[list[tuple[int, Decimal]], list[tuple[int, Decimal, int]], int]


def _prices_and_stock(api: str, view: dict[str, Any]) -> PricesAndStock:
    """(tiers, SKUs as (id, price, stock), the offer's stock) of one API's reply."""
    if api == "product.get":
        info, sale, sku_key = view["productInfo"], view["productInfo"]["saleInfo"], "skuInfos"
    else:
        info = view["result"]["result"] if api == "crossborder" else view["productInfo"]
        sale, sku_key = info["productSaleInfo"], "productSkuInfos"
    tiers = sale.get("priceRanges") or sale.get("priceRangeList") or []  # none: a reference-price offer
    return (
        [(t["startQuantity"], Decimal(str(t["price"]))) for t in tiers],
        [(s["skuId"], Decimal(str(s["price"])) if "price" in s else None, int(s["amountOnSale"]))
         for s in info[sku_key]],
        int(sale["amountOnSale"]),
    )


def _post_epoch(emulator: GatewayEmulator, body: bytes | None) -> Reply:
    request = urllib.request.Request(f"{emulator.base}/_sandbox/epoch", data=body, method="POST",
                                     headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def _undated(body: bytes) -> bytes:
    return re.sub(rb'"(lastUpdateTime|modifyDate)":"[^"]*"', rb'"\1":""', body)


def test_new_epoch_is_served_at_once_by_all_three_apis(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    drifting = emulator_factory()
    token = drifting.access_token()
    ids, bodies = IDS[:20], ProductBodies(Catalogue(SEED))

    def fetch_all() -> dict[tuple[str, int], bytes]:
        replies = {}
        for api in PRODUCT_APIS.values():
            for offer_id in ids:
                status, body = product_call(drifting, token, offer_id, api)
                assert status == 200
                replies[api.key, offer_id] = body
        return replies

    def country(key: str) -> str:
        return "en" if key == CROSSBORDER.key else ""

    assert drifting.get("/_sandbox/epoch") == {"epoch": 0}
    before = fetch_all()
    assert all(body == bodies.body(key, i, country(key))[0] for (key, i), body in before.items())

    assert _post_epoch(drifting, None) == (200, b'{"epoch": 1}')  # no body: one up
    assert drifting.get("/_sandbox/epoch") == {"epoch": 1} and drifting.stats()["epoch"] == 1
    after = fetch_all()
    drifted = CATALOGUE.drifted_ids(ids, 1)
    assert 0 < len(drifted) < len(ids)
    set_at = datetime.now(timezone(timedelta(hours=8))).strftime("%Y%m%d")
    for (key, offer_id), body in after.items():
        expected = bodies.body(key, offer_id, country(key), 1)[0]
        if offer_id in drifted and key != CROSSBORDER.key:  # dated when the epoch was set (views.dated)
            stamp = re.search(rb'"lastUpdateTime":"([^"]*)"', body)  # (the crossborder view has none)
            assert stamp and stamp.group(1).startswith(set_at.encode()), (key, offer_id)
            body, expected = _undated(body), _undated(expected)
        assert body == expected
        assert (body != before[key, offer_id]) is (offer_id in drifted)  # untouched: byte-identical
    for offer_id in drifted:  # the three APIs show the same new prices and stock
        views = [_prices_and_stock(key, json.loads(after[key, offer_id], parse_float=Decimal))
                 for key in (PRODUCT_GET.key, CROSSBORDER.key, FENXIAO.key)]
        assert views[0] == views[1] == views[2]
        offer = _at(offer_id, 1)
        tiers, skus, stock = views[0]
        assert tiers == [(t.start_quantity, Decimal(t.price_cents) / 100) for t in offer.tiers]
        assert skus == [(s.sku_id, Decimal(s.price_cents) / 100, s.amount_on_sale) for s in offer.skus]
        assert stock == offer.amount_on_sale
        assert views[0] != _prices_and_stock(PRODUCT_GET.key, json.loads(before[PRODUCT_GET.key, offer_id]))

    drifting.reset()  # counters only: the epoch stays
    assert drifting.post("/_sandbox/epoch") == {"epoch": 2}  # {} without "epoch": one up as well
    assert product_call(drifting, token, ids[0])[1] == bodies.body(PRODUCT_GET.key, ids[0], "", 2)[0]
    assert drifting.post("/_sandbox/epoch", {"epoch": 0}) == {"epoch": 0}
    assert fetch_all() == before


@pytest.mark.parametrize("body", [b'{"epoch": -1}', b'{"epoch": "2"}', b'{"epoch": 1.5}', b'{"epoch": true}',
                                  f'{{"epoch": {MAX_EPOCH + 1}}}'.encode(), b"[3]", b"{not json"])
def test_bad_epoch_is_refused(emulator_factory: Callable[..., GatewayEmulator], body: bytes) -> None:
    started = emulator_factory(epoch=4)
    assert started.get("/_sandbox/epoch") == {"epoch": 4}
    status, reply = _post_epoch(started, body)
    assert status == 400 and "error" in json.loads(reply)
    assert started.get("/_sandbox/epoch") == {"epoch": 4}
    assert started.stats()["config"]["epoch"] == 4
    token = started.access_token()
    assert product_call(started, token, IDS[3])[1] == ProductBodies(CATALOGUE).body(PRODUCT_GET.key, IDS[3], "", 4)[0]


# -- the command line --------------------------------------------------------------------------

def test_first_line_is_the_url_and_sigterm_exits_0(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    started = emulator_factory("--host", "127.0.0.1", access_log=True)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/openapi", started.url)
    assert started.stats()["requests"] == 0
    token = started.access_token()
    classified(product_call(started, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    assert started.stop() == 0
    log = started.log_path.read_text()
    assert "/alibaba.product.get/" in log  # the access log names the path ...
    for secret in (token, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN):  # ... but never a credential
        assert secret not in log


def test_latency_and_timestamp_window(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    strict = emulator_factory(latency_ms=150, max_timestamp_skew=60)
    token = strict.access_token()
    started = time.monotonic()
    classified(product_call(strict, token, IDS[0]), Outcome.OK, api=PRODUCT_GET)
    assert time.monotonic() - started >= 0.15
    stale = str(int(time.time() * 1000) - 600_000)  # signed ten minutes ago
    reply = api_call(strict, PRODUCT_GET, PRODUCT_GET.params_for(str(IDS[0])), token=token, timestamp=stale)
    classified(reply, Outcome.FATAL, "gw.SignatureInvalid", status=400)


def test_latency_jitter_has_a_long_tail(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    """``--latency-jitter-ms 40`` on ``--latency-ms 20``: no reply comes sooner than the base
    latency, and the extra delays vary (a seeded exponential draw, mean 40 ms)."""
    jittery = emulator_factory(latency_ms=20, latency_jitter_ms=40)
    token = jittery.access_token()
    took = []
    for offer_id in IDS[:12]:
        started = time.monotonic()
        classified(product_call(jittery, token, offer_id), Outcome.OK, api=PRODUCT_GET)
        took.append(time.monotonic() - started)
    assert min(took) >= 0.02
    assert max(took) - min(took) > 0.04, took
    assert sum(took) / len(took) > 0.04, took


def test_sigint_exits_0(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    assert emulator_factory().stop(signal.SIGINT) == 0


@pytest.mark.e2e  # runs the emulator's CLI
@pytest.mark.parametrize("flag", [("--fault-isp", "2"), ("--epoch", "-1")], ids=["fault-isp", "epoch"])
def test_bad_flag_is_refused(flag: tuple[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "ali1688spider.sandbox", *flag], cwd=ROOT,
                          check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and flag[0] in done.stderr and done.stdout == ""


def test_the_quota_changes_while_the_emulator_runs(emulator_factory: Callable[..., GatewayEmulator]) -> None:
    limited = emulator_factory(qps=50)
    token = limited.access_token()
    assert limited.set_quota(2)["qps"] == 2
    second = int(time.time())
    replies = [product_call(limited, token, IDS[i % len(IDS)]) for i in range(6)]
    if int(time.time()) == second:  # all six in one calendar second: the new quota admitted two
        assert [r[0] for r in replies].count(200) == 2
    rows = {row[0]: row[1:] for row in limited.quota_seconds()}
    assert sum(admitted for admitted, _ in rows.values()) == [r[0] for r in replies].count(200)
    assert sum(throttled for _, throttled in rows.values()) == 6 - [r[0] for r in replies].count(200) > 0
    for bad in ({"qps": -1}, {"qps": "5"}, {"qps": 5, "window": "hourly"}, [1]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            limited.post("/_sandbox/quota", bad)
        assert refused.value.code == 400
        refused.value.close()
    assert limited.get("/_sandbox/quota")["qps"] == 2


def test_a_sliding_quota_counts_the_last_second_not_the_calendar_one(
        emulator_factory: Callable[..., GatewayEmulator]) -> None:
    """Four calls late in one second and four early in the next: a calendar-second quota of 5
    admits all eight, a sliding one only five of them."""
    outcomes = {}
    for window in ("second", "sliding"):
        limited = emulator_factory(qps=5, quota_window=window)
        token = limited.access_token()
        while time.time() % 1 < 0.6 or time.time() % 1 > 0.7:
            time.sleep(0.01)
        replies = [product_call(limited, token, IDS[i]) for i in range(4)]
        time.sleep(max(0.0, 1.05 - time.time() % 1))
        replies += [product_call(limited, token, IDS[4 + i]) for i in range(4)]
        outcomes[window] = [r[0] for r in replies].count(200)
    assert outcomes == {"second": 8, "sliding": 5}


def test_a_private_price_offer_sends_one_reference_price_in_every_view() -> None:
    """product.get and fenxiao agree on referencePrice for every private-price offer, whatever
    else its shape says (a range beside tiers, a single price): one offer, one price."""
    bodies = ProductBodies(CATALOGUE)
    offers = [i for i in CATALOGUE.offer_ids(3000, start=660_000_000_000) if shape_of(SEED, i).reference_only]
    assert any(shape_of(SEED, i).reference_beside and not shape_of(SEED, i).reference_range for i in offers)
    for offer_id in offers:
        get = json.loads(bodies.body("product.get", offer_id)[0])["productInfo"]
        fen = json.loads(bodies.body("fenxiao", offer_id)[0])["productInfo"]
        assert get["referencePrice"] == fen["referencePrice"], offer_id
        assert ("-" in get["referencePrice"]) <= shape_of(SEED, offer_id).reference_range
