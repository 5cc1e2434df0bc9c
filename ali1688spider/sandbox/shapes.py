"""Which of the real gateway's reply variants the emulator sends for one offer.

Real replies differ from offer to offer and from API family to API family (PROTOCOL.md §5): a
private-price offer has only a ``referencePrice``, counts come as Java doubles (``2663.0``), the
distribution API spells its parts ``priceRanges``/``attributes``/``attributeID``, the cross-border
one misspells ``mainVedio``, an expired offer's status reads ``expired``, ``auto expired`` or
``member expired``, and a failure's text sits under one of several keys. The variant of each offer
is drawn from its id (and the catalogue's seed), apart from the catalogue's own draws, so the same
offer always looks the same and the tests can ask :func:`shape_of` what to expect.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

EXPIRED_SPELLINGS = ("expired", "auto expired", "member expired", "AUTO_EXPIRED")
#: The key a failure's text is sent under, per API family (the first is the documented one).
MESSAGE_KEYS = {
    "product.get": ("errMsg", "errorMessage", "errorMsg"),
    "crossborder": ("message", "errorMessage"),
    "fenxiao": ("errorMsg", "errorMessage", "message"),
    "fenxiao.info": ("errorMsg", "errorMessage", "message"),
}
#: fenxiao.info's envelope (not published): ``{"success", "productInfo"}``, that inside
#: ``result.result``, or the offer itself as ``result.result``.
INFO_ENVELOPES = ("top", "wrapped", "bare")
#: CNY → the currency asked for, for the cross-border ``foreignCurrency*`` prices (made up, fixed).
EXCHANGE_RATES = {"USD": "0.1380", "EUR": "0.1270", "GBP": "0.1090", "RUB": "12.60", "JPY": "21.30",
                  "KRW": "193.00", "VND": "3520.00", "BRL": "0.7800"}
DEFAULT_RATE = "0.1380"


@dataclass(frozen=True)
class Shape:
    reference_only: bool  # product.get and fenxiao: no tiers, no SKU prices, only referencePrice (1 in 20)
    reference_range: bool  # that referencePrice is a range "low-high" (else one price)
    reference_beside: bool  # a referencePrice beside the tiers (2 in 5)
    java_doubles: bool  # counts sent as 2663.0 (1 in 5)
    real_fenxiao: bool  # fenxiao: the spellings of real distribution replies (1 in 2)
    vedio: bool  # crossborder: the video under the misspelt mainVedio (1 in 2)
    expired_as: str  # how an expired offer's status is spelt
    message_key: int  # which of MESSAGE_KEYS carries a failure's text
    info_envelope: str = "top"  # fenxiao.info: one of INFO_ENVELOPES
    hides_id: bool = False  # fenxiao.info asked by openOfferId: the reply names the offer by it alone (1 in 2)


def shape_of(seed: int, offer_id: int) -> Shape:
    digest = hashlib.blake2b(f"{seed}:shape:{offer_id}".encode(), digest_size=16).digest()
    draw = [byte / 256 for byte in digest]
    return Shape(
        reference_only=draw[0] < 0.05,
        reference_range=draw[1] < 0.5,
        reference_beside=draw[2] < 0.4,
        java_doubles=draw[3] < 0.2,
        real_fenxiao=draw[4] < 0.5,
        vedio=draw[5] < 0.5,
        expired_as=EXPIRED_SPELLINGS[digest[6] % len(EXPIRED_SPELLINGS)],
        message_key=digest[7],
        info_envelope=INFO_ENVELOPES[digest[8] % len(INFO_ENVELOPES)],
        hides_id=draw[9] < 0.5,
    )


def message_key(api: str, shape: Shape) -> str:
    keys = MESSAGE_KEYS[api]
    return keys[shape.message_key % len(keys)]
