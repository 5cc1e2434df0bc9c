"""Offer references users paste: bare ids and offer page URLs → product id (PROTOCOL.md §6)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import InvalidOfferRef

_ID = re.compile(r"[1-9][0-9]{8,14}")
_OFFER_PATH = re.compile(r"/offer/([0-9]+)\.html?")
_OFFER_HOSTS = ("1688.com",)


def parse_offer_ref(text: str) -> str:
    """Return the offer id in ``text``: a 9–15 digit id or a 1688 offer page URL.

    Raises :class:`InvalidOfferRef` with a message that says what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidOfferRef(f"expected text, got {type(text).__name__}")
    ref = text.strip()
    if not ref:
        raise InvalidOfferRef("empty reference")
    if ref.isdigit():
        return _checked_id(ref, ref)
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
    """The public offer page of an id."""
    return f"https://detail.1688.com/offer/{offer_id}.html"
