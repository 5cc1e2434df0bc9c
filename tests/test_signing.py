"""_aop_signature golden vectors (PROTOCOL.md §2) and parameter encoding (§1).

The derived vectors were checked against `openssl dgst -sha1 -hmac` over the message shown.
"""

from decimal import Decimal

import pytest

from ali1688spider.aop import encode_params, sign
from ali1688spider.aop.signing import signature_base

OFFICIAL = [
    ("param2/1/system/currentTime/1000000", {"b": 2, "a": 1}, "test123",
     "33E54F4F7B989E3E0E912D3FBD2F1A03CA7CCE88"),
    ("param2/1/system/currentTime/TEST_APPKEY_0001",
     {"_aop_timestamp": 1700000000000, "access_token": "UNIT-TEST-TOKEN-abc123", "productId": 694567890123},
     "UNIT-TEST-SECRET", "75CD0EB77C5DCB393BD2C2E4DB4CE09849780EC9"),
]

DERIVED = [
    pytest.param("param2/1/system/currentTime/1000000", {"a": "z", "ab": "c"},
                 "param2/1/system/currentTime/1000000abcaz",
                 "A129579A1CBD40FDAF3604B279E1D852365204FC", id="key-prefix-of-another"),
    pytest.param("param2/1/com.alibaba.product/alibaba.product.get/1000000",
                 {"zero": 0, "no": False, "empty": "", "gone": None},
                 "param2/1/com.alibaba.product/alibaba.product.get/1000000emptynofalsezero0",
                 "1EF8391F0C5CA0C707595016B4FBC651D3A16DFD", id="falsy-values"),
    pytest.param("param2/1/com.alibaba.fenxiao.crossborder/product.search.queryProductDetail/1000000",
                 {"offerDetailParam": {"offerId": 676651652931, "country": "en"}, "access_token": "T"},
                 "param2/1/com.alibaba.fenxiao.crossborder/product.search.queryProductDetail/1000000"
                 'access_tokenTofferDetailParam{"offerId":676651652931,"country":"en"}',
                 "CE0DE9849607620ECD6EF65073BF5A0A8BE5A474", id="json-parameter"),
    pytest.param("param2/1/system/currentTime/1000000", {"keyword": "纯棉T恤 男", "price": Decimal("12.50")},
                 "param2/1/system/currentTime/1000000keyword纯棉T恤 男price12.50",
                 "BAD07F8357E83ADB1481B27905C8401BD4EEFDD2", id="non-ascii-and-decimal"),
]


@pytest.mark.parametrize(("path", "params", "secret", "expected"), OFFICIAL)
def test_official_vectors(path, params, secret, expected):
    assert sign(path, params, secret) == expected


@pytest.mark.parametrize(("path", "params", "message", "expected"), DERIVED)
def test_derived_vectors(path, params, message, expected):
    assert signature_base(path, encode_params(params)) == message
    assert sign(path, params, "test123") == expected


def test_sort_is_by_concatenation_not_by_key():
    # sorted by key: a, ab -> "azabc"; by concatenation: "abc" < "az"
    assert signature_base("p", {"a": "z", "ab": "c"}).endswith("abcaz")


def test_leading_slash_and_signature_param_are_ignored():
    params = {"b": "2", "a": "1"}
    with_sig = {**params, "_aop_signature": "WHATEVER"}
    assert sign("/param2/1/system/currentTime/1000000", with_sig, "test123") == OFFICIAL[0][3]


def test_encoding_of_python_values():
    encoded = encode_params({
        "s": "x", "i": 7, "t": True, "f": False, "z": 0, "e": "", "n": None,
        "d": Decimal("1.10"), "big": Decimal("1E+3"), "j": {"k": ["v", 1, Decimal("0.5")]}, "u": "中文",
    })
    assert encoded == {
        "s": "x", "i": "7", "t": "true", "f": "false", "z": "0", "e": "",
        "d": "1.10", "big": "1000", "j": '{"k":["v",1,"0.5"]}', "u": "中文",
    }


@pytest.mark.parametrize("value", [1.5, object(), b"bytes"])
def test_unencodable_values_are_refused(value):
    with pytest.raises(TypeError):
        encode_params({"x": value})
