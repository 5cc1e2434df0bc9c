"""``scrapy enqueue``: push offer references to the ``product_redis`` queue.

    scrapy enqueue ids.txt [more.txt …]          # one id, offer URL or JSON object per line
    scrapy enqueue -a 610784549587,626644646828  # from the command line
    scrapy enqueue ids.txt --key product_redis:start_urls

Lines are streamed and pushed in pipelined batches; '#' comments and blank lines are skipped.
The spider checks each entry (junk becomes a failure document, never a gateway call).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from .. import config
from ..cluster import redis_url, sync_redis
from ..config import redact_uri
from ..inputs import queue_key, read_references, split_ids

BATCH = 1000


class Command(ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[FILE …] [-a ID,URL,…] [--key KEY]"

    def short_desc(self) -> str:
        return "Push offer ids/URLs to the product_redis queue in Redis"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-a", "--ids", action="append", default=[], help="comma-separated ids or URLs")
        parser.add_argument("--key", help="the Redis list (default: REDIS_START_URLS_KEY or product_redis:start_urls)")

    def _entries(self, files: list[str], ids: list[str]) -> Iterator[str]:
        yield from split_ids(ids)
        for path in files:
            yield from (text for _, text in read_references(path))

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args and not opts.ids:
            raise UsageError("give a file of ids/URLs or -a ID,URL,…")
        assert self.settings is not None
        # here, not at the top: Scrapy imports every command's module for every command it runs
        from redis.exceptions import RedisError

        key = opts.key or queue_key(config.REDIS_START_URLS_KEY.get(self.settings))
        client = sync_redis(self.settings)
        pushed = 0
        try:
            batch: list[str] = []
            for entry in self._entries(args, opts.ids):
                batch.append(entry)
                if len(batch) >= BATCH:
                    client.rpush(key, *batch)
                    pushed += len(batch)
                    batch = []
            if batch:
                client.rpush(key, *batch)
                pushed += len(batch)
        except FileNotFoundError as exc:
            print(f"error: {exc.filename}: no such file (pushed {pushed} entries before it)", file=sys.stderr)
            self.exitcode = 2
            return
        except RedisError as exc:
            print(f"error: Redis at {redact_uri(redis_url(self.settings))}: {exc} (pushed {pushed} entries)",
                  file=sys.stderr)
            self.exitcode = 2
            return
        print(f"pushed {pushed} entries to {key} ({client.llen(key)} waiting)")
