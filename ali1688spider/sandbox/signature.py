"""The gateway's side of ``_aop_signature`` (PROTOCOL.md §2), written apart from the client's
:mod:`ali1688spider.aop.signing` on purpose: the two implementations check each other.

The emulator signs exactly the text values it received (query string and form body merged),
so a client that signs something other than what it sends is caught.

It also signs what it pushes to a callback URL (§8.2, :func:`push_signature`): the same HMAC over
the sorted ``name+value`` strings of the sent fields, without a URL path in front.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE = "_aop_signature"
TIMESTAMP = "_aop_timestamp"


def expected_signature(url_path: str, received: Mapping[str, str], secret: str) -> str:
    """Upper-case hex HMAC-SHA1 of ``url_path`` followed by the sorted ``name+value`` strings."""
    pieces = [name + value for name, value in received.items() if name != SIGNATURE]
    pieces.sort()
    message = url_path + "".join(pieces)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest().upper()


def push_signature(fields: Mapping[str, str], secret: str) -> str:
    """The ``_aop_signature`` of a push (§8.2): upper-case hex HMAC-SHA1 of the sorted
    ``name+value`` strings of every sent field but the signature, with NO path prefix. With only
    ``message`` sent that is ``HMAC_SHA1(secret, "message" + message)``."""
    return expected_signature("", fields, secret)


def signature_matches(url_path: str, received: Mapping[str, str], secret: str) -> bool:
    """Whether the received ``_aop_signature`` is right (hex case is not significant)."""
    given = received.get(SIGNATURE, "").upper()
    return hmac.compare_digest(given.encode(), expected_signature(url_path, received, secret).encode())


def timestamp_problem(received: Mapping[str, str], now_ms: int, max_skew_s: float) -> str | None:
    """Why ``_aop_timestamp`` is unacceptable, or ``None``.

    A missing timestamp is accepted (it is optional on the real gateway). A present one must be
    epoch milliseconds (13 digits); with ``max_skew_s`` > 0 it must also be within that many
    seconds of the server clock, which catches requests signed long before they were sent.
    """
    text = received.get(TIMESTAMP)
    if text is None:
        return None
    if len(text) != 13 or not text.isascii() or not text.isdigit():
        return "_aop_timestamp must be epoch milliseconds (13 digits)"
    if max_skew_s > 0 and abs(int(text) - now_ms) > max_skew_s * 1000:
        return f"_aop_timestamp is more than {max_skew_s:g} s away from the server clock"
    return None
