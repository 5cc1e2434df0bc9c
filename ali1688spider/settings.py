"""Scrapy settings of ali1688spider.

Credentials and endpoints are NOT set here: every ``ALI1688_*``, ``MONGO_*`` and ``REDIS_*``
setting is in the registry of ali1688spider/config.py (its type, default and meaning), read from
``-s NAME=value`` or else from the environment variable of the same name.
"""

from scrapy.settings import default_settings

BOT_NAME = "ali1688spider"
SPIDER_MODULES = ["ali1688spider.spiders"]
SPIDER_LOADER_CLASS = "ali1688spider.spiders.SpiderLoader"  # imports only the spider that runs
NEWSPIDER_MODULE = "ali1688spider.spiders"
COMMANDS_MODULE = "ali1688spider.commands"  # `crawl` exits non-zero when the crawl stopped on a fatal error

ROBOTSTXT_OBEY = False  # an API, not pages
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Scrapy's RemoteControl extension (on by default) serves an HTTP endpoint that runs Python code
# sent to it inside the crawl, a process that holds the app secret and the tokens. A crawl has no
# use for it. It is left out of the base list, not just switched off with REMOTE_CONTROL_ENABLED,
# because loading it imports aiohttp's web server: ~10 MB of every crawl's memory for nothing.
# To have it, add "scrapy.extensions.remote_control.RemoteControl" to EXTENSIONS.
# Scrapy's MemoryUsage is swapped for one that measures this process only (monitoring/memory.py):
# Scrapy's reads ru_maxrss, which keeps the resident size of the parent that started the crawl.
EXTENSIONS_BASE = {path: order for path, order in default_settings.EXTENSIONS_BASE.items()
                   if not path.endswith((".RemoteControl", ".memusage.MemoryUsage"))}
EXTENSIONS_BASE["ali1688spider.monitoring.memory.MemoryUsage"] = \
    default_settings.EXTENSIONS_BASE["scrapy.extensions.memusage.MemoryUsage"]
USER_AGENT = "ali1688spider/0.1 (+Scrapy)"
LOG_LEVEL = "INFO"

# The quota limiter paces calls; concurrency only has to cover the gateway's latency.
# Everything waits in the last downloader middleware, so per-domain limits must not queue again.
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 32
CONCURRENT_ITEMS = 4  # one item per response: Scrapy makes this many tasks per response
# Responses held by the scraper before the engine stops downloading (Scrapy: 5 MB). A 6 KB reply
# becomes a ~50 KB product with its raw payload, so 5 MB of replies would be ~40 MB of products
# waiting when the Mongo writer falls behind; 250 KB still holds ~40 replies for the pipelines
# (measured with MONGO_BATCH_SIZE 25, which mattered more: bench/RESULTS.md, "Memory at a
# million ids").
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 250_000
# Scrapy re-reads a callback's source to look for `return` in generators, per new bound method
# (one per request): 12% of the CPU in a profile. Our callbacks are checked by our tests instead.
WARN_ON_GENERATOR_RETURN_VALUE = False
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

DOWNLOADER_MIDDLEWARES = {
    "ali1688spider.gateway.middlewares.GatewayResponseMiddleware": 940,
    "ali1688spider.gateway.middlewares.GatewayAuthMiddleware": 950,
}
REQUEST_FINGERPRINTER_CLASS = "ali1688spider.gateway.call.AopRequestFingerprinter"

ITEM_PIPELINES = {
    "ali1688spider.pipelines.validation.ValidationPipeline": 100,
    "ali1688spider.pipelines.mongo.MongoPipeline": 800,
    "ali1688spider.pipelines.listings.ListingsPipeline": 810,  # search hits (scrapy crawl search/shop/image)
}

EXTENSIONS = {
    "ali1688spider.monitoring.progress.CrawlProgress": 500,
    "ali1688spider.monitoring.redaction.SecretsOutOfLogs": 0,  # first: masks secrets in every log line
    "ali1688spider.monitoring.memory.MallocTuning": 1,  # freed memory leaves the process (glibc)
}

# HTTP cache, if switched on (HTTPCACHE_ENABLED=True): it sits at 900, before the signer, so it
# keeps only unsigned, token-free requests and a hit is never signed or counted against the quota.
HTTPCACHE_IGNORE_HTTP_CODES = [401, 429, 500, 502, 503, 504]

FEED_EXPORT_ENCODING = "utf-8"
# -O products.jsonl / .json / .csv: the document the store keeps, exact decimal strings (exports.py)
FEED_EXPORTERS = {
    "json": "ali1688spider.exports.ProductJsonExporter",
    **{name: "ali1688spider.exports.ProductJsonLinesExporter" for name in ("jsonlines", "jsonl", "jl")},
    "csv": "ali1688spider.exports.ProductCsvExporter",
}

# ---- Monitoring and alerts (spidermon) — see ali1688spider/monitoring and the README ----------
# Its thresholds, interval and webhook are ALI1688_MONITOR_* / ALI1688_ALERT_* in config.py.
SPIDERMON_ENABLED = True
# before CrawlProgress (500): ali1688/alert is set when ALI1688_STATS_FILE is written
EXTENSIONS["spidermon.contrib.scrapy.extensions.Spidermon"] = 490
SPIDERMON_SPIDER_CLOSE_MONITORS = ["ali1688spider.monitoring.monitors.CloseMonitorSuite"]
SPIDERMON_EXPECTED_FINISH_REASONS = ["finished", "calls_per_day"]  # calls_per_day: ALI1688_CALLS_PER_DAY spent
# SettingsCheck: a crawler whose ALI1688_/MONGO_/REDIS_ settings hold a refused value does not start;
# MonitoringAddon adds the periodic suite to SPIDERMON_PERIODIC_MONITORS.
ADDONS = {"ali1688spider.config.SettingsCheck": 0, "ali1688spider.monitoring.addon.MonitoringAddon": 1}
# ---- end of monitoring and alerts ----------------------------------------------------------------
