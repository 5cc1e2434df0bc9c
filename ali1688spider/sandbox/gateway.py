"""The gateway's decision for one ``/openapi`` call, free of HTTP details.

Path: ``{protocol}/{version}/{namespace}/{apiName}/{appKey}``. Checks run in this order
(PROTOCOL.md §4); the first that fails answers:

1. app key: none in the path → ``gw.AppKeyMissing``; not ours → ``gw.AppKeyNotFound`` (400).
   The token endpoint (``system.oauth2``) is answered here, without a signature (:mod:`.oauth`).
2. signature: no ``_aop_signature`` → ``gw.SignatureMissing``; wrong → ``gw.SignatureInvalid``
   (400). A present ``_aop_timestamp`` that is not 13 digits (or, with ``max_timestamp_skew``,
   too far off the clock) is a ``gw.SignatureInvalid`` too; a missing one is accepted.
3. quota: more than ``qps`` calls of the app key arrived this calendar second (or, with
   ``quota_window="sliding"``, ``qps`` were admitted in the last second) →
   ``gw.QosAppFrequencyLimit`` (400). The quota can change while the emulator runs.
4. token: missing, unknown or expired ``access_token`` → 401 ``"401"``; not checked at all for
   the APIs that need none (``product.kjdistribute.addRelation`` and the replay APIs).
5. ACL: the API is in ``deny_apis`` → ``gw.APIACLDecline`` (400).
6. API: not one of the four product APIs of §5, the four discovery APIs of §7
   (``product.search.keywordQuery``, ``product.search.querySellerOfferList``,
   ``product.image.upload``, ``product.search.imageQuery``), the seven relation APIs of §8.6
   (:mod:`.follows`) or the three replay APIs of §8.4 (:mod:`.replay`); version 1, protocol
   ``param2`` or ``param`` → ``gw.APIUnsupported`` (400).
7. parameters: ``productID`` / ``offerDetailParam`` (a JSON object with ``offerId``) /
   ``offerId`` (fenxiao.info: or ``openOfferId``) missing or not a number → ``gw.ParamMissing``
   (400). A number that is no existing 9-15 digit offer id, or an ``openOfferId`` the emulator
   did not make, is served: the API's own "商品不存在" business failure. The discovery APIs:
   ``offerQueryParam`` (``uploadImageParam``) missing or not a JSON object → ``gw.ParamMissing``;
   what is wrong inside it is served as a ``PARAM_ERROR`` business failure (:mod:`.search`).
   The relation APIs: ``productId`` / ``offerId`` missing or not a number → ``gw.ParamMissing``
   (``syncProductListPushed``'s list is always served). The replay APIs: a paging number or time
   that is malformed or out of range, or a ``msgIdList`` that is no JSON list → ``gw.ParamMissing``.
8. usage: ``usage_limit`` calls were already served → ``gw.NoUsageLeftError`` (400); every call
   that gets past this check uses one unit, faulted or not.
9. faults: the script, then the random rates (:mod:`.faults`).
10. the product at the current catalogue epoch (HTTP 200, cached body) or the business failure;
    for a discovery API the page of hits (their values those of the offers at that epoch), the
    image id, or the API's business failure (HTTP 200 too); for a relation API its answer, the
    followed offers changed; for a replay API the failed messages (or the confirmation).

Moving the epoch forward (:meth:`Gateway.set_epoch`) queues the messages of the followed offers
that drift on the way (:mod:`.messages`); the pusher (:mod:`.push`) makes and delivers them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import follows, oauth, open_ids, replay, search
from .catalogue import Catalogue, check_epoch
from .config import SandboxConfig
from .faults import Faults
from .messages import MessageMaker
from .quota import Quota
from .replies import Reply, RequestIds, gateway_error, unauthorized
from .signature import SIGNATURE, signature_matches, timestamp_problem
from .stats import PushStats, Stats
from .tokens import CHINA, TokenRegistry
from .views import CROSSBORDER, FENXIAO, FENXIAO_INFO, PRODUCT_GET, ProductBodies

#: (namespace, apiName) of the product APIs → the short name used by :mod:`.views`.
PRODUCT_APIS = {
    ("com.alibaba.product", "alibaba.product.get"): PRODUCT_GET,
    ("com.alibaba.fenxiao.crossborder", "product.search.queryProductDetail"): CROSSBORDER,
    ("com.alibaba.fenxiao", "alibaba.fenxiao.productInfo.get"): FENXIAO,
    ("com.alibaba.fenxiao", "alibaba.fenxiao.product.info.get"): FENXIAO_INFO,
}
API_PROTOCOLS = frozenset({"param2", "param"})
TOKEN_PROTOCOLS = frozenset({"http", "param2"})
_ID_PARAM = {PRODUCT_GET: "productID", FENXIAO: "offerId", FENXIAO_INFO: "offerId"}
#: (namespace, apiName) of the APIs that need no access token (a given one is not checked).
TOKEN_FREE_APIS = follows.TOKEN_FREE_APIS | replay.TOKEN_FREE_APIS
UNKNOWN_API = "?"

#: What a served call answers, and what it answers for the ``gone`` fault (``None``: the answer).
Answers = tuple[Callable[[], Reply], Callable[[], Reply] | None]


class Gateway:
    """All state of one emulator: tokens, quota, usage, faults, stats, the catalogue, the followed
    offers and the messages (made, and failed ones for replay)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.catalogue = Catalogue(config.seed, drift_share=config.drift_share)
        self.epoch_set_at: dict[int, datetime] = {}  # when each epoch was first set here (views.dated)
        self.bodies = ProductBodies(self.catalogue, epoch_set_at=self.epoch_set_at)
        self.discovery = search.Discovery(self.catalogue, epoch_set_at=self.epoch_set_at)  # index: on first search
        self.tokens = TokenRegistry(config)
        self.quota = Quota(config.qps, window=config.quota_window)
        self.faults = Faults(config)
        self.stats = Stats()
        self.request_id = RequestIds()
        self.usage = 0
        self.epoch = config.epoch  # of the catalogue; not changed by reset()
        self._denied = frozenset(config.deny_apis)
        self._latency_rng = random.Random(f"{config.seed}:latency")
        self.push_stats = PushStats()
        self.follows = follows.Follows(config.seed)  # kept by reset(), like the epoch
        self.messages = MessageMaker(self.catalogue, self.push_stats)
        self.replay = replay.Replay(config.app_key, self.push_stats)  # kept by reset()

    def latency(self) -> float:
        """Seconds to hold the next /openapi reply: ``latency_ms``, plus an exponentially
        distributed extra of mean ``latency_jitter_ms`` (seeded, so runs repeat)."""
        seconds = self.config.latency_ms / 1000
        if self.config.latency_jitter_ms:
            seconds += self._latency_rng.expovariate(1000 / self.config.latency_jitter_ms)
        return seconds

    def set_epoch(self, epoch: int) -> None:
        """Serve the catalogue at ``epoch`` from the next call on (``ValueError`` if out of range).
        Moving forward queues the messages of the followed offers that drift on the way."""
        check_epoch(epoch)
        if epoch != self.epoch:  # the offers that drift in it are dated now (views.dated), once
            self.epoch_set_at.setdefault(epoch, datetime.now(CHINA).replace(tzinfo=None, microsecond=0))
        if epoch > self.epoch and len(self.follows):
            self.messages.queue_moves(self.epoch, epoch, self.follows.ids(), int(time.time() * 1000))
        self.epoch = epoch

    def reset(self) -> None:
        """Zero the stats, the push counters, the quota counters, the usage count and the fault
        script (the followed offers and the messages listed for replay stay)."""
        self.stats.reset()
        self.push_stats.reset()
        self.quota.reset()
        self.faults.reset()
        self.usage = 0

    def snapshot(self) -> dict[str, Any]:
        extra: dict[str, Any] = dict(self.quota.peaks())
        extra["usage"] = self.usage
        extra["epoch"] = self.epoch
        extra["faults"] = dict(self.faults.injected)
        extra["pending_faults"] = len(self.faults.pending())
        extra["config"] = self.config.public_summary()
        extra["follows"] = len(self.follows)
        extra["push"] = self.push_snapshot()
        return self.stats.snapshot(extra)

    def push_snapshot(self) -> dict[str, int]:
        """The push counters, the messages listed for replay and the followed ids still to examine."""
        return self.push_stats.snapshot({"pending_replay": len(self.replay), "backlog": self.messages.backlog})

    # -- one call ---------------------------------------------------------------------------

    def answer(self, tail: str, params: dict[str, str]) -> Reply:
        """Answer one call to ``/openapi/{tail}`` with the merged query and form ``params``."""
        segments = tail.strip("/").split("/")
        name = segments[3] if len(segments) >= 4 else UNKNOWN_API
        api_call = False
        if len(segments) == 4 or (len(segments) == 5 and not segments[4]):
            reply = gateway_error(400, "gw.AppKeyMissing", "appKey is missing from the request path",
                                  self.request_id())
        elif len(segments) != 5:
            reply = gateway_error(400, "gw.APIUnsupported", "expected /openapi/{protocol}/{version}/"
                                  "{namespace}/{apiName}/{appKey}", self.request_id())
        elif segments[4] != self.config.app_key:
            reply = gateway_error(400, "gw.AppKeyNotFound", "appKey is not found", self.request_id())
        elif segments[2] == oauth.TOKEN_NAMESPACE and name in (oauth.GET_TOKEN, oauth.POSTPONE_TOKEN):
            reply = self._token_call(segments, params)
        else:
            api_call = True
            reply = self._api_call(segments, "/".join(segments), params)
        self.stats.count(name, reply.outcome, api_call=api_call)
        return reply

    def _token_call(self, segments: list[str], params: dict[str, str]) -> Reply:
        protocol, version, _, name, _ = segments
        request_id = self.request_id()
        if protocol not in TOKEN_PROTOCOLS or version != "1":
            return gateway_error(400, "gw.APIUnsupported", f"{protocol}/{version} is not supported here", request_id)
        fault = self.faults.pick(name, token_endpoint=True)
        if fault is not None:
            return self.faults.render(fault, request_id, lambda: self._grant(name, params, request_id))
        return self._grant(name, params, request_id)

    def _grant(self, name: str, params: dict[str, str], request_id: str) -> Reply:
        if name == oauth.GET_TOKEN:
            reply = oauth.get_token(params, self.config, self.tokens)
            if reply.outcome == "ok":
                self.stats.token_grants += 1
        else:
            reply = oauth.postpone_token(params, self.config, self.tokens, request_id)
            if reply.outcome == "ok":
                self.stats.token_postpones += 1
        return reply

    def _api_call(self, segments: list[str], url_path: str, params: dict[str, str]) -> Reply:
        protocol, version, namespace, name, app_key = segments
        request_id = self.request_id()
        if not params.get(SIGNATURE):
            return gateway_error(400, "gw.SignatureMissing", "_aop_signature is missing", request_id)
        if not signature_matches(url_path, params, self.config.app_secret):
            return gateway_error(400, "gw.SignatureInvalid", "signature is invalid", request_id)
        problem = timestamp_problem(params, int(time.time() * 1000), self.config.max_timestamp_skew)
        if problem is not None:
            return gateway_error(400, "gw.SignatureInvalid", problem, request_id)

        self.stats.arrivals += 1
        if not self.quota.arrive(app_key):
            self.stats.throttled += 1
            return gateway_error(400, "gw.QosAppFrequencyLimit",
                                 f"app flow control: more than {self.quota.qps} calls per second", request_id)
        needs_token = (namespace, name) not in TOKEN_FREE_APIS
        if needs_token and self.tokens.access_problem(params.get("access_token")) is not None:
            return unauthorized(request_id)
        if name in self._denied or f"{namespace}:{name}" in self._denied:
            return gateway_error(400, "gw.APIACLDecline", f"API {namespace}:{name} is not granted to this app",
                                 request_id)
        answers: Answers | str | None = None
        if version == "1" and protocol in API_PROTOCOLS:
            if (namespace, name) in PRODUCT_APIS:
                answers = self._product_answers(PRODUCT_APIS[namespace, name], params)
            elif (namespace, name) in search.SEARCH_APIS:
                answers = self._search_answers(search.SEARCH_APIS[namespace, name], params)
            elif (namespace, name) in follows.FOLLOW_APIS:
                answers = self._follow_answers(follows.FOLLOW_APIS[namespace, name], params)
            elif (namespace, name) in replay.REPLAY_APIS:
                answers = self._replay_answers(replay.REPLAY_APIS[namespace, name], params)
        if answers is None:
            return gateway_error(400, "gw.APIUnsupported",
                                 f"API {protocol}/{version}/{namespace}:{name} is not supported", request_id)
        if isinstance(answers, str):
            return gateway_error(400, "gw.ParamMissing", answers, request_id)
        if self.config.usage_limit and self.usage >= self.config.usage_limit:
            return gateway_error(400, "gw.NoUsageLeftError", "the app has no paid usage left", request_id)
        self.usage += 1
        answer, gone = answers
        fault = self.faults.pick(name, token_endpoint=False)
        if fault is not None:
            return self.faults.render(fault, request_id, answer, gone)
        return answer()

    def _product_answers(self, api: str, params: dict[str, str]) -> Answers | str:
        """The product (or "商品不存在") and the offer-gone reply of a product API call, or the
        message of a ``gw.ParamMissing``."""
        target = self._offer_param(api, params)
        if isinstance(target, str):
            return target
        offer_id, country, currency, open_id = target

        def product() -> Reply:
            body, found = self.bodies.body(api, offer_id, country, self.epoch, currency, open_id)
            return Reply(200, body, "ok" if found else "business_failure")

        def gone() -> Reply:
            return Reply(200, self.bodies.not_found(api, offer_id), "business_failure")

        return product, gone

    def _search_answers(self, api: str, params: dict[str, str]) -> Answers | str:
        """The page (or the API's business failure) of a discovery API call and its reply when the
        shop or image is gone (:mod:`.search`), or the message of a ``gw.ParamMissing``."""
        query = search.query_param(api, params)
        if isinstance(query, str):
            return query

        def page() -> Reply:
            body, success = self.discovery.answer(api, query, self.epoch)
            return Reply(200, body, "ok" if success else "business_failure")

        missing = search.missing_body(api)
        if missing is None:
            return page, None
        return page, lambda: Reply(200, missing, "business_failure")

    def _follow_answers(self, api: str, params: dict[str, str]) -> Answers | str:
        """The answer of a relation API call (the followed offers change only when it is served:
        not under a fault that replaces it) and its "no such offer" answer, or the message of a
        ``gw.ParamMissing``."""
        request = follows.parse(api, params)
        if isinstance(request, str):
            return request

        def served() -> Reply:
            body, success = self.follows.answer(request, self.catalogue)
            return Reply(200, body, "ok" if success else "business_failure")

        def gone() -> Reply:
            return Reply(200, self.follows.not_found(api), "business_failure")

        return served, (None if api == follows.SYNC_PUSHED else gone)  # a list of offers has none to lose

    def _replay_answers(self, api: str, params: dict[str, str]) -> Answers | str:
        """The answer of a replay API call (a cursor confirms what it returns only when served),
        or the message of a ``gw.ParamMissing``."""
        request = replay.parse(api, params)
        if isinstance(request, str):
            return request
        return (lambda: Reply(200, self.replay.answer(request), "ok")), None

    def _offer_param(self, api: str, params: dict[str, str]) -> tuple[int, str, str, str] | str:
        """``(offer id, country, currency, openOfferId)``, or the message of a ``gw.ParamMissing``.
        An ``openOfferId`` (fenxiao.info, instead of ``offerId``) that is not one of the
        catalogue's names no offer: the "商品不存在" failure."""
        if api == FENXIAO_INFO and not params.get("offerId") and params.get("openOfferId"):
            open_id = params["openOfferId"]
            return open_ids.decrypt(self.config.seed, open_id) or 0, "", "", open_id
        if api == CROSSBORDER:
            raw = params.get("offerDetailParam")
            if not raw:
                return "offerDetailParam is required"
            try:
                detail = json.loads(raw)
            except ValueError:
                return "offerDetailParam must be a JSON object"
            if not isinstance(detail, dict) or detail.get("offerId") in (None, ""):
                return "offerDetailParam.offerId is required"
            value, country = detail["offerId"], detail.get("country") or "en"
            currency = detail.get("currency") or ""
            if not isinstance(country, str):
                return "offerDetailParam.country must be a string"
            if not isinstance(currency, str) or len(currency) > 8:
                return "offerDetailParam.currency must be a currency code"
            label = "offerDetailParam.offerId"
        else:
            label = _ID_PARAM[api]
            value, country, currency = params.get(label), "", ""
            if not value:
                return f"{label} or openOfferId is required" if api == FENXIAO_INFO else f"{label} is required"
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return f"{label} must be a number"
        text = str(value)
        if not text.isascii() or not text.isdigit():
            return f"{label} must be a number"
        # Longer than any offer id: served as a missing offer (and int() stays cheap).
        return (int(text) if len(text) <= 18 else 0), country, currency, ""
