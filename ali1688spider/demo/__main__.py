"""The main job in one command: ``python -m ali1688spider.demo`` (``make demo``).

Offline (no ``ALI1688_APP_KEY`` in the environment) it starts the bundled gateway emulator
with its demo credentials and, when ``MONGO_URI`` is not set, a local Mongo-protocol server; it
crawls a few hundred products (plus some junk lines, a duplicate and unknown ids, as real input
has), moves the emulator's catalogue to its next epoch (about 30 % of the offers change price and
stock) and crawls again, so that history and price movers exist; then it writes the HTML report,
prints the summary, where the data is and the report's path, and stops what it started.

With real credentials in the environment (``ALI1688_APP_KEY``, ``ALI1688_APP_SECRET``,
``ALI1688_REFRESH_TOKEN``) the same crawl runs against the real gateway, on ``--ids-file``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .. import config
from ..sandbox.catalogue import Catalogue
from ..sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN
from .services import GatewayEmulator, gateway_emulator, mongo_server

JUNK = ["not-an-id", "12345", "https://example.com/offer/610784549587.html"]


def write_demo_ids(path: Path, count: int, seed: int) -> None:
    catalogue = Catalogue(seed)
    ids = [str(offer_id) for offer_id in catalogue.offer_ids(count)]
    lines = ["# demo input: ids, offer URLs, junk, a duplicate, unknown ids"]
    for index, offer_id in enumerate(ids):
        lines.append(f"https://detail.1688.com/offer/{offer_id}.html" if index % 5 == 0 else offer_id)
    lines += [ids[0], "", *JUNK, *(str(offer_id) for offer_id in catalogue.missing_ids(2))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _gateway(env: dict[str, str], offline: bool, seed: int) -> Iterator[GatewayEmulator | None]:
    if not offline:
        yield None
        return
    with gateway_emulator("--seed", str(seed), "--qps", "50", "--latency-ms", "20") as emulator:
        env.update({config.GATEWAY_URL.name: emulator.url, config.APP_KEY.name: DEMO_APP_KEY,
                    config.APP_SECRET.name: DEMO_APP_SECRET, config.REFRESH_TOKEN.name: DEMO_REFRESH_TOKEN})
        print(f"gateway emulator: {emulator.url} (quota 50 calls/s, 20 ms latency; the crawl is not told the "
              "quota: it finds it)", flush=True)
        yield emulator


@contextlib.contextmanager
def _mongo(env: dict[str, str], folder: Path) -> Iterator[None]:
    if config.MONGO_URI.raw(environ=env):
        yield
        return
    with mongo_server(folder / "mongo") as server:
        env[config.MONGO_URI.name] = server.url
        print(f"Mongo-protocol server: {server.url} (data in {folder / 'mongo'})", flush=True)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ali1688spider.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="offline: how many offers to crawl")
    parser.add_argument("--ids-file", help="the input (required against the real gateway)")
    parser.add_argument("--api", default="product.get", help="product.get | crossborder | fenxiao")
    parser.add_argument("--seed", type=int, default=1688)
    parser.add_argument("--workdir", default="var/demo")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    offline = not config.APP_KEY.get(environ=env)
    folder = Path(args.workdir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if args.ids_file:
        ids_file = Path(args.ids_file)
    elif offline:
        ids_file = folder / "ids.txt"
        write_demo_ids(ids_file, args.count, args.seed)
    else:
        print("error: with real credentials, give the input: --ids-file FILE", file=sys.stderr)
        return 2
    env[config.MONGO_DATABASE.name] = config.MONGO_DATABASE.get(environ=env)
    env.setdefault(config.UNSAVED_DIR.name, str(folder / "unsaved"))

    root = Path(__file__).resolve().parents[2]  # where scrapy.cfg is
    with _gateway(env, offline, args.seed) as emulator, _mongo(env, folder):
        command = [sys.executable, "-m", "scrapy", "crawl", "product", "-a", f"ids_file={ids_file}",
                   "-a", f"api={args.api}", "-s", "ALI1688_PROGRESS_INTERVAL=5"]
        print("running:", " ".join(command[1:]), flush=True)
        status = subprocess.call(command, env=env, cwd=root)
        if emulator is not None and status == 0:
            epoch = emulator.post("/_sandbox/epoch")["epoch"]
            print(f"\nthe emulator's catalogue moved to epoch {epoch} (about 30 % of the offers changed price and "
                  "stock); crawling again:", flush=True)
            status = subprocess.call(command, env=env, cwd=root)
        _summary(env)
        report = folder / "report.html"
        made = subprocess.call([sys.executable, "-m", "ali1688spider", "report", "--mongo-uri",
                                config.MONGO_URI.get(environ=env), "--database", config.MONGO_DATABASE.get(environ=env),
                                "--out", str(report)], env=env, cwd=root)
        if made == 0:
            print(f"\nreport: {report}\n        {report.as_uri()}")
    return status


def _summary(env: dict[str, str]) -> None:
    from pymongo import MongoClient


    uri, database = config.MONGO_URI.get(environ=env), config.MONGO_DATABASE.get(environ=env)
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=3000)
    try:
        db = client[database]
        products = db.products.count_documents({})
        reasons = {row["_id"]: row["n"] for row in db.failures.aggregate(
            [{"$group": {"_id": "$reason", "n": {"$sum": 1}}}])}
        sample = db.products.find_one({}, {"subject": 1, "min_price": 1, "max_price": 1, "stock": 1})
    finally:
        client.close()
    print(f"\nMongoDB {config.redact_uri(uri)}, database {database!r}:")
    print(f"  products: {products} documents")
    print(f"  failures: {sum(reasons.values())} documents {reasons or ''}")
    if sample:
        print(f"  e.g. {sample['_id']}: {sample.get('subject')} "
              f"({sample.get('min_price')}-{sample.get('max_price')} CNY, stock {sample.get('stock')})")


if __name__ == "__main__":
    sys.exit(main())
