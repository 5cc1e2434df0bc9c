"""The report's charts, drawn with matplotlib into PNG bytes.

Figures are made with :class:`matplotlib.figure.Figure` on an Agg canvas directly: no pyplot, no
global backend switch, no display. Prices become floats only here, to be plotted. Titles and labels carry
no database text (a subject may need glyphs the bundled font lacks); the page shows it instead.
"""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import QueryRun, RunQuota, SearchedQuery, TierHistory

WIDTH, HEIGHT, DPI = 8.0, 3.6, 110
UP, DOWN, NEUTRAL = "#c0392b", "#1e8449", "#7f8c8d"  # 1688 shows rises in red, falls in green
BLUE, INK = "#5d8aa8", "#2c3e50"


def _figure() -> Figure:
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _x(when: datetime) -> float:
    """A time as matplotlib's date number (days since its epoch)."""
    return float(date2num(when))  # type: ignore[no-untyped-call]


def _date_axis(axes: Axes, times: Sequence[float]) -> None:
    """Concise UTC date ticks; a single moment gets a day either side."""
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    if len(set(times)) == 1:
        axes.set_xlim(times[0] - 1, times[0] + 1)


def _empty(figure: Figure, axes: Axes, text: str) -> bytes:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    return _png(figure)


def _bin_edges(values: Sequence[float]) -> list[float]:
    """Bins of a round width (1, 2, 2.5 or 5 × 10^k %) with 0 on an edge, so that rises and falls
    never share a bin; about 2·√n of them, 5 to 40."""
    low, high = min(*values, 0.0), max(*values, 0.0)
    wanted = max(5, min(40, round(math.sqrt(len(values)) * 2)))
    raw = max(high - low, 1.0) / wanted
    scale = 10.0 ** math.floor(math.log10(raw))
    width = next(step * scale for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * scale >= raw)
    first, last = math.floor(low / width), math.ceil(high / width)
    return [index * width for index in range(first, last + 1)]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def tier_history_png(history: TierHistory, since: datetime | None = None) -> bytes:
    """A step line per tier quantity through the product's price points (the last is its current
    price); a dashed line marks the start of the report's window."""
    figure = _figure()
    axes = figure.add_subplot()
    points = history.points
    if not points:
        axes.text(0.5, 0.5, "no price tiers recorded", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return _png(figure)
    times = [_x(point.at) for point in points]
    for quantity in history.quantities:
        prices = [float(point.tiers[quantity]) if quantity in point.tiers else math.nan for point in points]
        axes.step(times, prices, where="post", marker="o", markersize=4, linewidth=1.6, label=f"≥ {quantity}")
    start = _x(since) if since is not None else None
    if start is not None and times[0] < start < times[-1]:
        axes.axvline(start, color=NEUTRAL, linestyle="--", linewidth=1, label="window start")
    _date_axis(axes, times)
    axes.set_ylabel("price per unit (CNY)")
    axes.set_title(f"Price tiers of product {history.product_id} (UTC)", fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.legend(title="min. quantity", fontsize=8, title_fontsize=8, loc="best")
    return _png(figure)


def change_histogram_png(changes_pct: Sequence[Decimal]) -> bytes:
    """How many reference-price moves of each size (%): rises red, falls green."""
    figure = _figure()
    axes = figure.add_subplot()
    values = [float(value) for value in changes_pct]
    if not values:
        return _empty(figure, axes, "no price changes in the window")
    edges = _bin_edges(values)
    falls = [value for value in values if value < 0]
    rises = [value for value in values if value >= 0]
    if falls:
        axes.hist(falls, bins=edges, color=DOWN, edgecolor="white", label=f"falls ({len(falls)})")
    if rises:
        axes.hist(rises, bins=edges, color=UP, edgecolor="white", label=f"rises ({len(rises)})")
    axes.axvline(0, color=NEUTRAL, linewidth=1)
    axes.set_xlabel("change of the first-tier price (%)")
    axes.set_ylabel("price changes")
    axes.set_title(f"Distribution of {len(values)} price changes", fontsize=11)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def call_rate_png(quota: RunQuota) -> bytes:
    """The calls a run started each second (passed and throttled) and the rate its quota allowed."""
    figure = _figure()
    axes = figure.add_subplot()
    if not quota.series:
        axes.text(0.5, 0.5, "no calls recorded", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return _png(figure)
    start = quota.series[0][0]
    x = [second - start for second, *_ in quota.series]
    widths = [covered for _, covered, *_ in quota.series]
    passed = [(sent - throttled) / covered for _, covered, sent, throttled, _ in quota.series]
    throttled = [throttled / covered for _, covered, _, throttled, _ in quota.series]
    axes.bar(x, passed, width=widths, align="edge", color="#5d8aa8", label="calls passed")
    axes.bar(x, throttled, width=widths, align="edge", bottom=passed, color=UP, label="calls throttled")
    rates = [rate for *_, rate in quota.series]
    axes.step([*x, x[-1] + widths[-1]], [*rates, rates[-1]], where="post", color="#2c3e50", linewidth=1.4,
              linestyle="--", label="rate allowed")
    axes.set_xlabel("seconds since the first call")
    axes.set_ylabel("calls per second")
    axes.set_title("Calls per second of the last run (this process)", fontsize=11)
    top = max(max(rates), *(p + t for p, t in zip(passed, throttled, strict=True)))
    axes.set_ylim(0, max(1.0, top) * 1.2)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", ncols=3)
    return _png(figure)


def search_hits_png(runs: Sequence[QueryRun]) -> bytes:
    """The hits each run of one query stored, at the run's start; and, on a right axis of its own
    (it is often far above what a run reads), the total of matching offers the gateway reported.
    Both axes start at 0 and leave the top fifth free for the legend."""
    figure = _figure()
    axes = figure.add_subplot()
    if not runs:
        return _empty(figure, axes, "no runs in the window")
    times = [_x(run.started_at) for run in runs]
    hits = [run.hits for run in runs]
    lines = axes.plot(times, hits, color=BLUE, marker="o", markersize=5, linewidth=1.6, clip_on=False,
                      label="hits stored")
    totals = [float(run.total_records) if run.total_records is not None else math.nan for run in runs]
    known = [total for total in totals if not math.isnan(total)]
    if known:
        right = axes.twinx()
        lines += right.plot(times, totals, color=NEUTRAL, marker="s", markersize=4, linewidth=1.2, linestyle="--",
                            clip_on=False, label="total reported by the gateway (right axis)")
        right.set_ylabel("offers reported")
        right.set_ylim(0, max(1.0, *known) * 1.25)
        right.yaxis.set_major_locator(MaxNLocator(integer=True))
    _date_axis(axes, times)
    axes.set_ylim(0, max(1, *hits) * 1.25)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("hits")
    axes.set_title(f"Hits of {len(runs)} run{'s' if len(runs) != 1 else ''} (UTC)", fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.legend(handles=lines, fontsize=8, loc="upper left", ncols=2)
    return _png(figure)


def price_histogram_png(prices: Sequence[Decimal]) -> bytes:
    """How many hits at each price (CNY), about 2·√n bins (5 to 30), with the median marked."""
    figure = _figure()
    axes = figure.add_subplot()
    values = [float(price) for price in prices]
    if not values:
        return _empty(figure, axes, "no prices")
    bins = max(5, min(30, round(math.sqrt(len(values)) * 2)))
    axes.hist(values, bins=bins, color=BLUE, edgecolor="white")
    median = statistics.median(values)
    axes.axvline(median, color=INK, linestyle="--", linewidth=1.2, label=f"median {median:.2f} CNY")
    axes.set_xlabel("price (CNY)")
    axes.set_ylabel("hits")
    axes.set_title(f"Prices of {len(values)} hits of the latest run", fontsize=11)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def search_chart_uris(searched: SearchedQuery) -> tuple[str, str | None]:
    """The ``data:`` URIs of a query's hits chart and of its price histogram (None: no prices)."""
    hits = data_uri(search_hits_png(searched.runs))
    return hits, data_uri(price_histogram_png(searched.prices)) if searched.prices else None
