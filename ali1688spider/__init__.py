"""ali1688spider: 1688.com product data through the official 1688 Open Platform API."""

__version__ = "0.1.0"
