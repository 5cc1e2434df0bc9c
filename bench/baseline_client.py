"""The usual blog-post client for the 1688 product API, as a baseline for bench/compare.py.

Its design is the one most published snippets share: ``requests``, a thread pool, the ids cut
into batches the size of the pool, each batch waited for, then a pause (1 s) before the next;
every result kept in a list in memory; a gateway error (throttling included) is recorded as an
error for that id and never retried. Only two things are ours, so that the comparison is about
the design and not about the parsing: each call is signed with ``ali1688spider.aop.sign`` (it
must be, to talk to the same emulator), and a reply is decoded and normalised exactly as the
crawler does (``decode_json``, ``PRODUCT_GET.product_payload``, ``normalize``). The access token
is fetched once at start with ``TokenClient``.

    python bench/baseline_client.py --gateway URL --ids-file ids.txt --threads 5 --pause 1
    python bench/baseline_client.py --gateway URL --ids-file ids.txt --threads 16 --pause 0
    python bench/baseline_client.py … --keep-alive --no-batches   # a tuned variant, for reference

``--keep-alive`` gives each thread its own ``requests.Session`` (the snippets call
``requests.post`` and so open a connection per call); ``--no-batches`` hands every id to the pool
at once instead of batch by batch. A JSON summary goes to ``--out`` (or stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ali1688spider.aop import PRODUCT_GET, TokenClient, decode_json, encode_params, sign  # noqa: E402
from ali1688spider.aop.errors import BusinessFailure  # noqa: E402
from ali1688spider.aop.normalize import NormalizationError, normalize  # noqa: E402
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN  # noqa: E402


class Baseline:
    def __init__(self, gateway: str, app_key: str, app_secret: str, token: str, *, keep_alive: bool) -> None:
        self.url_path = PRODUCT_GET.url_path(app_key)
        self.url = PRODUCT_GET.url(gateway, app_key)
        self.app_secret = app_secret
        self.token = token
        self.keep_alive = keep_alive
        self.local = threading.local()
        self.lock = threading.Lock()
        self.calls = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    def post(self, data: dict[str, str]) -> requests.Response:
        if not self.keep_alive:
            return requests.post(self.url, data=data, timeout=30)
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session.post(self.url, data=data, timeout=30)

    def fetch(self, offer_id: str) -> dict[str, Any]:
        params: dict[str, object] = dict(PRODUCT_GET.params_for(offer_id))
        params["access_token"] = self.token
        params["_aop_timestamp"] = int(time.time() * 1000)
        data = encode_params(params)
        data["_aop_signature"] = sign(self.url_path, params, self.app_secret)
        now = time.time()
        with self.lock:
            self.calls += 1
            self.first_at = now if self.first_at is None else self.first_at
            self.last_at = now
        try:
            reply = self.post(data)
            body = decode_json(reply.content)
        except (requests.RequestException, ValueError) as exc:
            return {"id": offer_id, "error": type(exc).__name__}
        if not isinstance(body, dict):
            return {"id": offer_id, "error": "not_an_object"}
        if body.get("error_code"):  # throttled, token, signature…: an error, no retry
            return {"id": offer_id, "error": str(body["error_code"])}
        try:
            product = normalize("product.get", PRODUCT_GET.product_payload(body))
        except BusinessFailure as exc:
            return {"id": offer_id, "error": exc.code}
        except NormalizationError as exc:
            return {"id": offer_id, "error": f"unreadable: {exc.field}"}
        return product.to_dict()


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    ids = [line.strip() for line in Path(args.ids_file).read_text().splitlines() if line.strip()]
    token = TokenClient(args.gateway, args.app_key, args.app_secret).refresh(args.refresh_token)
    client = Baseline(args.gateway, args.app_key, args.app_secret, token.access_token, keep_alive=args.keep_alive)
    results: list[dict[str, Any]] = []
    work = 0.0  # time spent in batches, pauses excluded
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        if args.no_batches:
            began = time.monotonic()
            results.extend(pool.map(client.fetch, ids))
            work += time.monotonic() - began
        else:
            batch = args.batch or args.threads
            for start in range(0, len(ids), batch):
                began = time.monotonic()
                results.extend(pool.map(client.fetch, ids[start:start + batch]))
                work += time.monotonic() - began
                if args.pause and start + batch < len(ids):
                    time.sleep(args.pause)
    errors: dict[str, int] = {}
    for result in results:
        if "error" in result:
            errors[result["error"]] = errors.get(result["error"], 0) + 1
    products = len(results) - sum(errors.values())
    span = (client.last_at - client.first_at) if client.first_at and client.last_at else 0.0
    return {
        "ids": len(ids), "threads": args.threads, "batch": None if args.no_batches else (args.batch or args.threads),
        "pause": args.pause, "keep_alive": args.keep_alive, "products": products, "errors": errors,
        "throttle_errors": sum(n for code, n in errors.items() if code.startswith("gw.Qos")),
        "calls": client.calls, "first_at": client.first_at, "last_at": client.last_at,
        "call_span_seconds": round(span, 3), "work_seconds": round(work, 3),
        "seconds": round(time.monotonic() - started, 3), "results_in_memory": len(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", required=True, help="…/openapi base URL")
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--threads", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="ids per batch (default: --threads)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between batches")
    parser.add_argument("--keep-alive", action="store_true", help="a requests.Session per thread")
    parser.add_argument("--no-batches", action="store_true", help="all ids to the pool at once")
    parser.add_argument("--app-key", default=os.environ.get("ALI1688_APP_KEY", DEMO_APP_KEY))
    parser.add_argument("--app-secret", default=os.environ.get("ALI1688_APP_SECRET", DEMO_APP_SECRET))
    parser.add_argument("--refresh-token", default=os.environ.get("ALI1688_REFRESH_TOKEN", DEMO_REFRESH_TOKEN))
    parser.add_argument("--out", help="write the JSON summary here")
    args = parser.parse_args()
    summary = json.dumps(run(args))
    if args.out:
        Path(args.out).write_text(summary)
    else:
        print(summary)


if __name__ == "__main__":
    main()
