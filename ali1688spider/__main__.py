"""``python -m ali1688spider COMMAND``: the project's tools outside Scrapy.

    listen     receive 1688's change messages (HTTP push) and queue the offers they name
    report     write a self-contained HTML report of the crawled catalogue (see ``report --help``)
    settings   list every setting: default, meaning, and the value this environment gives it

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
    from .messages import listener

    listener.add_arguments(commands.add_parser(
        "listen", help="receive 1688's change messages (HTTP push) and queue the offers they name",
        description=listener.DESCRIPTION))
    listing = commands.add_parser(
        "settings", help="list every setting with its default, its meaning and its value here",
        description="Every ALI1688_/MONGO_/REDIS_ setting, from the registry in ali1688spider/config.py.")
    listing.add_argument("--markdown", action="store_true", help="print the README's settings tables instead")
    args = parser.parse_args(argv)
    if args.command == "report":
        return report.run(args)
    if args.command == "listen":
        return listener.run(args)
    return _settings(markdown=args.markdown)


def _settings(*, markdown: bool) -> int:
    from . import config

    if markdown:
        print(config.markdown(), end="")
        return 0
    status = 0
    for setting in config.REGISTRY.values():
        try:
            value = setting.get()
        except config.SettingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        if setting.raw() is None:
            shown = f"{setting.shown_default()} (default)"
        else:
            shown = "(set, hidden)" if setting.secret else config.redact_uri(str(value))
        print(f"{setting.name:<45} {shown}")
    return status


if __name__ == "__main__":
    sys.exit(main())
