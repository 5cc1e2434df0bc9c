"""The spiders: ``product`` (ids, offer URLs, a file) and ``product_redis`` (a Redis queue).

Each spider is named after its module, which :class:`SpiderLoader` relies on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from scrapy.spiderloader import SpiderLoader as ScrapySpiderLoader
from scrapy.utils.spider import iter_spider_classes

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.settings import BaseSettings


class SpiderLoader:
    """Scrapy's spider loader, except that ``load(name)`` imports only the module of that name.

    Scrapy's own imports every module of ``SPIDER_MODULES`` as soon as a command starts, so
    ``scrapy crawl product`` would import ``product_redis`` too, and with it redis and
    scrapy_redis: ~6 MB of memory that a crawl without Redis never uses. A name not found that
    way, ``list()`` (``scrapy list``, scrapyd) and ``find_by_request()`` use Scrapy's loader.
    """

    def __init__(self, settings: BaseSettings) -> None:
        self._settings = settings
        self._packages: list[str] = settings.getlist("SPIDER_MODULES")
        self._everything: ScrapySpiderLoader | None = None

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> SpiderLoader:
        return cls(settings)

    def load(self, spider_name: str) -> type[Spider]:
        if spider_name.isidentifier():
            for package in self._packages:
                name = f"{package}.{spider_name}"
                try:
                    module = importlib.import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name != name:  # the module exists; something it imports does not
                        raise
                    continue
                for spider in iter_spider_classes(module):
                    if spider.name == spider_name:
                        return spider
        return self._all().load(spider_name)

    def list(self) -> list[str]:
        return self._all().list()

    def find_by_request(self, request: Request) -> list[str]:
        return self._all().find_by_request(request)

    def _all(self) -> ScrapySpiderLoader:
        if self._everything is None:
            self._everything = ScrapySpiderLoader.from_settings(self._settings)
        return self._everything
