"""Bad input of every kind: offer references, id files, Redis queue entries, gateway replies.

- ``parse_offer_ref``: any text gives a 9–15 digit id or :class:`InvalidOfferRef`, never
  another exception; ids and offer URLs round-trip (hypothesis).
- ``scrapy crawl product -a ids_file=…`` on binary junk, NUL bytes, a line of a few MB,
  latin-1 and UTF-16 text, a BOM, CRLF and CR line ends: no crash, each junk line one
  ``failures`` document (``invalid_reference``), the valid lines fetched.
- ``product_redis`` entries of random bytes, broken JSON, JSON without an id, huge and deeply
  nested entries: failures, the queue drained, the workers end by themselves.
- Gateway replies of random JSON, and replies shaped like each API's with random leaves:
  ``classify_response`` never raises; an OK payload normalises to a Product or raises
  ``NormalizationError``; a Product that passes validation can be stored (BSON with Decimal128).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient

from ali1688spider.aop import PRODUCT_APIS, InvalidOfferRef, Outcome, classify_response, offer_url, parse_offer_ref
from ali1688spider.aop.classify import Classification
from ali1688spider.aop.normalize import NormalizationError, normalize
from ali1688spider.aop.product import Product
from ali1688spider.aop.refs import is_open_offer_id
from ali1688spider.demo.services import GatewayEmulator
from ali1688spider.pipelines.validation import InvalidProduct, validate_product
from ali1688spider.sandbox import open_ids
from ali1688spider.sandbox.views import PLAIN, crossborder_view, fenxiao_info_view, fenxiao_view, product_get_view
from ali1688spider.store.mongo import CODEC_OPTIONS, encodable, product_document

from .crawling import CATALOGUE, ROOT, crawl_env, fresh_ids, scrapy_crawl
from .test_distributed import QUEUE, Workers, worker_env

OFFER_ID = re.compile(r"[1-9][0-9]{8,14}")
_blocks = itertools.count()

FUZZ = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# == offer references =============================================================================

offer_ids = st.from_regex(r"[1-9][0-9]{8,14}", fullmatch=True)
any_text = st.one_of(
    st.text(),
    st.text(st.characters() | st.characters(categories=["Cs"])),  # lone surrogates too (argv bytes)
    st.from_regex(r"(https?|ftp|HTTPS)?:?/{0,3}[a-z.]{0,20}1688\.com[^\s]{0,40}", fullmatch=True),
    st.builds(lambda pre, oid, post: f"{pre}{oid}{post}", st.text(max_size=30), offer_ids, st.text(max_size=30)),
)


@FUZZ
@given(any_text)
@example("")
@example("\x00")
@example("https://[::1/offer/610784549587.html")
@example("https://detail.1688.com:99999999/offer/610784549587.html")
@example("http://detail.1688.com/offer/" + "9" * 5000 + ".html")
@example("١٢٣٤٥٦٧٨٩٠١٢")  # Arabic-Indic digits: str.isdigit() is true for them
@example("6107845495８７")  # a fullwidth digit
@example("detail.1688.com/offer/\udcff.html")
def test_any_text_is_an_offer_id_or_invalid(text: str) -> None:
    try:
        result = parse_offer_ref(text)
    except InvalidOfferRef as exc:
        assert str(exc)
        return
    assert isinstance(result, str) and OFFER_ID.fullmatch(result), repr(result)


@FUZZ
@given(st.one_of(st.text(), st.from_regex(r"[A-Za-z0-9+/_%=-]{10,100}", fullmatch=True)))
@example("ipyyvQsdS1fd/NACddd1Hg==")
@example("ipyyvQsdS1fd%2FNACddd1Hg%3D%3D")
@example("ipyyvQsdS1fd%2FNACddd1Hg%3D%3D%ff\udcff")
def test_with_open_ids_any_text_is_an_id_an_encrypted_id_or_invalid(text: str) -> None:
    """An API that takes encrypted ids (fenxiao.info): what it is sent is an offer id or an ASCII
    base64 id of 12-64 bytes, never other text."""
    try:
        result = parse_offer_ref(text, open_ids=True)
    except InvalidOfferRef as exc:
        assert str(exc)
        return
    assert OFFER_ID.fullmatch(result) or (is_open_offer_id(result) and result.isascii()), repr(result)


URL_FORMS = [
    "{}", "  {}\t", "https://detail.1688.com/offer/{}.html", "http://detail.1688.com/offer/{}.html",
    "detail.1688.com/offer/{}.html", "https://m.1688.com/offer/{}.html", "HTTPS://DETAIL.1688.COM/offer/{}.html",
    "https://detail.1688.com/offer/{}.htm", "https://detail.1688.com/offer/{}.html?spm=a2615.7691456#sku",
    " https://detail.1688.com/offer/{}.html ",
]


@FUZZ
@given(offer_ids, st.sampled_from(URL_FORMS))
def test_ids_and_offer_urls_round_trip(offer_id: str, form: str) -> None:
    assert parse_offer_ref(form.format(offer_id)) == offer_id
    assert parse_offer_ref(offer_url(offer_id)) == offer_id


@FUZZ
@given(offer_ids, st.sampled_from([
    "https://evil.com/offer/{}.html", "https://1688.com.evil.com/offer/{}.html", "https://evil1688.com/offer/{}.html",
    "https://detail.1688.com@evil.com/offer/{}.html", "ftp://detail.1688.com/offer/{}.html",
    "https://detail.1688.com/offer/{}.html/x", "https://detail.1688.com/product/{}.html", "0{}", "{}0000000",
    "-{}", "{}.0", "{}e0",
]))
def test_look_alikes_are_refused(offer_id: str, form: str) -> None:
    text = form.format(offer_id)
    if form == "{}0000000" and len(text) <= 15:
        return  # still a valid id
    with pytest.raises(InvalidOfferRef):
        parse_offer_ref(text)


# == gateway replies ==============================================================================

#: JSON number literals of any size and precision (Python's json never writes these).
number_literals = st.from_regex(r"-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,45})?([eE][+-]?[0-9]{1,25})?", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
json_texts = st.recursive(
    number_literals | st.sampled_from(["true", "false", "null"]) | st.text(max_size=10).map(json.dumps),
    lambda inner: st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    | st.dictionaries(st.text(max_size=12).map(json.dumps), inner, max_size=4).map(
        lambda d: "{" + ",".join(f"{k}:{v}" for k, v in d.items()) + "}"),
    max_leaves=25,
)
statuses = st.sampled_from([200, 200, 200, 400, 401, 403, 404, 408, 429, 500, 502, 503, 0]) | st.integers(100, 599)
apis = st.sampled_from(sorted(PRODUCT_APIS))


def check_reply(status: int, body: bytes, api_key: str) -> None:
    """The properties every reply must keep, whatever it holds."""
    api = PRODUCT_APIS[api_key]
    result = classify_response(status, body, api)
    assert isinstance(result, Classification) and isinstance(result.outcome, Outcome)
    if result.outcome is not Outcome.OK:
        return
    try:
        product = normalize(api.key, result.payload, language="en")
    except NormalizationError:
        return
    assert isinstance(product, Product)
    try:
        validate_product(product)
    except InvalidProduct:
        return
    # what the pipeline stores: every Decimal must fit a Decimal128, or the whole bulk write fails
    bson.encode(encodable(product_document(product.to_dict(), datetime.now(UTC))), codec_options=CODEC_OPTIONS)


@FUZZ
@given(statuses, json_values, apis)
def test_random_json_replies(status: int, value: Any, api_key: str) -> None:
    check_reply(status, json.dumps(value).encode(), api_key)


@FUZZ
@given(statuses, json_texts, apis)
@example(200, '{"productInfo": 1e-99999999999999999999}', "product.get")
@example(200, '{"productInfo": {"productID": 1e999999999999999999999}}', "product.get")
def test_random_json_texts(status: int, text: str, api_key: str) -> None:
    check_reply(status, text.encode(), api_key)


@FUZZ
@given(statuses, st.binary(max_size=200), apis)
@example(200, b"\xff\xfe{\x00}\x00", "product.get")
@example(200, b'\xef\xbb\xbf{"productInfo": {}}', "product.get")
def test_random_bytes_replies(status: int, body: bytes, api_key: str) -> None:
    check_reply(status, body, api_key)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_replies(depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth,
                 b'{"productInfo": ' + b"[" * depth + b"]" * depth + b"}"):
        for api_key in PRODUCT_APIS:
            check_reply(200, body, api_key)


def _small_offer() -> Any:
    for offer_id in CATALOGUE.offer_ids(50, start=610_000_000_000):
        offer = CATALOGUE.offer(offer_id)
        if offer is not None and 1 <= len(offer.skus) <= 3:
            return offer
    raise AssertionError("no small offer in the catalogue")


OFFER = _small_offer()
TEMPLATES = {
    "product.get": product_get_view(OFFER),
    "crossborder": crossborder_view(OFFER, "en"),
    "fenxiao": fenxiao_view(OFFER),
    # the least known envelope: the offer wrapped twice, named by its encrypted id alone
    "fenxiao.info": fenxiao_info_view(OFFER, replace(PLAIN, info_envelope="wrapped", hides_id=True),
                                      open_ids.encrypt(CATALOGUE.seed, OFFER.offer_id)),
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: containers and leaves."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


PATHS = {api_key: sorted(_paths(template), key=repr) for api_key, template in TEMPLATES.items()}


class Raw:
    """A JSON number literal to put in a document as it is (json.dumps cannot write most)."""

    def __init__(self, text: str) -> None:
        self.text = text


DELETE = object()
leaves = st.one_of(
    json_values,
    st.decimals(allow_nan=False, allow_infinity=False).map(str),  # numeric text of any precision
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Raw(str(d))),  # the same, as a number
    number_literals.map(Raw),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(["", " ", "1,000.00", "¥12.50", "12.5元", "1e400", "-0", "0x10", "NaN", "Infinity", "-1",
                     "20240230120000000+0800", "2024-13-01 00:00:00", "20240101000000000+2500", "0000-00-00 00:00:00",
                     "9" * 40, "0." + "0" * 40 + "1", "1." + "0" * 40 + "1", 10**40, -1, 0, True]),
    st.just(DELETE),
)


def _dump(document: Any) -> bytes:
    raws: list[str] = []

    def default(value: Any) -> str:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(type(value).__name__)

    text = json.dumps(document, default=default, ensure_ascii=False)
    for index, literal in enumerate(raws):
        text = text.replace(f'"@@RAW{index}@@"', literal)
    return text.encode("utf-8")


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> None:
    def holds(container: Any, step: Any) -> bool:
        if isinstance(container, dict):
            return isinstance(step, str) and step in container
        return isinstance(container, list) and isinstance(step, int) and step < len(container)

    parent = document
    for step in path[:-1]:
        if not holds(parent, step):
            return  # an earlier change removed or replaced this place
        parent = parent[step]
    last = path[-1]
    if not holds(parent, last):
        return
    if isinstance(parent, dict):
        if value is DELETE:
            del parent[last]
        else:
            parent[last] = value
    else:
        if value is DELETE:
            del parent[last]
        else:
            parent[last] = value


@FUZZ
@given(apis, st.data())
@example("product.get", None)
def test_api_shaped_replies_with_random_leaves(api_key: str, data: Any) -> None:
    document = json.loads(json.dumps(TEMPLATES[api_key]))
    if data is None:  # one fixed case: a price of 40 significant digits, valid but not a Decimal128
        document["productInfo"]["saleInfo"]["priceRanges"][0]["price"] = "1." + "0" * 38 + "1"
    else:
        changes = data.draw(st.lists(st.tuples(st.sampled_from(PATHS[api_key]), leaves), min_size=1, max_size=6))
        for path, value in changes:
            _replace(document, path, value)
    check_reply(200, _dump(document), api_key)


@pytest.mark.parametrize("text", ["1e-99999999999999999999", "1E+99999999999999999999", "9" * 5000])
def test_price_text_beyond_decimal_range(text: str) -> None:
    """Numeric text the ``Decimal`` context cannot take is an unreadable price, not a crash."""
    document = json.loads(json.dumps(TEMPLATES["product.get"]))
    document["productInfo"]["saleInfo"]["priceRanges"][0]["price"] = text
    check_reply(200, _dump(document), "product.get")


#: One odd value in an otherwise normal product.get reply: (where, JSON literal). Each reply is
#: OK, normalises and passes validation, so the pipeline tries to store it.
UNSTORABLE = {
    "price of 40 significant digits": ("price", '"1.000000000000000000000000000000000000001"'),
    "price 1e-7000": ("price", "1e-7000"),
    "raw number 1e9999": ("qualityLevel", "1e9999"),
    "raw integer 2**70": ("qualityLevel", str(2**70)),
    "raw key with a NUL": ("a\u0000b", "1"),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_a_valid_product_can_be_stored(case: str) -> None:
    """What passes validation must encode to BSON (Decimal128, int64, key names): one document
    that cannot makes the pipeline's whole bulk write fail."""
    where, literal = UNSTORABLE[case]
    document = json.loads(json.dumps(TEMPLATES["product.get"]))
    if where == "price":
        document["productInfo"]["saleInfo"]["priceRanges"][0]["price"] = Raw(literal)
    else:
        document["productInfo"][where] = Raw(literal)
    check_reply(200, _dump(document), "product.get")


# == id files =====================================================================================

def crawl_file(gateway: str, mongo_uri: str, database: str, path: Path, tmp: Path) -> dict[str, Any]:
    """``scrapy crawl product -a ids_file=path``; checks it ended cleanly, returns its stats."""
    env = worker_env(gateway, mongo_uri, database, "redis://127.0.0.1:1/0")
    stats_file = tmp / f"stats-{uuid.uuid4().hex[:6]}.json"
    done = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={path}",
         "-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "MONGO_FLUSH_SECONDS=0.5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    stats: dict[str, Any] = json.loads(stats_file.read_text())
    assert stats.get("finish_reason") == "finished"
    return stats


@pytest.mark.e2e  # runs scrapy crawl
def test_undecodable_bytes_in_arguments(emulator: GatewayEmulator, database: tuple[str, str, Any]) -> None:
    """Issue 12, case 1: ``-a ids`` holding bytes that are not UTF-8 (Python reads them as lone
    surrogates). Each input ends in one collection, its failure under an escaped rendering; no
    failure batch is lost to an encoding error; exit 0."""
    uri, name, db = database
    good = fresh_ids(2)
    junk = [os.fsdecode(b"caf\xe9"), os.fsdecode(b"\xff\xfe"), "not-an-id", os.fsdecode(b"61078454958\xb7")]
    done = scrapy_crawl(crawl_env(emulator.url, uri, name), "-a", "ids=" + ",".join([good[0], *junk, good[1]]))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "UnicodeEncodeError" not in output and "close failure" not in output
    assert sorted(doc["_id"] for doc in db.products.find({}, {"_id": 1})) == sorted(good)
    failures = {doc["_id"]: doc["reason"] for doc in db.failures.find({}, {"_id": 1, "reason": 1})}
    assert failures == dict.fromkeys(["caf\\xe9", "\\xff\\xfe", "not-an-id", "61078454958\\xb7"], "invalid_reference")


@pytest.mark.e2e  # runs scrapy crawl
def test_a_country_that_is_no_language_stops_at_once(emulator: GatewayEmulator, database: tuple[str, str, Any]) -> None:
    uri, name, _ = database
    done = scrapy_crawl(crawl_env(emulator.url, uri, name), "-a", "ids=610784549587", "-a", "api=crossborder",
                        "-a", "country=" + os.fsdecode(b"\xed\xa0\x80"))  # a surrogate's UTF-8 bytes
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "stopping the crawl: country must be a language code such as en, ja or ru" in output
    assert "Traceback" not in output


@pytest.mark.e2e  # runs scrapy crawl
def test_junk_id_file(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]],
                      tmp_path: Path) -> None:
    uri, client = mongo
    database = f"b_{uuid.uuid4().hex[:8]}"
    ids = fresh_ids(12)
    rng = random.Random(1688)
    forbidden = set(b"\r\n#")
    junk: list[bytes] = []
    for n in range(25):  # binary junk
        junk.append(b"bin-%d-" % n + bytes(b for b in rng.randbytes(rng.randint(1, 300)) if b not in forbidden))
    junk += [b"nul-0-\x00", b"nul-1-" + ids[0].encode() + b"\x00", b"nul-2-\x00\x00\x00\xff\x00"]
    junk += [b"latin-0-caf\xe9 cr\xe8me br\xfbl\xe9e", b"latin-1-\xa3100 \xb5m \xe9t\xe9"]
    junk += [b"huge-0-" + b"x" * 3_000_000, b"huge-1-" + b"9" * 2_000_000]
    lines = [
        b"\xef\xbb\xbf" + ids[0].encode(),  # a BOM, then an id
        ids[1].encode() + b"   \t",
        f"https://detail.1688.com/offer/{ids[2]}.html".encode(),
        ids[3].encode() + " # café au lait".encode("latin-1"),  # a latin-1 comment after an id
        b"", b"   ", b"# a comment \xff\xfe",
        *[offer_id.encode() for offer_id in ids[4:]],
    ]
    body = b""
    for n, line in enumerate(lines + junk):
        body += line + (b"\r\n", b"\n", b"\r")[n % 3]
    path = tmp_path / "ids.txt"
    path.write_bytes(body)

    before = emulator.stats()["served"]
    stats = crawl_file(emulator.url, uri, database, path, tmp_path)
    db = client[database]
    products = [doc["_id"] for doc in db.products.find({}, {"_id": 1})]
    assert sorted(products) == sorted(ids)
    failures = list(db.failures.find({}, {"_id": 1, "reason": 1}))
    assert {doc["reason"] for doc in failures} == {"invalid_reference"}
    prefixes = [line.split(b"-", 2)[0] + b"-" + line.split(b"-", 2)[1] + b"-" for line in junk]
    for prefix in prefixes:
        owners = [doc for doc in failures if doc["_id"].encode("utf-8", "surrogatepass").startswith(prefix)]
        assert len(owners) == 1, (prefix, len(owners))
    assert len(failures) == len(junk)
    assert stats["ali1688/input/total"] == len(ids) + len(junk)
    assert emulator.stats()["served"] - before == len(ids)  # junk never reaches the gateway


@pytest.mark.e2e  # runs scrapy crawl
@settings(max_examples=6, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=30).map(os.fsencode)), min_size=1, max_size=25))
def test_any_file_of_any_bytes_is_accounted(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]],
                                            tmp_path: Path, junk: list[bytes]) -> None:
    """Hypothesis over all of ``bytes`` (and all of ``str`` as the file system encodes it),
    end to end: planted ids are fetched, every other line is a failure, a fetch or skipped as
    blank or a comment; the run's counts add up and nothing raises."""
    uri, client = mongo
    database = f"b_{uuid.uuid4().hex[:8]}"
    ids = fresh_ids(2)
    path = tmp_path / f"ids-{uuid.uuid4().hex[:6]}.txt"
    path.write_bytes(b"\n".join([ids[0].encode(), *junk, ids[1].encode()]) + b"\n")
    stats = crawl_file(emulator.url, uri, database, path, tmp_path)
    db = client[database]
    assert set(ids) <= {doc["_id"] for doc in db.products.find({}, {"_id": 1})}
    read = stats["ali1688/input/read"]
    assert read == stats["ali1688/input/total"] >= 2
    failed = sum(value for key, value in stats.items() if key.startswith("ali1688/failed/"))
    assert stats.get("ali1688/products", 0) + failed + stats.get("ali1688/input/duplicate", 0) == read
    assert db.failures.count_documents({}) <= failed  # the same junk twice is one document


@pytest.mark.e2e  # runs scrapy crawl
def test_utf16_id_file(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]],
                       tmp_path: Path) -> None:
    """A file saved as "Unicode" by a Windows editor: UTF-16 with a BOM and CRLF."""
    uri, client = mongo
    database = f"b_{uuid.uuid4().hex[:8]}"
    ids = fresh_ids(5)
    path = tmp_path / "ids-utf16.txt"
    path.write_bytes("\r\n".join([*ids, "not-an-id"]).encode("utf-16"))
    before = emulator.stats()["served"]
    crawl_file(emulator.url, uri, database, path, tmp_path)
    db = client[database]
    products = {doc["_id"] for doc in db.products.find({}, {"_id": 1})}
    failures = list(db.failures.find({}, {"_id": 1, "reason": 1}))
    assert {doc["reason"] for doc in failures} <= {"invalid_reference"}
    assert emulator.stats()["served"] - before == len(products)
    # either the file is decoded (the ids fetched, one failure) or every line is junk
    assert products == set(ids) or (not products and failures)


# == Redis queue entries ==========================================================================

def entry_key(entry: bytes) -> str:
    """The failures ``_id`` of a junk entry: its text (README), at most 1000 characters."""
    return entry.decode("utf-8", errors="replace").strip()[:1000]


def run_queue(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]], redis_url: str, tmp_path: Path,
              entries: list[bytes], workers: int, timeout: float = 30) -> tuple[list[int], str, Any, redis.Redis]:
    uri, client = mongo
    database = f"q_{uuid.uuid4().hex[:8]}"
    queue = redis.Redis.from_url(redis_url)
    queue.rpush(QUEUE, *entries)
    env = worker_env(emulator.url, uri, database, redis_url)
    running = Workers(env, tmp_path, workers)
    codes = running.wait(timeout=timeout)  # a healthy run takes ~6 s
    return codes, running.output(), client[database], queue


@pytest.mark.e2e  # runs product_redis workers
def test_junk_queue_entries(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]], redis_url: str,
                            tmp_path: Path) -> None:
    ids = fresh_ids(30)
    rng = random.Random(88)
    junk = [rng.randbytes(rng.randint(0, 120)) for _ in range(20)]
    junk += [b"", b"   ", b"\x00", b"\xff\xfe\xfd", b"[1, 2]", b"null", b"12345", b"not-an-id"]
    junk += [b'{"id": "' + ids[0].encode() + b'"', b"{", b'{"id": }', b'{"id": "610784549587", }', b"{'id': 1}"]
    junk += [b"{}", b'{"ID": "610784549587"}', b'{"id": null}', b'{"id": ["610784549587"]}', b'{"id": {"x": 1}}',
             b'{"id": true}', b'{"id": "not-an-id"}', b'{"id": 1.5}', b'{"id": 1e999}',
             b'{"id": "' + ids[1].encode() + b'", "api": "nope"}', b'{"id": "' + ids[2].encode() + b'", "api": [1]}']
    # issue 12, case 2: valid JSON whose country (a lone surrogate, a number) cannot go into a request
    junk += [b'{"id": "' + ids[3].encode() + b'", "api": "crossborder", "country": "\\ud800"}',
             b'{"id": "' + ids[4].encode() + b'", "api": "crossborder", "country": 7}',
             b'{"id": "' + ids[5].encode() + b'", "country": "en&x=1"}']
    entries = [offer_id.encode() for offer_id in ids] + junk
    random.Random(7).shuffle(entries)
    codes, output, db, queue = run_queue(emulator, mongo, redis_url, tmp_path, entries, workers=2)
    assert codes == [0, 0], output[-3000:]
    assert queue.llen(QUEUE) == 0 and queue.zcard(QUEUE + ":leased") == 0
    products = [doc["_id"] for doc in db.products.find({}, {"_id": 1})]
    assert sorted(products) == sorted(ids)
    failures = {doc["_id"]: doc["reason"] for doc in db.failures.find({}, {"_id": 1, "reason": 1})}
    assert set(failures) == {entry_key(entry) for entry in junk}
    assert set(failures.values()) == {"invalid_reference"}


queue_entries = st.one_of(
    st.binary(max_size=80),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda offer, api, country: json.dumps({"id": offer, "api": api, "country": country}).encode(),
              st.one_of(offer_ids, json_values),
              st.one_of(st.sampled_from(["product.get", "crossborder"]), json_values),
              st.one_of(st.text(st.characters(categories=["Cs"]) | st.characters(), max_size=6), json_values)),
)


@pytest.mark.e2e  # runs a product_redis worker
@settings(max_examples=4, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(queue_entries, min_size=1, max_size=15))
def test_any_queue_entries_are_accounted(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]],
                                         redis_url: str, tmp_path_factory: pytest.TempPathFactory,
                                         junk: list[bytes]) -> None:
    """Hypothesis over all of ``bytes`` and any JSON (lone surrogates, any types) as queue
    entries, end to end: the worker ends by itself, every entry is acked (none left queued or
    leased), the planted ids are fetched and the counts add up."""
    ids = fresh_ids(2)
    folder = tmp_path_factory.mktemp("queue")
    redis.Redis.from_url(redis_url).flushall()
    codes, output, db, queue = run_queue(emulator, mongo, redis_url, folder, [ids[0].encode(), *junk, ids[1].encode()],
                                         workers=1)
    assert codes == [0], output[-3000:]
    assert "Traceback" not in output
    assert queue.llen(QUEUE) == 0 and queue.zcard(QUEUE + ":leased") == 0
    assert set(ids) <= {doc["_id"] for doc in db.products.find({}, {"_id": 1})}
    stored = db.products.count_documents({}) + db.failures.count_documents({})
    assert 2 <= stored <= len(junk) + 2
    assert "Ids accounted/none of the ids taken is missing... OK" in output


@pytest.mark.e2e  # runs product_redis workers
def test_huge_queue_entries(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]], redis_url: str,
                            tmp_path: Path) -> None:
    ids = fresh_ids(10)
    junk = [b"x" * 2_000_000, b"9" * 1500, ("页" * 1200).encode(), b'{"id": "' + b"1" * 3000 + b'"}',
            b'{"id": ' + b"9" * 5000 + b"}"]
    codes, output, db, queue = run_queue(emulator, mongo, redis_url, tmp_path,
                                         [*(i.encode() for i in ids), *junk], workers=1)
    assert queue.llen(QUEUE) == 0 and queue.zcard(QUEUE + ":leased") == 0, "entries left leased"
    assert codes == [0], output[-3000:]
    assert sorted(doc["_id"] for doc in db.products.find({}, {"_id": 1})) == sorted(ids)
    assert {doc["_id"] for doc in db.failures.find({}, {"_id": 1})} == {entry_key(entry) for entry in junk}


@pytest.mark.e2e  # runs product_redis workers
def test_deeply_nested_json_entry(emulator: GatewayEmulator, mongo: tuple[str, MongoClient[dict[str, Any]]],
                                  redis_url: str, tmp_path: Path) -> None:
    ids = fresh_ids(10)
    nested = b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    codes, output, db, queue = run_queue(emulator, mongo, redis_url, tmp_path,
                                         [*(i.encode() for i in ids[:5]), nested, *(i.encode() for i in ids[5:])],
                                         workers=1)
    assert codes == [0], output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert queue.llen(QUEUE) == 0 and queue.zcard(QUEUE + ":leased") == 0
    assert sorted(doc["_id"] for doc in db.products.find({}, {"_id": 1})) == sorted(ids)
    assert {doc["_id"] for doc in db.failures.find({}, {"_id": 1})} == {entry_key(nested)}
