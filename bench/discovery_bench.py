"""Discovery (issue 15): change detection by listing, and search pages per second under a quota.

    python bench/discovery_bench.py                       # both parts: ~6.5 min on 2 busy cores
    python bench/discovery_bench.py --only fresh          # part 1 only
    python bench/discovery_bench.py --only quota --quotas 10

1. Keeping found offers fresh after an epoch (emulator without quota or latency, fresh
   Mongo-protocol server). Twenty keywords are chosen from the catalogue's subjects: two-character
   Chinese substrings that match at least ``--max-results`` (250) offers, taken greedily so that
   their first 250 hits (the emulator's own answer, computed in-process with its ``Discovery``)
   overlap as little as possible. Run 1: ``scrapy crawl search -a q=K -a country=en
   -a max_results=250`` for each keyword, one crawl after the other: every offer found is fetched
   (crossborder detail API). Then ``POST /_sandbox/epoch {"epoch": 1}`` (~30 % of all offers get
   new prices and stock) and the emulator's counters are zeroed. Run 2: the same twenty searches,
   with change detection (the default): search pages, detail calls, unchanged offers. Freshness:
   every found offer that drifted (``Catalogue.drifted_ids``) must now hold its epoch-1 first-tier
   price (``price_tiers[0].price`` against ``money_text(offer(id, 1).tiers[0].price_cents)``).
   Baseline: ``scrapy crawl product -a api=crossborder -a ids_file=<the distinct offers found>``
   at the same epoch, i.e. re-fetching everything. Calls are the emulator's per-API counts; the
   crawls share one token file, so each run asks for about one token.

2. Search pages per second under a quota nobody told the crawl (``ALI1688_QPS`` unset, a fresh
   Mongo, so no learned rate): an emulator with ``--qps Q`` (10, 30) and ``--latency-ms L`` (50 ms
   as bench/quota_bench.py, and 0: the crawl's own speed), one
   ``scrapy crawl search -a q=批发 -a page_size=10 -a max_results=2000 -a details=false`` (200
   pages). Pages/s = (pages − 1) / the crawl's call span (``ali1688/request/first_at`` to
   ``last_at``); utilisation = pages/s ÷ Q; the emulator's throttled count; the median of the
   calls it admitted per calendar second, the first and last (partial) seconds left out: the
   steady rate, once the adaptive quota has ramped up.

Writes ``--json`` (default bench/discovery.json) and prints markdown tables; the numbers are copied
by hand into bench/RESULTS.md, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from crawl_bench import DATABASE, ROOT, crawl_env  # bench/ is sys.path[0] when run as a script
from pymongo import MongoClient

from ali1688spider.demo.services import gateway_emulator, mongo_server
from ali1688spider.sandbox.catalogue import Catalogue, money_text
from ali1688spider.sandbox.search import KEYWORD, Discovery

SEED = 1688  # the emulator's default catalogue
COUNTRY = "en"
DETAIL_API = "product.search.queryProductDetail"  # the crossborder detail API, as the emulator counts it
SEARCH_API = "product.search.keywordQuery"
TOKEN_API = "getToken"


# -- keywords ---------------------------------------------------------------------------------

def _is_han(text: str) -> bool:
    return all("\u4e00" <= char <= "\u9fff" for char in text)


def pick_keywords(count: int, per_keyword: int) -> list[dict[str, Any]]:
    """``count`` two-character Chinese keywords, each matching at least ``per_keyword`` offers,
    chosen greedily for the most offers not yet found among their first ``per_keyword`` hits (ties:
    the keyword matching more offers). The hits are the emulator's answers, computed in-process."""
    discovery = Discovery(Catalogue(SEED))
    frequency: Counter[str] = Counter()
    for subject in discovery.index.folded:
        frequency.update({subject[i:i + 2] for i in range(len(subject) - 1)})
    candidates = sorted(word for word, n in frequency.items() if n >= per_keyword and _is_han(word))
    first_hits: dict[str, tuple[int, set[int]]] = {}
    for word in candidates:
        ranked: list[int] = []
        total = 0
        for page in range(1, -(-per_keyword // 50) + 1):  # pages of 50, as the crawl asks
            query = {"keyword": word, "beginPage": page, "pageSize": 50, "country": COUNTRY}
            body, ok = discovery.answer(KEYWORD, query, 0)
            assert ok, body
            result = json.loads(body)["result"]["result"]
            total = result["totalRecords"]
            ranked += [hit["offerId"] for hit in result["data"]]
        if total >= per_keyword:
            first_hits[word] = (total, set(ranked[:per_keyword]))
    chosen: list[dict[str, Any]] = []
    covered: set[int] = set()
    for _ in range(count):
        word = max((w for w in first_hits if w not in {c["keyword"] for c in chosen}),
                   key=lambda w: (len(first_hits[w][1] - covered), first_hits[w][0], w))
        total, hits = first_hits[word]
        chosen.append({"keyword": word, "matches": total, "new_offers": len(hits - covered)})
        covered |= hits
    return chosen


# -- crawls -----------------------------------------------------------------------------------

def crawl(spider: str, arguments: dict[str, str], env: dict[str, str], stats_file: Path) -> dict[str, Any]:
    """One ``scrapy crawl`` (exit 0 required); its stats file, plus ``wall_seconds``."""
    command = [sys.executable, "-m", "scrapy", "crawl", spider]
    for name, value in arguments.items():
        command += ["-a", f"{name}={value}"]
    command += ["-s", f"ALI1688_STATS_FILE={stats_file}", "-s", "LOG_LEVEL=WARNING"]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    stats = json.loads(stats_file.read_text())
    stats["wall_seconds"] = time.monotonic() - started
    return stats


def searches(keywords: list[str], max_results: int, env: dict[str, str], work: Path, run: str) -> dict[str, Any]:
    """One search crawl per keyword, in turn; the sums of their stats."""
    total: Counter[str] = Counter()
    for number, keyword in enumerate(keywords):
        stats = crawl("search", {"q": keyword, "country": COUNTRY, "max_results": str(max_results)}, env,
                      work / f"{run}-{number}.json")
        for key in ("ali1688/search/pages", "ali1688/search/hits", "ali1688/search/unchanged",
                    "ali1688/request/sent", "ali1688/products", "ali1688/input/duplicate", "wall_seconds"):
            total[key] += stats.get(key, 0)
        for key, value in stats.items():
            if key.startswith("ali1688/failed/"):
                total[key] += value
    return dict(total)


def calls(seen: dict[str, Any]) -> dict[str, int]:
    """The emulator's counts: pages, details, tokens, all requests, throttled."""
    by_api = seen["by_api"]
    return {"pages": by_api.get(SEARCH_API, 0), "details": by_api.get(DETAIL_API, 0),
            "tokens": by_api.get(TOKEN_API, 0), "requests": seen["requests"], "throttled": seen["throttled"]}


def _price(document: dict[str, Any] | None) -> str | None:
    tiers = (document or {}).get("price_tiers") or []
    price = tiers[0].get("price") if tiers else None
    return None if price is None else str(price.to_decimal() if hasattr(price, "to_decimal") else price)


def _same_price(stored: str | None, expected: str | None) -> bool:
    return stored is not None and expected is not None and Decimal(stored) == Decimal(expected)


def freshness(keywords: list[str], max_results: int) -> dict[str, Any]:
    catalogue = Catalogue(SEED)
    with tempfile.TemporaryDirectory(prefix="ali1688-discovery-bench-") as folder, gateway_emulator() as gateway, \
            mongo_server(Path(folder) / "mongo") as mongo, MongoClient(mongo.url, tz_aware=True) as client:
        work, database = Path(folder), client[DATABASE]
        env = crawl_env(gateway.url, mongo.url, 0, ALI1688_TOKEN_FILE=str(work / "token.json"))

        run1 = searches(keywords, max_results, env, work, "run1")
        run1_calls = calls(gateway.stats())
        found = sorted({str(doc["offer_id"]) for doc in database.listings.find({}, {"offer_id": 1})}, key=int)
        stored_after_run1 = database.products.count_documents({})

        gateway.post("/_sandbox/epoch", {"epoch": 1})
        gateway.reset()  # zero the counters; the epoch stays
        epoch_at = datetime.now(UTC)
        run2 = searches(keywords, max_results, env, work, "run2")
        run2_calls = calls(gateway.stats())

        drifted = {str(i) for i in catalogue.drifted_ids(found, 1)}
        products = {doc["_id"]: doc for doc in database.products.find(
            {"_id": {"$in": found}}, {"price_tiers": 1, "fetched_at": 1, "min_price": 1})}
        refetched = {key for key, doc in products.items() if doc.get("fetched_at") and doc["fetched_at"] >= epoch_at}
        expected = {}
        for offer_id in found:
            offer = catalogue.offer(offer_id, 1)
            expected[offer_id] = money_text(offer.tiers[0].price_cents) if offer and offer.tiers else None
        fresh = [i for i in found if _same_price(_price(products.get(i)), expected[i])]
        stale = sorted(set(found) - set(fresh), key=int)

        gateway.reset()
        ids_file = work / "found.txt"
        ids_file.write_text("\n".join(found) + "\n")
        baseline = crawl("product", {"api": "crossborder", "country": COUNTRY, "ids_file": str(ids_file)}, env,
                         work / "baseline.json")
        baseline_calls = calls(gateway.stats())

    with_detection = run2_calls["pages"] + run2_calls["details"]
    refetch_all = baseline_calls["details"]
    return {
        "keywords": keywords, "max_results": max_results,
        "run1": {"found_distinct": len(found), "hits": run1.get("ali1688/search/hits", 0),
                 "pages": run1.get("ali1688/search/pages", 0), "products_stored": stored_after_run1,
                 "unchanged": run1.get("ali1688/search/unchanged", 0), "calls": run1_calls,
                 "wall_seconds": round(run1["wall_seconds"], 1)},
        "run2": {"pages": run2_calls["pages"], "details": run2_calls["details"], "tokens": run2_calls["tokens"],
                 "requests": run2_calls["requests"], "sent_by_crawls": run2.get("ali1688/request/sent", 0),
                 "unchanged": run2.get("ali1688/search/unchanged", 0), "products": run2.get("ali1688/products", 0),
                 "duplicates": run2.get("ali1688/input/duplicate", 0),
                 "failed": {k: v for k, v in run2.items() if k.startswith("ali1688/failed/")},
                 "wall_seconds": round(run2["wall_seconds"], 1)},
        "drifted_found": len(drifted),
        "refetched": len(refetched),
        "refetched_not_drifted": len(refetched - drifted),
        "drifted_not_refetched": len(drifted - refetched),
        "fresh_drifted": len(drifted & set(fresh)),
        "fresh_all": len(fresh),
        "stale_examples": [{"id": i, "stored": _price(products.get(i)), "epoch1": expected[i]} for i in stale[:5]],
        "baseline": {"details": baseline_calls["details"], "tokens": baseline_calls["tokens"],
                     "requests": baseline_calls["requests"], "sent": baseline.get("ali1688/request/sent", 0),
                     "products": baseline.get("ali1688/products", 0),
                     "wall_seconds": round(baseline["wall_seconds"], 1)},
        "calls_with_detection": with_detection,
        "calls_refetch_all": refetch_all,
        "ratio": round(refetch_all / with_detection, 2) if with_detection else None,
    }


def quota(qps: int, latency_ms: int, keyword: str, page_size: int, max_results: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ali1688-discovery-quota-") as folder, \
            gateway_emulator("--qps", str(qps), "--latency-ms", str(latency_ms)) as gateway, \
            mongo_server(Path(folder) / "mongo") as mongo:
        env = crawl_env(gateway.url, mongo.url, 0)
        del env["ALI1688_QPS"]  # nobody tells the crawl: it finds the quota
        stats = crawl("search", {"q": keyword, "country": COUNTRY, "page_size": str(page_size),
                                 "max_results": str(max_results), "details": "false"}, env,
                      Path(folder) / "stats.json")
        seen = gateway.stats()
        seconds = gateway.quota_seconds()
    pages = stats.get("ali1688/search/pages", 0)
    sent = stats.get("ali1688/request/sent", 0)
    span = stats["ali1688/request/last_at"] - stats["ali1688/request/first_at"]
    rate = (pages - 1) / span if span > 0 else None
    start = min((row[0] for row in seconds), default=0)
    whole = sorted(admitted for _, admitted, _ in sorted(seconds)[1:-1])  # the partial first and last out
    return {
        "qps": qps, "latency_ms": latency_ms, "keyword": keyword, "page_size": page_size,
        "max_results": max_results, "pages": pages, "calls_sent": sent, "span_seconds": round(span, 2),
        "pages_per_second": round(rate, 2) if rate else None,
        "utilisation": round(rate / qps, 3) if rate else None,
        "median_per_second": whole[len(whole) // 2] if whole else None,
        "throttled": seen["throttled"], "retries": stats.get("ali1688/retry/count", 0),
        "quota_rate_end": stats.get("ali1688/quota/rate"), "quota_learned": stats.get("ali1688/quota/learned"),
        "quota_found": stats.get("ali1688/quota/found", 0), "quota_cuts": stats.get("ali1688/quota/cuts", 0),
        "quota_raises": stats.get("ali1688/quota/raises", 0),
        "quota_waited_ms": stats.get("ali1688/quota/waited_ms", 0),
        "latency_p50_ms": stats.get("ali1688/latency/p50_ms"),
        "wall_seconds": round(stats["wall_seconds"], 1),
        "per_second": [[second - start, admitted, throttled] for second, admitted, throttled in sorted(seconds)],
    }


# -- output -----------------------------------------------------------------------------------

def print_tables(results: dict[str, Any]) -> None:
    fresh = results.get("freshness")
    if fresh:
        r1, r2, base = fresh["run1"], fresh["run2"], fresh["baseline"]
        print(f"\nKeywords ({len(fresh['keywords'])}, max_results={fresh['max_results']}): "
              + " ".join(fresh["keywords"]))
        print(f"Run 1: {r1['found_distinct']} distinct offers found ({r1['hits']} hits, {r1['pages']} pages), "
              f"{r1['products_stored']} products stored, {r1['calls']['details']} detail calls.\n")
        print("| after epoch 1 | search pages | detail calls | unchanged | calls (pages + details) | token calls |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| run 2: the same searches, change detection | {r2['pages']} | {r2['details']} | {r2['unchanged']} | "
              f"{fresh['calls_with_detection']} | {r2['tokens']} |")
        print(f"| baseline: re-fetch every found offer | — | {base['details']} | — | {fresh['calls_refetch_all']} | "
              f"{base['tokens']} |")
        print(f"\n| figure | value |\n|---|---:|\n| distinct offers found | {r1['found_distinct']} |"
              f"\n| of them drifted at epoch 1 | {fresh['drifted_found']} |"
              f"\n| detail calls in run 2 | {r2['details']} |"
              f"\n| re-fetched but not drifted | {fresh['refetched_not_drifted']} |"
              f"\n| drifted but not re-fetched | {fresh['drifted_not_refetched']} |"
              f"\n| drifted offers holding the epoch-1 price | {fresh['fresh_drifted']} / {fresh['drifted_found']} |"
              f"\n| all found offers holding the epoch-1 price | {fresh['fresh_all']} / {r1['found_distinct']} |"
              f"\n| calls saved: re-fetch all ÷ change detection | {fresh['ratio']}× |")
    rows = results.get("quota") or []
    if rows:
        print("\n| quota Q | latency | pages | calls sent | call span | pages/s | utilisation | throttled | "
              "median calls in a whole second | rate at the end |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            util = "—" if r["utilisation"] is None else f"{r['utilisation']:.1%}"
            print(f"| {r['qps']} | {r['latency_ms']} ms | {r['pages']} | {r['calls_sent']} | {r['span_seconds']} s "
                  f"| {r['pages_per_second']} | {util} | {r['throttled']} | {r['median_per_second']} "
                  f"| {r['quota_rate_end']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["fresh", "quota"], help="only one part")
    parser.add_argument("--keywords", type=int, default=20, help="how many keyword searches (part 1)")
    parser.add_argument("--max-results", type=int, default=250, help="hits per keyword (part 1)")
    parser.add_argument("--quotas", type=int, nargs="+", default=[10, 30], help="the emulator's quotas (part 2)")
    parser.add_argument("--latencies-ms", type=int, nargs="+", default=[50, 0],
                        help="the emulator's reply delays (part 2): every quota runs with each")
    parser.add_argument("--quota-keyword", default="批发", help="a keyword matching ≥ 2,000 offers (part 2)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "discovery.json")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.only != "quota":
        chosen = pick_keywords(args.keywords, args.max_results)
        results["keyword_choice"] = chosen
        print(json.dumps(chosen, ensure_ascii=False), flush=True)
        results["freshness"] = freshness([c["keyword"] for c in chosen], args.max_results)
        print(json.dumps(results["freshness"], ensure_ascii=False), flush=True)
    if args.only != "fresh":
        results["quota"] = []
        for latency_ms in args.latencies_ms:
            for qps in args.quotas:
                results["quota"].append(quota(qps, latency_ms, args.quota_keyword, 10, 2000))
            print(json.dumps({k: v for k, v in results["quota"][-1].items() if k != "per_second"},
                             ensure_ascii=False), flush=True)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print_tables(results)
    print(f"\n{results['wall_seconds']} s in all")


if __name__ == "__main__":
    main()
