"""``scrapy crawl shop``: a seller's offers (``product.search.querySellerOfferList``).

    scrapy crawl shop -a seller=SELLER_OPEN_ID -a country=en [-a keyword=杯] [the options of search]

``seller`` is the masked shop id (``sellerOpenId``) that the crossborder detail API returns as
``seller.open_id``. Hits, details and change detection work as in ``scrapy crawl search``.
"""

from __future__ import annotations

from .search import SearchSpider


class ShopSpider(SearchSpider):
    name = "shop"
    kind = "seller"
    target_argument = "seller"
