"""No configured secret reaches the log: while a crawl runs, a filter on the log handlers masks
every one of them (config.secret_values) in every line, whoever logs it — an input line echoed in
a message, a URL in an exception, a traceback. The failure documents are masked in outcomes.py."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from ..config import mask_secrets
from ..outcomes import secrets_of


class MaskingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


class SecretsOutOfLogs:
    """A Scrapy extension: the filter sits on the root logger's handlers from the crawler's start
    until its engine stops (the stats dump and the summary come before that)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.filter = MaskingFilter(secrets)
        self.handlers: list[logging.Handler] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> SecretsOutOfLogs:
        secrets = secrets_of(crawler)
        if not secrets:
            raise NotConfigured
        extension = cls(secrets)
        extension.install()
        crawler.signals.connect(extension.uninstall, signal=signals.engine_stopped)
        return extension

    def install(self) -> None:
        self.handlers = list(logging.getLogger().handlers)
        for handler in self.handlers:
            handler.addFilter(self.filter)

    def uninstall(self) -> None:
        for handler in self.handlers:
            handler.removeFilter(self.filter)
        self.handlers = []
