"""Unsigned requests, signing in place at the last moment, and fingerprints that ignore auth."""

from urllib.parse import parse_qsl

from scrapy.utils.test import get_crawler

from ali1688spider.aop import CROSSBORDER, PRODUCT_GET, sign_encoded
from ali1688spider.gateway.call import AopRequestFingerprinter, api_request, sign_in_place, unsign_in_place

GATEWAY = "http://127.0.0.1:1/openapi"


def make(offer_id="610784549587", api=PRODUCT_GET, **options):
    return api_request(api, GATEWAY, "1000000", offer_id, options=options)


def test_built_requests_are_unsigned_posts():
    request = make()
    assert request.method == "POST"
    assert request.url == f"{GATEWAY}/param2/1/com.alibaba.product/alibaba.product.get/1000000"
    assert dict(parse_qsl(request.body.decode())) == {"productID": "610784549587", "webSite": "1688"}
    assert request.meta["handle_httpstatus_all"] is True


def test_signing_in_place_then_unsigning():
    request = make(api=CROSSBORDER, country="ja")
    unsigned = request.body
    sign_in_place(request, "TOKEN-1", 1700000000000, "secret")
    params = dict(parse_qsl(request.body.decode()))
    assert params["access_token"] == "TOKEN-1" and params["_aop_timestamp"] == "1700000000000"
    assert params["offerDetailParam"] == '{"offerId":610784549587,"country":"ja"}'
    signature = params.pop("_aop_signature")
    assert signature == sign_encoded(request.meta["ali1688"]["path"], params, "secret")
    unsign_in_place(request)
    assert request.body == unsigned


def test_fingerprints_ignore_token_timestamp_and_signature():
    fingerprinter = AopRequestFingerprinter(get_crawler())
    request = make()
    before = fingerprinter.fingerprint(request)
    signed = request.copy()
    sign_in_place(signed, "TOKEN-1", 1700000000000, "secret")
    resigned = request.copy()
    sign_in_place(resigned, "TOKEN-2", 1700000009999, "secret")
    assert fingerprinter.fingerprint(signed) == before == fingerprinter.fingerprint(resigned)
    assert fingerprinter.fingerprint(make("610784549588")) != before
    assert fingerprinter.fingerprint(make(api=CROSSBORDER, country="en")) != before
    assert fingerprinter.fingerprint(make(api=CROSSBORDER, country="en")) != fingerprinter.fingerprint(
        make(api=CROSSBORDER, country="ja"))
    with_query = request.replace(url=request.url + "?access_token=X&_aop_timestamp=1")
    assert fingerprinter.fingerprint(with_query) == before


def test_error_stat_keys_are_bounded():
    """A gateway may send any text as an error code: past 50 distinct codes in a crawl, the
    others share one stat key; a code is cut and made storable (issue 12, small holes)."""
    from scrapy import Spider
    from scrapy.utils.test import get_crawler

    from ali1688spider.gateway.middlewares import MAX_ERROR_KEYS, GatewayResponseMiddleware

    middleware = GatewayResponseMiddleware(get_crawler(Spider, {"ALI1688_ENABLED": True}))
    keys = {middleware._error_key(f"gw.Code{n}") for n in range(MAX_ERROR_KEYS + 20)}
    assert len(keys) == MAX_ERROR_KEYS + 1 and "ali1688/error/other" in keys
    assert middleware._error_key("gw.Code3") == "ali1688/error/gw.Code3"  # one already counted keeps its key
    other = GatewayResponseMiddleware(get_crawler(Spider, {}))
    assert other._error_key("x" * 1000 + "\ud800") == "ali1688/error/" + "x" * 80
