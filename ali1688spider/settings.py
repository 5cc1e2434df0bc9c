"""Scrapy settings of ali1688spider.

Credentials and endpoints are NOT set here: every ``ALI1688_*``, ``MONGO_*`` and ``REDIS_URL``
setting is read from ``-s NAME=value`` or else from the environment variable of the same name
(see ali1688spider/config.py and the README).
"""

BOT_NAME = "ali1688spider"
SPIDER_MODULES = ["ali1688spider.spiders"]
NEWSPIDER_MODULE = "ali1688spider.spiders"
COMMANDS_MODULE = "ali1688spider.commands"  # `crawl` exits non-zero when the crawl stopped on a fatal error

ROBOTSTXT_OBEY = False  # an API, not pages
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
USER_AGENT = "ali1688spider/0.1 (+Scrapy)"
LOG_LEVEL = "INFO"

# The quota limiter paces calls; concurrency only has to cover the gateway's latency.
# Everything waits in the last downloader middleware, so per-domain limits must not queue again.
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 32
CONCURRENT_ITEMS = 4  # one item per response: Scrapy makes this many tasks per response
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 30
REACTOR_THREADPOOL_MAXSIZE = 10

# AutoThrottle stays on for latency: it slows the crawl only when the gateway's latency grows.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 32.0

# Gateway replies are classified and retried by our middleware (with backoff), not by Scrapy's.
RETRY_ENABLED = False
ALI1688_RETRY_TIMES = 6
ALI1688_BACKOFF_BASE = 0.5
ALI1688_BACKOFF_MAX = 30.0
ALI1688_PROGRESS_INTERVAL = 30.0

DOWNLOADER_MIDDLEWARES = {
    "ali1688spider.middlewares.GatewayResponseMiddleware": 940,
    "ali1688spider.middlewares.GatewayAuthMiddleware": 950,
}
REQUEST_FINGERPRINTER_CLASS = "ali1688spider.requests.AopRequestFingerprinter"

ITEM_PIPELINES = {
    "ali1688spider.pipelines.ValidationPipeline": 100,
    "ali1688spider.pipelines.MongoPipeline": 800,
}
MONGO_BATCH_SIZE = 500
MONGO_FLUSH_SECONDS = 2.0

EXTENSIONS = {
    "ali1688spider.extensions.CrawlProgress": 500,
}

# HTTP cache, if switched on (HTTPCACHE_ENABLED=True): it sits at 900, before the signer, so it
# keeps only unsigned, token-free requests and a hit is never signed or counted against the quota.
HTTPCACHE_IGNORE_HTTP_CODES = [401, 429, 500, 502, 503, 504]

FEED_EXPORT_ENCODING = "utf-8"
