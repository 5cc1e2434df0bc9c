"""The emulator's HTTP side (aiohttp): the gateway under ``/openapi`` and the test controls
under ``/_sandbox``.

``/openapi/{protocol}/{version}/{namespace}/{apiName}/{appKey}`` (any method): parameters from
the query string and the ``application/x-www-form-urlencoded`` (or multipart) body, merged, the
body winning; see :mod:`.gateway` for what is answered: the product APIs (:mod:`.views`), the
discovery APIs, keyword, shop and image search and the image upload (:mod:`.search`), the relation
APIs that follow offers (:mod:`.follows`) and the replay APIs of the message service
(:mod:`.replay`). A body may be up to ``MAX_BODY`` bytes, room for an image of
``search.IMAGE_MAX_BYTES`` as form-encoded base64. Messages about followed offers are pushed to
the ``callback_url`` (:mod:`.push`).

Controls (JSON):

- ``GET  /_sandbox/stats`` — counters (:mod:`.stats`) with quota peaks, usage and faults.
- ``POST /_sandbox/reset`` — zero stats, push counters, quota counters, usage and the fault script.
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
  (:mod:`.catalogue`); ``reset`` leaves the epoch alone. A move forward makes the messages of the
  followed offers that drift on the way (:mod:`.messages`): the reply comes once they are made and
  planned for delivery (or listed for replay), or after ``EPOCH_WAIT`` seconds at most (enough
  for some 15,000 followed offers per epoch step at a 30 % drift share; ``backlog`` in
  ``GET /_sandbox/push`` then tells what is left); the gateway keeps answering meanwhile.
- ``GET  /_sandbox/follows`` — ``{"count": N, "offer_ids": [...]}``: the followed offers (the first
  100,000 ids, ascending). ``POST`` ``{"offer_ids": [id, …]}`` follows them all at once (ids as
  numbers or digit strings; no quota, usage or fault), ``{"offer_ids": […], "unfollow": true}``
  stops following them; the reply is ``{"count": N, "changed": k, "unknown": u}`` (``u`` ids that
  name no offer were skipped). ``reset`` keeps the followed offers.
- ``POST /_sandbox/messages`` ``{"type": "…", "data": {…}, "msgId": 123, "userInfo": "b2b-…"}``
  (``msgId`` and ``userInfo`` optional) — make one message of any topic and deliver it like the
  others; the reply ``{"msgId": …}`` comes once it is planned for delivery (or listed for replay).
- ``GET  /_sandbox/push`` — one object: the push settings under their config names
  (``callback_url``, ``push_delay_ms``, ``push_jitter_ms``, ``push_duplicate``, ``push_fail``,
  ``push_retry_seconds``, ``push_attempts``, ``push_timeout_seconds``) and the counters beside them
  (as ``push`` in the stats). ``POST`` ``{"callback_url": "http://…"}`` pushes there from the next
  attempt on (``""``: nowhere; later messages are then listed for replay at once); the reply is the
  ``GET`` one.

The stats' ``push`` counters (:class:`~.stats.PushStats`): ``made``, ``delivered``, ``attempts``,
``failed_attempts``, ``duplicates``, ``exhausted``, ``unsent``, ``confirmed``, ``dropped``, and the
gauges ``pending_replay`` (listed for the replay APIs), ``backlog`` (followed ids still to examine
for messages), ``planned`` and ``sending``. ``reset`` zeroes the counters, not the listed messages.

The pusher (:mod:`.push`) runs in the app's event loop from its startup to its cleanup.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from . import open_ids
from .catalogue import MAX_EPOCH
from .config import SandboxConfig
from .faults import parse_script
from .follows import as_number
from .gateway import Gateway
from .push import Pusher

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
PUSHER: web.AppKey[Pusher] = web.AppKey("pusher", Pusher)
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_BODY = 8 * 1024 * 1024  # a 3 MiB image is 4 MiB of base64, more once form-encoded
MAX_LISTED_IDS = 100_000
EPOCH_WAIT = 5.0  # seconds an epoch move's reply waits for its messages to be made

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


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when there is none); ``ValueError`` otherwise."""
    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        return {}
    try:
        options = json.loads(raw)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise ValueError("the body must be a JSON object")
    return options


async def _stats(request: web.Request) -> web.Response:
    data = request.app[GATEWAY].snapshot()
    data["push"] = request.app[PUSHER].counters()
    return _json(data)


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
    try:
        options = await _json_object(request)
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    epoch = options.get("epoch")
    if epoch is None:
        epoch = gateway.epoch + 1
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        return _json({"error": f"epoch must be an integer within 0..{MAX_EPOCH}"}, status=400)
    gateway.set_epoch(epoch)
    log.info("catalogue epoch %d", epoch)
    pusher = request.app[PUSHER]
    pusher.wake()
    await pusher.caught_up(EPOCH_WAIT)  # the messages of the move are made: a test can look for them now
    return _json({"epoch": epoch})


async def _get_follows(request: web.Request) -> web.Response:
    follows = request.app[GATEWAY].follows
    return _json({"count": len(follows), "offer_ids": follows.ids(MAX_LISTED_IDS)})


async def _set_follows(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    try:
        options = await _json_object(request)
        values = options.get("offer_ids")
        if not isinstance(values, list):
            raise ValueError('expected {"offer_ids": [id, ...]} (and "unfollow": true to unfollow)')
        numbers = [as_number(value) for value in values]
        if any(number is None for number in numbers):
            raise ValueError("offer_ids must be numbers or strings of digits")
    except ValueError as exc:  # includes a body that is no JSON object
        return _json({"error": str(exc)}, status=400)
    known = [number for number in numbers if number is not None and gateway.catalogue.exists(number)]
    if options.get("unfollow") is True:
        changed = gateway.follows.unfollow(known)
    else:
        changed = gateway.follows.follow(known)
    return _json({"count": len(gateway.follows), "changed": changed, "unknown": len(numbers) - len(known)})


async def _add_message(request: web.Request) -> web.Response:
    gateway, pusher = request.app[GATEWAY], request.app[PUSHER]
    try:
        options = await _json_object(request)
        topic, msg_id, user_info = options.get("type"), options.get("msgId"), options.get("userInfo")
        if not isinstance(topic, str) or not topic:
            raise ValueError("type must be a non-empty string")
        if msg_id is not None and (as_number(msg_id) is None or not 0 < int(msg_id) < 2**63):
            raise ValueError("msgId must be a positive number or a string of digits")
        if user_info is not None and not isinstance(user_info, str):
            raise ValueError("userInfo must be a string")
    except ValueError as exc:  # includes invalid JSON
        return _json({"error": str(exc)}, status=400)
    message = gateway.messages.custom(topic, options.get("data", {}), int(time.time() * 1000), msg_id, user_info)
    pusher.wake()
    await pusher.caught_up(EPOCH_WAIT)  # behind the messages of a large epoch move, not for ever
    return _json({"msgId": message.envelope["msgId"]})


async def _get_push(request: web.Request) -> web.Response:
    return _json(request.app[PUSHER].settings())


async def _set_push(request: web.Request) -> web.Response:
    pusher = request.app[PUSHER]
    try:
        options = await _json_object(request)
        url = options.get("callback_url")
        if not isinstance(url, str):
            raise ValueError('expected {"callback_url": "http://..."} ("" to push nowhere)')
        pusher.set_callback(url)
    except ValueError as exc:  # includes invalid JSON and a malformed URL
        return _json({"error": str(exc)}, status=400)
    log.info("push callback URL %s", "set" if url else "cleared")  # not logged: it may hold a token
    return _json(pusher.settings())


async def _run_pusher(app: web.Application) -> AsyncIterator[None]:
    """The pusher's life: from the app's startup to its cleanup."""
    pusher = app[PUSHER]
    await pusher.start()
    yield
    await pusher.stop()


def create_app(config: SandboxConfig | None = None) -> web.Application:
    """The emulator as an aiohttp application (run it with ``python -m ali1688spider.sandbox``)."""
    app = web.Application(client_max_size=MAX_BODY)
    gateway = Gateway(config or SandboxConfig())
    app[GATEWAY] = gateway
    app[PUSHER] = Pusher(gateway)
    app.cleanup_ctx.append(_run_pusher)
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
    app.router.add_get("/_sandbox/follows", _get_follows)
    app.router.add_post("/_sandbox/follows", _set_follows)
    app.router.add_post("/_sandbox/messages", _add_message)
    app.router.add_get("/_sandbox/push", _get_push)
    app.router.add_post("/_sandbox/push", _set_push)
    return app
