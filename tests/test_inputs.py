"""inputs.py: the one set of rules every entry point reads offer references with."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ali1688spider.aop.apis import CROSSBORDER, FENXIAO, PRODUCT_GET
from ali1688spider.inputs import (
    NOT_A_REFERENCE,
    SeenIds,
    count_references,
    entry_text,
    parse_queue_entry,
    queue_key,
    read_references,
    split_ids,
)


def test_split_ids():
    assert list(split_ids(" 610784549587, ,https://detail.1688.com/offer/626644646828.html,")) == [
        "610784549587", "https://detail.1688.com/offer/626644646828.html"]
    assert list(split_ids(["1,2", "3"])) == ["1", "2", "3"]
    assert list(split_ids(None)) == [] == list(split_ids(""))


@given(st.text())
def test_split_ids_keeps_every_non_blank_part(text):
    parts = list(split_ids(text))
    assert all(part and part == part.strip() and "," not in part for part in parts)
    assert parts == [part.strip() for part in text.split(",") if part.strip()]


@pytest.mark.parametrize("bom,encoding", [(b"", "utf-8"), (codecs.BOM_UTF8, "utf-8"),
                                          (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_files_in_each_encoding(tmp_path: Path, bom: bytes, encoding: str):
    text = "# comment\n610784549587\n\n  https://detail.1688.com/offer/626644646828.html#frag  # note\n编号\n"
    path = tmp_path / "ids.txt"
    path.write_bytes(bom + text.encode(encoding))
    assert list(read_references(path)) == [
        (2, "610784549587"), (4, "https://detail.1688.com/offer/626644646828.html#frag"), (5, "编号")]
    assert count_references(path) == 3


@given(st.binary(max_size=2000))
def test_any_bytes_in_a_file_are_read_as_lines(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("bytes") / "ids.txt"
    path.write_bytes(raw)
    for number, text in read_references(path):
        assert number >= 1 and text and text == text.strip() and "\n" not in text


def test_queue_entries():
    assert parse_queue_entry("610784549587", PRODUCT_GET, "en") == ("610784549587", PRODUCT_GET, "en")
    entry = json.dumps({"id": 610784549587, "api": "crossborder", "country": "ja"})
    assert parse_queue_entry(entry, PRODUCT_GET, "en") == ("610784549587", CROSSBORDER, "ja")
    assert parse_queue_entry('{"id": "610784549587"}', FENXIAO, "ko") == ("610784549587", FENXIAO, "ko")
    for junk in ("{not json", '{"api": "crossborder"}', '{"id": ["x"]}', '{"id": "1", "api": "nope"}'):
        with pytest.raises(NOT_A_REFERENCE):
            parse_queue_entry(junk, PRODUCT_GET, "en")
    assert entry_text(b"  610784549587\n") == "610784549587"
    assert entry_text(b"caf\xe9") == "caf\ufffd"
    assert queue_key("%(name)s:start_urls") == "product_redis:start_urls"


@given(st.one_of(st.text(), st.binary().map(entry_text)))
def test_any_queue_entry_is_a_reference_or_refused(text):
    try:
        ref, api, country = parse_queue_entry(text, PRODUCT_GET, "en")
    except NOT_A_REFERENCE:
        return
    assert isinstance(ref, str) and api.key in ("product.get", "crossborder", "fenxiao") and isinstance(country, str)


class _SmallSeenIds(SeenIds):
    BUFFER, CHUNK = 4, 10  # sorted every 4 new ids, into chunks of at most 10


@given(st.lists(st.integers(min_value=100_000_000, max_value=999_999_999_999_999)))
def test_seen_ids_is_a_set_of_offer_ids(numbers):
    seen, expected = _SmallSeenIds(), set()
    for number in numbers:
        assert seen.add(str(number)) is (number not in expected)
        expected.add(number)
    assert len(seen) == len(expected)
    assert all(not seen.add(str(number)) for number in expected)


@given(st.lists(st.one_of(st.integers(min_value=100_000_000, max_value=999_999_999_999_999).map(str),
                          st.from_regex(r"[A-Za-z0-9+/]{22}==", fullmatch=True))))
def test_seen_ids_keeps_offer_ids_and_encrypted_ids_apart(refs):
    seen, expected = _SmallSeenIds(), set()
    for ref in refs:
        assert seen.add(ref) is (ref not in expected)
        expected.add(ref)
    assert len(seen) == len(expected)
