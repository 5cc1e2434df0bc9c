"""The Scrapy side of one gateway call, in the order a call meets them:

- ``call``: the unsigned request, its ``meta`` keys, signing in place, the fingerprinter
- ``quota``: pacing calls inside the app's quota (one process; ``cluster.quota`` for many)
- ``tokens``: the access token of a crawl, refreshed early and once for many callers
- ``middlewares``: the two downloader middlewares that wait, sign and act on every reply
"""
