"""Every API a crawl calls, by its key: products, discovery, and the message service."""

from __future__ import annotations

from .apis import PRODUCT_APIS, ApiSpec
from .messages import MESSAGE_APIS
from .search import SEARCH_APIS

CALL_APIS: dict[str, ApiSpec] = {**PRODUCT_APIS, **SEARCH_APIS, **MESSAGE_APIS}


def call_api(key: str) -> ApiSpec:
    """Any API a crawl calls by its key; ``ValueError`` for an unknown one."""
    spec = CALL_APIS.get(key)
    if spec is None:
        raise ValueError(f"unknown api {key!r}")
    return spec
