"""The emulator's HTTP side (aiohttp): the gateway under ``/openapi`` and the test controls
under ``/_sandbox``.

``/openapi/{protocol}/{version}/{namespace}/{apiName}/{appKey}`` (any method): parameters from
the query string and the ``application/x-www-form-urlencoded`` (or multipart) body, merged, the
body winning; see :mod:`.gateway` for what is answered: the product APIs (:mod:`.views`) and the
discovery APIs, keyword, shop and image search and the image upload (:mod:`.search`). A body may
be up to ``MAX_BODY`` bytes, room for an image of ``search.IMAGE_MAX_BYTES`` as form-encoded base64.

Controls (JSON):

- ``GET  /_sandbox/stats`` — counters (:mod:`.stats`) with quota peaks, usage and faults.
- ``POST /_sandbox/reset`` — zero stats, quota counters, usage and the fault script.
- ``POST /_sandbox/faults`` ``{"script": [...]}`` — queue scripted faults (:mod:`.faults`);
  ``GET`` lists the pending ones.
- ``GET  /_sandbox/authorize?client_id=&redirect_uri=&state=`` — the user agrees at once:
  302 to ``redirect_uri?code=…&state=…`` (a single-use code).
- ``POST /_sandbox/revoke`` ``{"refresh_tokens": true, "access_tokens": false}`` (body optional)
  — forget tokens, so grants answer ``invalid_grant`` (or calls 401).
- ``GET  /_sandbox/offers?n=10&start=600000000000&missing=0`` — ids of this catalogue, and the
  encrypted ``openOfferId`` of each (for ``fenxiao.info``).
- ``GET  /_sandbox/sellers?n=10`` — ``{"sellers": [{"open_id", "offers"}, …]}``: the ``n`` sellers
  with the most offers among those the searches find, largest first (ties by open id); an
  ``open_id`` is a ``sellerOpenId`` for ``querySellerOfferList``, ``offers`` the size of its shop.
- ``POST /_sandbox/quota`` ``{"qps": N, "window": "second" | "sliding"}`` — change the quota from
  the next call on (``window`` optional). ``GET`` and the reply give ``{"qps", "window",
  "seconds"}``: ``seconds`` lists ``[second, admitted, throttled]`` per recent calendar second.
- ``POST /_sandbox/epoch`` ``{"epoch": N}`` — serve the catalogue at epoch N from the next call on;
  without a body (or without ``epoch``) the epoch goes up by one. ``GET`` and the reply give
  ``{"epoch": N}``. Prices and stock of some offers differ from one epoch to the next
  (:mod:`.catalogue`); ``reset`` leaves the epoch alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from . import open_ids
from .catalogue import MAX_EPOCH
from .config import SandboxConfig
from .faults import parse_script
from .gateway import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_BODY = 8 * 1024 * 1024  # a 3 MiB image is 4 MiB of base64, more once form-encoded
MAX_LISTED_IDS = 100_000

access_logger = logging.getLogger("ali1688spider.sandbox.access")
log = logging.getLogger("ali1688spider.sandbox")


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string (tokens and signatures stay out of logs)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %d %.1fms', request.remote, request.method, request.path,
                         response.status, response.body_length, time * 1000)


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if not request.can_read_body:
        return params
    content_type = request.content_type
    if content_type == MULTIPART:
        form = await request.post()
        params.update((key, value) for key, value in form.items() if isinstance(value, str))
    elif content_type in (FORM, "application/octet-stream", "text/plain", ""):
        raw = await request.read()
        if raw:
            charset = request.charset or "utf-8"
            params.update(parse_qsl(raw.decode(charset, "replace"), keep_blank_values=True))
    return params


async def _openapi(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    reply = gateway.answer(request.match_info.get("tail", ""), await _params(request))
    delay = gateway.latency() + reply.delay
    if delay > 0:
        await asyncio.sleep(delay)
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type,
                        charset="UTF-8" if reply.body else None)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[GATEWAY].snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[GATEWAY].reset()
    return _json({"ok": True})


async def _add_faults(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    try:
        faults = parse_script(await request.json())
    except (ValueError, TypeError) as exc:  # ValueError includes invalid JSON
        return _json({"error": str(exc)}, status=400)
    gateway.faults.add(faults)
    return _json({"ok": True, "pending": len(gateway.faults.pending())})


async def _pending_faults(request: web.Request) -> web.Response:
    return _json({"pending": request.app[GATEWAY].faults.pending()})


async def _authorize(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    query = request.query
    redirect_uri = query.get("redirect_uri", "")
    if query.get("client_id") != gateway.config.app_key:
        return _json({"error": "invalid_client", "error_description": "unknown client_id"}, status=400)
    target = URL(redirect_uri)
    if not redirect_uri or not target.is_absolute():
        return _json({"error": "invalid_request", "error_description": "an absolute redirect_uri is required"},
                     status=400)
    code = gateway.tokens.new_code(redirect_uri)
    gateway.stats.authorizations += 1
    extra = {"code": code}
    if "state" in query:
        extra["state"] = query["state"]
    raise web.HTTPFound(target.update_query(extra))


async def _revoke(request: web.Request) -> web.Response:
    options: Any = {}
    if request.can_read_body:
        try:
            options = await request.json()
        except ValueError:
            return _json({"error": "the body must be a JSON object"}, status=400)
    if not isinstance(options, dict):
        return _json({"error": "the body must be a JSON object"}, status=400)
    request.app[GATEWAY].tokens.revoke(
        refresh=bool(options.get("refresh_tokens", True)), access=bool(options.get("access_tokens", False)),
    )
    return _json({"ok": True})


async def _offers(request: web.Request) -> web.Response:
    catalogue = request.app[GATEWAY].catalogue
    try:
        count = int(request.query.get("n", "10"))
        missing = int(request.query.get("missing", "0"))
        start = int(request.query.get("start", "600000000000"))
    except ValueError:
        return _json({"error": "n, missing and start must be integers"}, status=400)
    if not (0 <= count <= MAX_LISTED_IDS and 0 <= missing <= MAX_LISTED_IDS):
        return _json({"error": f"n and missing must be within 0..{MAX_LISTED_IDS}"}, status=400)
    offer_ids = catalogue.offer_ids(count, start)
    return _json({"offer_ids": offer_ids, "missing_ids": catalogue.missing_ids(missing, start),
                  "open_offer_ids": [open_ids.encrypt(catalogue.seed, offer_id) for offer_id in offer_ids]})


async def _sellers(request: web.Request) -> web.Response:
    discovery = request.app[GATEWAY].discovery
    limit = discovery.catalogue.seller_count
    try:
        count = int(request.query.get("n", "10"))
    except ValueError:
        return _json({"error": "n must be an integer"}, status=400)
    if not 0 <= count <= limit:
        return _json({"error": f"n must be within 0..{limit}"}, status=400)
    return _json({"sellers": discovery.sellers(count)})


def _quota(gateway: Gateway) -> dict[str, Any]:
    return {"qps": gateway.quota.qps, "window": gateway.quota.window, "seconds": gateway.quota.seconds()}


async def _get_quota(request: web.Request) -> web.Response:
    return _json(_quota(request.app[GATEWAY]))


async def _set_quota(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    try:
        options = json.loads(await request.read())
        if not isinstance(options, dict):
            raise ValueError("the body must be a JSON object")
        qps = options.get("qps", gateway.quota.qps)
        if isinstance(qps, bool) or not isinstance(qps, int):
            raise ValueError("qps must be a whole number")
        window = options.get("window")
        if window is not None and not isinstance(window, str):
            raise ValueError("window must be a string")
        gateway.quota.set(qps, window)
    except ValueError as exc:  # includes invalid JSON
        return _json({"error": str(exc)}, status=400)
    log.info("quota set to %s calls/s (%s)", gateway.quota.qps, gateway.quota.window)
    return _json(_quota(gateway))


async def _get_epoch(request: web.Request) -> web.Response:
    return _json({"epoch": request.app[GATEWAY].epoch})


async def _set_epoch(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    options: Any = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError:
                return _json({"error": "the body must be a JSON object"}, status=400)
    if not isinstance(options, dict):
        return _json({"error": "the body must be a JSON object"}, status=400)
    epoch = options.get("epoch")
    if epoch is None:
        epoch = gateway.epoch + 1
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        return _json({"error": f"epoch must be an integer within 0..{MAX_EPOCH}"}, status=400)
    gateway.set_epoch(epoch)
    log.info("catalogue epoch %d", epoch)
    return _json({"epoch": epoch})


def create_app(config: SandboxConfig | None = None) -> web.Application:
    """The emulator as an aiohttp application (run it with ``python -m ali1688spider.sandbox``)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[GATEWAY] = Gateway(config or SandboxConfig())
    app.router.add_route("*", "/openapi", _openapi)
    app.router.add_route("*", "/openapi/{tail:.*}", _openapi)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    app.router.add_post("/_sandbox/faults", _add_faults)
    app.router.add_get("/_sandbox/faults", _pending_faults)
    app.router.add_get("/_sandbox/authorize", _authorize)
    app.router.add_post("/_sandbox/revoke", _revoke)
    app.router.add_get("/_sandbox/offers", _offers)
    app.router.add_get("/_sandbox/sellers", _sellers)
    app.router.add_get("/_sandbox/quota", _get_quota)
    app.router.add_post("/_sandbox/quota", _set_quota)
    app.router.add_get("/_sandbox/epoch", _get_epoch)
    app.router.add_post("/_sandbox/epoch", _set_epoch)
    return app
