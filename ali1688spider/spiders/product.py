"""``scrapy crawl product``: offer ids or URLs (argument or file) → products.

    scrapy crawl product -a ids=610784549587,https://detail.1688.com/offer/626644646828.html
    scrapy crawl product -a ids_file=ids.txt     # one id or URL per line; '#' comments, blanks ok
    scrapy crawl product -a ids=… -a api=crossborder -a country=en
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import scrapy

from ..aop.apis import ApiSpec, product_api
from ..aop.errors import InvalidOfferRef
from ..aop.refs import parse_offer_ref
from ..config import GatewayConfig
from ..outcomes import FailureRecord, is_stopping, record_failure
from ..requests import api_request
from .calls import ProductCallbacks, wait_for_room

_COMMENT = re.compile(r"(^|\s)#.*$")  # a '#' inside a URL (a fragment) is not a comment


def read_references(path: str | Path) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, reference)`` from a file; skips blanks and ``#`` comments."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            text = _COMMENT.sub("", line).strip()
            if text:
                yield number, text


def count_references(path: str | Path) -> int:
    return sum(1 for _ in read_references(path))


class ProductSpider(ProductCallbacks, scrapy.Spider):
    name = "product"

    def __init__(
        self, ids: str | None = None, ids_file: str | None = None, api: str = "product.get",
        country: str = "en", *args: Any, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not ids and not ids_file:
            raise ValueError("give offer ids: -a ids=ID,URL,… or -a ids_file=FILE")
        if ids_file and not Path(ids_file).is_file():
            raise ValueError(f"ids_file {ids_file!r} does not exist")
        self.ids = ids
        self.ids_file = ids_file
        self.api: ApiSpec = product_api(api)
        self.api_options: dict[str, Any] = {"country": country} if self.api.key == "crossborder" else {}

    def references(self) -> Iterator[str]:
        if self.ids:
            yield from (part.strip() for part in self.ids.split(",") if part.strip())
        if self.ids_file:
            yield from (text for _, text in read_references(self.ids_file))

    def expected_total(self) -> int:
        total = len([p for p in (self.ids or "").split(",") if p.strip()])
        if self.ids_file:
            total += count_references(self.ids_file)
        return total

    async def start(self) -> AsyncIterator[scrapy.Request]:
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("ali1688/input/total", self.expected_total())
        config = GatewayConfig.from_settings(self.crawler.settings)
        buffered = 2 * self.crawler.settings.getint("CONCURRENT_REQUESTS")
        for ref in self.references():
            await wait_for_room(self.crawler, buffered)
            if is_stopping(self.crawler):
                return
            stats.inc_value("ali1688/input/read")
            try:
                offer_id = parse_offer_ref(ref)
            except InvalidOfferRef as exc:
                record_failure(self.crawler, FailureRecord(key=ref, reason="invalid_reference", message=str(exc)))
                continue
            yield self.product_request(config, offer_id, ref)

    def product_request(self, config: GatewayConfig, offer_id: str, ref: str) -> scrapy.Request:
        return api_request(
            self.api, config.gateway_url, config.app_key, offer_id, ref=ref, options=self.api_options,
            callback=self.parse_product, errback=self.on_error,
        )
