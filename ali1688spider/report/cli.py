"""``python -m ali1688spider report``: the options, and one line on stderr with exit status 2
when the report cannot be made (MongoDB unreachable, an empty database, an unknown product)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import MONGO_DATABASE, MONGO_URI
from .data import ReportError, connect, load, parse_window

DESCRIPTION = ("Write a self-contained HTML report of the crawled catalogue: run and catalogue totals, failures by "
               "reason, the products whose prices moved most, their price charts, the last run's call rate and "
               "the recent searches (hits over time, prices, best sellers).")


def _window(text: str) -> str:
    try:
        parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongo-uri", default=MONGO_URI.get(),  # the help never prints it: a password
                        help=f"MongoDB URI (default: ${MONGO_URI.name} or {MONGO_URI.default})")
    parser.add_argument("--database", default=MONGO_DATABASE.get(),
                        help=f"database name (default: ${MONGO_DATABASE.name} or {MONGO_DATABASE.default})")
    parser.add_argument("--since", default="7d", type=_window, metavar="WINDOW",
                        help="time window: 30m, 24h, 7d, 2w or all (default: %(default)s)")
    parser.add_argument("--product", default=None, metavar="ID",
                        help="product whose price tiers are charted (default: the top mover)")
    parser.add_argument("--out", default="report.html", type=Path, help="HTML file to write (default: %(default)s)")
    parser.add_argument("--top", default=20, type=_positive, help="how many top movers to list (default: %(default)s)")
    parser.add_argument("--timeout", default=5.0, type=float, metavar="SECONDS",
                        help="how long to wait for MongoDB (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        db = connect(args.mongo_uri, args.database, timeout=args.timeout)
        try:
            data = load(db, uri=args.mongo_uri, window=parse_window(args.since), product_id=args.product,
                        top=args.top)
        finally:
            db.client.close()
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    from . import charts, html  # matplotlib is imported only when there is a page to draw

    tier_chart = (charts.data_uri(charts.tier_history_png(data.history, data.since))
                  if data.history is not None else None)
    histogram = charts.data_uri(charts.change_histogram_png(data.changes_pct))
    quota = data.last_run.quota if data.last_run is not None else None
    rate_chart = charts.data_uri(charts.call_rate_png(quota)) if quota is not None else None
    search_charts = [charts.search_chart_uris(searched) for searched in data.searches]
    page = html.render(data, tier_chart=tier_chart, histogram=histogram, rate_chart=rate_chart,
                       search_charts=search_charts)
    out: Path = args.out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        partial.write_text(page, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        print(f"report: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    totals = data.totals
    print(f"report: wrote {out} ({totals.products} products, {totals.failures} failing ids, "
          f"{len(data.movers)} movers, {len(data.searches)} searched queries, {len(page) // 1024} KiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ali1688spider report", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
