"""Parameter encoding and the ``_aop_signature`` of the 1688 gateway (PROTOCOL.md §1-§2).

One function, :func:`encode_params`, turns Python values into the exact strings that are sent;
:func:`sign` signs the output of that same function, so what is signed is what is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal

SIGNATURE_PARAM = "_aop_signature"
TIMESTAMP_PARAM = "_aop_timestamp"
TOKEN_PARAM = "access_token"
#: Parameters that change on every attempt; they are added at the last moment and never
#: take part in request fingerprints.
AUTH_PARAMS = frozenset({SIGNATURE_PARAM, TIMESTAMP_PARAM, TOKEN_PARAM})


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        # Written as its exact text: a JSON number would go through float on many servers.
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} inside a JSON parameter")


def encode_value(value: object) -> str:
    """Encode one parameter value as the text the gateway receives."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    raise TypeError(f"cannot encode a parameter of type {type(value).__name__}")


def encode_params(params: Mapping[str, object]) -> dict[str, str]:
    """Encode every parameter that is sent; ``None`` values are left out, falsy values kept."""
    return {str(key): encode_value(value) for key, value in params.items() if value is not None}


def signature_base(url_path: str, encoded: Mapping[str, str]) -> str:
    """The signed message: the URL path, then the sorted ``key+value`` concatenations."""
    pieces = sorted(key + value for key, value in encoded.items() if key != SIGNATURE_PARAM)
    return url_path.lstrip("/") + "".join(pieces)


def sign_encoded(url_path: str, encoded: Mapping[str, str], app_secret: str) -> str:
    """Sign parameters that are already encoded as text (as received or as about to be sent)."""
    message = signature_base(url_path, encoded).encode("utf-8")
    digest = hmac.new(app_secret.encode("utf-8"), message, hashlib.sha1).hexdigest()
    return digest.upper()


def sign(url_path: str, params: Mapping[str, object], app_secret: str) -> str:
    """Return the ``_aop_signature`` for ``params`` (Python values) sent to ``url_path``.

    ``url_path`` starts at the protocol segment, e.g.
    ``param2/1/com.alibaba.product/alibaba.product.get/1234567``.
    """
    return sign_encoded(url_path, encode_params(params), app_secret)
