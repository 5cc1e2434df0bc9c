"""Text that every store can hold: UTF-8, and so BSON, a log file and JSON.

Python holds two kinds of text UTF-8 cannot encode: bytes that were not UTF-8, read with
``surrogateescape`` (as Python reads the command line and file names), and lone surrogates that a
JSON ``"\\ud83d"`` escape decodes into. Both are rendered as escapes: ``\\xe9`` for a byte,
``\\ud83d`` for a surrogate. Text that UTF-8 can encode is never changed.
"""

from __future__ import annotations

import re
from typing import Any

#: A JSON escape of a surrogate: only a body holding one can decode into a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def storable_text(text: str, *, from_bytes: bool = True) -> str:
    """``text``, with what UTF-8 cannot encode escaped. ``from_bytes``: the text was read from
    bytes with ``surrogateescape``, so U+DC80…U+DCFF stand for bytes (``\\xe9``); text decoded
    from JSON escapes (``from_bytes=False``) keeps every surrogate as ``\\udc80``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_escape(char, from_bytes) for char in text)
    return text


def _escape(char: str, from_bytes: bool) -> str:
    code = ord(char)
    if from_bytes and 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


def storable_strings(value: Any) -> Any:
    """``value`` (decoded JSON) with every text and key made storable (surrogates as ``\\udXXX``)."""
    if isinstance(value, str):
        return storable_text(value, from_bytes=False)
    if isinstance(value, dict):
        return {storable_text(key, from_bytes=False) if isinstance(key, str) else key: storable_strings(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [storable_strings(item) for item in value]
    return value


def may_hold_surrogates(body: bytes | str) -> bool:
    """Whether decoding this JSON body may give lone surrogates (cheap: a search for the escape)."""
    if isinstance(body, bytes):
        return _SURROGATE_ESCAPE_BYTES.search(body) is not None
    return _SURROGATE_ESCAPE.search(body) is not None or storable_text(body) != body
