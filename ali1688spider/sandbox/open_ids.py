"""The emulator's encrypted offer ids (``openOfferId`` of ``alibaba.fenxiao.product.info.get``).

1688 does not say how it encrypts an offer id; one published example is 24 characters of base64
(16 bytes). The emulator makes ids of that shape that it can read back and that nobody can make
without the catalogue's seed: the offer id masked by a keyed hash of a tag, then the tag, a keyed
hash of the id. An id that does not read back names no offer.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from base64 import b64decode, b64encode


def _key(seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}:open-offer-id".encode(), digest_size=32).digest()


def _hash(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:8]


def encrypt(seed: int, offer_id: int) -> str:
    """The ``openOfferId`` of ``offer_id`` in the catalogue of ``seed``."""
    key, plain = _key(seed), offer_id.to_bytes(8, "big")
    tag = _hash(key, plain)
    masked = bytes(a ^ b for a, b in zip(plain, _hash(key, tag), strict=True))
    return b64encode(masked + tag).decode("ascii")


def decrypt(seed: int, open_id: str) -> int | None:
    """The offer id behind ``open_id``, or None when it is not one of this catalogue's."""
    try:
        raw = b64decode(open_id.replace("-", "+").replace("_", "/") + "=" * (-len(open_id) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16:
        return None
    key, masked, tag = _key(seed), raw[:8], raw[8:]
    plain = bytes(a ^ b for a, b in zip(masked, _hash(key, tag), strict=True))
    return int.from_bytes(plain, "big") if hmac.compare_digest(_hash(key, plain), tag) else None
