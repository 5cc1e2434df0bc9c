"""``scrapy crawl image``: offers that look like a photo (``product.image.upload``, then
``product.search.imageQuery`` with the image id it gives).

    scrapy crawl image -a image=photo.jpg -a country=en [-a keyword=杯] [the options of search]
    scrapy crawl image -a image=https://example.com/photo.jpg -a country=en

A file is read before any call: one that is missing, over the upload limit or not a JPEG, PNG,
WEBP or GIF stops the crawl with one line. A URL is downloaded first; what it gives is checked
the same way. Searches are stored with the image's SHA-256, never its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response

from ..aop.classify import Outcome
from ..aop.search import IMAGE_UPLOAD, upload_params
from ..config import GatewayConfig
from ..gateway.call import META, RESULT, attempts_of, call_request
from ..outcomes import FailureReason, fatal_stop
from .search import SearchSpider


class ImageSpider(SearchSpider):
    name = "image"
    kind = "image"
    target_argument = "image"
    target_help = "an image: -a image=photo.jpg or -a image=https://…/photo.jpg"

    image: bytes | None = None
    image_url: str | None = None

    def target_of(self, text: str) -> str:
        """The image file read and checked (``ValueError`` says what is wrong); a URL is kept to
        download. The query's target is the image's digest until the upload gives an id."""
        source = text.strip()
        if source.lower().startswith(("http://", "https://")):
            self.image_url = source
            return source
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"image {source[:200]!r} is not a file")
        self.image = path.read_bytes()
        self.image_params = upload_params(self.image)  # ValueError: too large, not an image
        self.image_digest = "sha256:" + hashlib.sha256(self.image).hexdigest()
        return self.image_digest

    async def first_requests(self, config: GatewayConfig) -> AsyncIterator[scrapy.Request]:
        if self.image_url is not None:
            yield scrapy.Request(self.image_url, callback=self.downloaded, errback=self.not_downloaded,
                                 dont_filter=True, meta={"handle_httpstatus_all": True})
        else:
            yield self.upload_request(config)

    def upload_request(self, config: GatewayConfig) -> scrapy.Request:
        return call_request(IMAGE_UPLOAD, config.gateway_url, config.app_key, self.image_params,
                            key=self.search_id, callback=self.uploaded, errback=self.on_search_error,
                            dont_filter=True)

    def downloaded(self, response: Response) -> Any:
        if response.status != 200:
            return self.image_refused(f"HTTP {response.status}")
        try:
            self.image_params = upload_params(response.body)
        except ValueError as exc:
            return self.image_refused(str(exc))
        self.image_digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        assert self.query is not None
        self.query = replace(self.query, target=self.image_digest, image_digest=self.image_digest)
        return self.upload_request(self.gateway)

    def not_downloaded(self, failure: Any) -> Any:
        return self.image_refused(f"{type(failure.value).__name__}: {str(failure.value)[:200]}")

    def image_refused(self, why: str) -> Any:
        fatal_stop(self.crawler, "image", f"the image at {self.image_url!r} cannot be searched with: {why}")
        return None

    def uploaded(self, response: Response) -> Any:
        call, result = response.meta[META], response.meta.get(RESULT)
        if result is None or result.outcome is not Outcome.OK:
            reason = FailureReason.BUSINESS_FAILURE if result is not None and result.outcome is Outcome.BUSINESS \
                else FailureReason.GAVE_UP
            self.fail_call(call, reason, attempts_of(response.request) if response.request else 1,
                           result.error_code if result else None, result.message if result else "no classification")
            return self.ended("failed")
        assert self.query is not None
        self.query = replace(self.query, target=str(result.payload["imageId"]))
        return self.page_request(self.gateway, 1)
