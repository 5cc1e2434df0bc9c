"""Error types of the protocol layer. Gateway errors are not exceptions: they are classified
replies (classify.py); a business failure, a token error and a bad offer reference are."""

from __future__ import annotations


class AopError(Exception):
    """Base class of every error raised by :mod:`ali1688spider.aop`."""


class BusinessFailure(AopError):
    """The gateway served the call, but the API said no (unknown offer, bad parameter, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TokenError(AopError):
    """A token call failed. ``permanent`` errors (``invalid_grant``) need a new authorisation."""

    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent


class InvalidOfferRef(AopError, ValueError):
    """Text that is neither a 1688 offer id nor an offer page URL."""
