"""Whatever text an input or a gateway carries, it can be logged and stored (issue 12, case 1):
aop/text.py's escapes, failure records, and the writer's split of a refused batch."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal

import bson
from hypothesis import given
from hypothesis import strategies as st

from ali1688spider.aop.classify import decode_json
from ali1688spider.aop.text import storable_strings, storable_text
from ali1688spider.outcomes import MAX_KEY, FailureReason, FailureRecord
from ali1688spider.pipelines.mongo import split_storable
from ali1688spider.store.mongo import CODEC_OPTIONS, MAX_DOCUMENT_BYTES, size_of

#: Text as Python hands it over: any code point (lone surrogates included), or bytes read with
#: surrogateescape (the command line, file names).
ANY_TEXT = st.one_of(st.text(), st.binary().map(os.fsdecode))


@given(ANY_TEXT)
def test_any_text_becomes_storable(text):
    stored = storable_text(text)
    stored.encode("utf-8")
    bson.encode({"text": stored})
    assert storable_text(stored) == stored  # once is enough
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        assert stored != text
    else:
        assert stored == text  # storable text is never changed


def test_the_escapes():
    assert storable_text(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert storable_text("x\ud83dy") == "x\\ud83dy"
    assert storable_text("\udc80", from_bytes=False) == "\\udc80"
    assert storable_text("保温杯 😀") == "保温杯 😀"
    assert storable_strings({"k\ud800": ["\udfff", 1, Decimal("1.5")]}) == {"k\\ud800": ["\\udfff", 1, Decimal("1.5")]}


def test_json_with_lone_surrogates_decodes_to_storable_text():
    assert decode_json(b'{"a": "\\ud83d", "b": "\\ud83d\\ude00", "\\uDC00": 1.5}') == {
        "a": "\\ud83d", "b": "😀", "\\udc00": Decimal("1.5")}
    assert decode_json('{"a": "\\ud83d"}') == {"a": "\\ud83d"}


@given(ANY_TEXT, ANY_TEXT, st.one_of(st.none(), ANY_TEXT))
def test_a_failure_record_is_always_storable(key, message, code):
    record = FailureRecord(key=key, reason=FailureReason.INVALID_REFERENCE, message=message, error_code=code)
    document = record.to_document()
    bson.encode(document, codec_options=CODEC_OPTIONS)
    assert len(document["_id"]) <= MAX_KEY
    assert FailureRecord(key=document["_id"], reason=FailureReason.GAVE_UP).key == document["_id"]


def _product(product_id: str, **fields: object) -> dict[str, object]:
    return {"_id": product_id, "source_api": "product.get", "subject": "杯", "fetched_at": datetime.now(UTC),
            "raw": {"productInfo": {"productID": int(product_id)}}, **fields}


def test_a_refused_batch_is_split_not_lost():
    huge_raw = _product("610000000001", raw={"padding": "x" * (MAX_DOCUMENT_BYTES + 10)})
    huge_itself = _product("610000000002", description="x" * (MAX_DOCUMENT_BYTES + 10))
    escaped = _product("610000000003", subject="杯\ud83d", raw={"k\udc80": 2**70})
    named = _product("610000000004")
    fine = _product("610000000005")
    failure = FailureRecord(key="610000000006", reason=FailureReason.GAVE_UP).to_document()
    products, failures, refused = split_storable([huge_raw, huge_itself, escaped, named, fine], [failure],
                                                 refuse={"610000000004"})
    assert [doc["_id"] for doc in products] == ["610000000001", "610000000003", "610000000005"]
    assert products[0]["raw"] is None and "bytes" in products[0]["raw_dropped"]
    assert products[1]["subject"] == "杯\\ud83d" and products[1]["raw"] == {"k\\udc80": str(2**70)}
    assert products[2] is fine
    assert all(size_of(doc) <= MAX_DOCUMENT_BYTES for doc in products)
    assert failures == [failure]
    assert {(record.key, record.reason) for record in refused} == {
        ("610000000002", "unstorable_product"), ("610000000004", "unstorable_product")}
