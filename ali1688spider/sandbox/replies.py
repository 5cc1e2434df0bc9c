"""What the emulator answers: a :class:`Reply` and the gateway's error bodies (PROTOCOL.md §4)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

from .views import dumps

JSON = "application/json"
UNAUTHORIZED_CODE = "401"
UNAUTHORIZED_MESSAGE = "Request need user authorized"


@dataclass(slots=True)
class Reply:
    """One answer. ``outcome`` is its key in the stats' ``by_outcome``; ``delay`` (seconds) is
    waited before answering, on top of the configured latency."""

    status: int
    body: bytes
    outcome: str
    content_type: str = JSON
    delay: float = 0.0
    location: str | None = None


class RequestIds:
    """Request ids shaped like the gateway's (30 hex digits), unique within one emulator."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):022x}"


def gateway_error(
    status: int, code: str, message: str, request_id: str, exception: str | None = None,
) -> Reply:
    """``{"error_code", "error_message", "request_id"}`` (+ ``exception``) with its HTTP status."""
    body: dict[str, str] = {"error_code": code, "error_message": message, "request_id": request_id}
    if exception:
        body["exception"] = exception
    return Reply(status, dumps(body), code)


def unauthorized(request_id: str) -> Reply:
    """The 401 a missing, unknown or expired access token gets."""
    return gateway_error(401, UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE, request_id)


def oauth_error(status: int, error: str, description: str) -> Reply:
    """An OAuth2 error of the token endpoint: ``{"error", "error_description"}``."""
    return Reply(status, dumps({"error": error, "error_description": description}), error)
