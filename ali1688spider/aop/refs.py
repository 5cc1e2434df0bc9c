"""Offer references users paste: bare ids and offer page URLs → product id (PROTOCOL.md §6),
and the encrypted ``openOfferId`` of the newer distribution API."""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from urllib.parse import unquote, urlsplit

from .errors import InvalidOfferRef

_ID = re.compile(r"[1-9][0-9]{8,14}")
_OFFER_PATH = re.compile(r"/offer/([0-9]+)\.html?")
_OFFER_HOSTS = ("1688.com",)


#: An encrypted offer id (``openOfferId``), e.g. ``ipyyvQsdS1fd/NACddd1Hg==``: base64 (standard or
#: URL-safe, padded or not) of 12 to 64 bytes. Only the shape of one published example is known,
#: so the rule is loose on length, but it asks for both cases of letters, which random bytes all
#: but always have (a 24-character one lacks upper case with p ≈ 1e-5) and words rarely do.
_OPEN_ID = re.compile(r"[A-Za-z0-9+/]{16,88}={0,2}|[A-Za-z0-9_-]{16,88}={0,2}")


def is_open_offer_id(text: str) -> bool:
    """Whether ``text`` (stripped, percent-decoded) has the shape of an encrypted ``openOfferId``."""
    if not _OPEN_ID.fullmatch(text) or text.isdigit():
        return False
    if not (re.search(r"[a-z]", text) and re.search(r"[A-Z]", text)):
        return False
    if text.endswith("=") and len(text) % 4:
        return False  # padded, but not to a multiple of four
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        decoded = b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 12 <= len(decoded) <= 64 and len(body) % 4 != 1


def parse_offer_ref(text: str, *, open_ids: bool = False) -> str:
    """Return the offer id in ``text``: a 9–15 digit id or a 1688 offer page URL; with
    ``open_ids`` (an API that takes them), also an encrypted ``openOfferId``, returned as given.

    Raises :class:`InvalidOfferRef` with a message that says what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidOfferRef(f"expected text, got {type(text).__name__}")
    ref = text.strip()
    if not ref:
        raise InvalidOfferRef("empty reference")
    if ref.isdigit():
        return _checked_id(ref, ref)
    opened = unquote(ref) if "%" in ref else ref  # pasted from a URL: %2F, %3D
    if is_open_offer_id(opened):
        if open_ids:
            return opened
        raise InvalidOfferRef(f"{_shorten(text)!r} looks like an encrypted openOfferId: only the API "
                              "fenxiao.info takes those (-a api=fenxiao.info)")
    if "://" not in ref and ("1688.com/" in ref):
        ref = "https://" + ref
    if "://" in ref:
        return _id_from_url(ref, text)
    raise InvalidOfferRef(
        f"{_shorten(text)!r} is neither an offer id (9-15 digits) nor a 1688 offer URL"
    )


def _checked_id(digits: str, original: str) -> str:
    if not _ID.fullmatch(digits):
        raise InvalidOfferRef(
            f"{_shorten(original)!r} is not an offer id: ids are 9-15 digits and do not start with 0"
        )
    return digits


def _id_from_url(url: str, original: str) -> str:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise InvalidOfferRef(f"{_shorten(original)!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidOfferRef(f"{_shorten(original)!r}: only http(s) offer URLs are accepted")
    if not any(host == h or host.endswith("." + h) for h in _OFFER_HOSTS):
        raise InvalidOfferRef(f"{_shorten(original)!r} is not a 1688.com URL")
    match = _OFFER_PATH.fullmatch(parts.path)
    if not match:
        raise InvalidOfferRef(
            f"{_shorten(original)!r} is not an offer page: expected https://detail.1688.com/offer/<id>.html"
        )
    return _checked_id(match.group(1), original)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def offer_url(offer_id: str) -> str:
    """The public offer page of an id ("" for an encrypted one: it has no public page)."""
    return f"https://detail.1688.com/offer/{offer_id}.html" if offer_id.isdigit() else ""
