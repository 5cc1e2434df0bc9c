"""``python -m ali1688spider COMMAND``: the project's tools outside Scrapy.

    report   write a self-contained HTML report of the crawled catalogue (see ``report --help``)

Each command lives in its own module and is imported only when it runs.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ali1688spider", description="The project's tools outside Scrapy.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .report import cli as report

    report.add_arguments(commands.add_parser(
        "report", help="write a self-contained HTML report (totals, failures, price movers, charts)",
        description=report.DESCRIPTION))
    args = parser.parse_args(argv)
    if args.command == "report":
        return report.run(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse refuses it first
    return 2


if __name__ == "__main__":
    sys.exit(main())
