"""``python -m ali1688spider report``: one self-contained HTML page about what the crawls stored.

- :mod:`.data` reads MongoDB (``products``, ``failures``, ``product_history``, ``runs``,
  ``searches``, ``listings``) into plain dataclasses, money as :class:`~decimal.Decimal`;
- :mod:`.charts` draws the charts with matplotlib (Agg, no display) as PNG bytes;
- :mod:`.html` writes the page: inline CSS, charts as ``data:`` URIs, every database text escaped;
- :mod:`.cli` the options, and exit status 2 with one line when the report cannot be made.
"""
