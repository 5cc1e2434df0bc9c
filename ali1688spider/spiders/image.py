"""``scrapy crawl image``: offers that look like a photo (``product.image.upload``, then
``product.search.imageQuery`` with the image id it gives).

    scrapy crawl image -a image=photo.jpg -a country=en [-a keyword=杯] [the options of search]
    scrapy crawl image -a image=https://example.com/photo.jpg -a country=en

A file is read before any call: one that is missing, over the upload limit or not a JPEG, PNG,
WEBP or GIF stops the crawl with one line. A URL is downloaded first; what it gives is checked
the same way (a failure if it cannot be used). Searches are stored with the image's SHA-256,
never its bytes.
"""

from __future__ import annotations

from .search import SearchSpider


class ImageSpider(SearchSpider):
    name = "image"
    kind = "image"
    target_argument = "image"
