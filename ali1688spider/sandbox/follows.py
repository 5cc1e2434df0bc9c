"""The follow / relation APIs (PROTOCOL.md §8.6) and the registry of followed offers they fill.

The emulator has one authorised member, hence one registry: a set of offer ids. Messages are made
only for the offers in it (:mod:`.messages`). Which API creates which relation on the platform is
not documented, so here every "add" API follows and every "remove" API unfollows (chosen,
unverified). Version 1, protocol ``param2`` or ``param``; every answer is HTTP 200:

- ``com.alibaba.product:alibaba.product.follow`` and ``…:alibaba.product.follow.crossborder``:
  ``productId`` → follows, ``{"code":0,"message":"success"}``; an id that names no offer of the
  catalogue: ``{"code":1,"message":"商品不存在"}`` (the code and text are chosen, unverified).
- ``com.alibaba.product:alibaba.product.unfollow.crossborder``: ``productId`` → unfollows (an
  offer that was not followed: success too), the same answers.
- ``com.alibaba.fenxiao.crossborder:product.kjdistribute.addRelation`` / ``removeRelation``:
  ``offerId`` → ``{"result":{"success":true,"msg":"success","traceId":"<30 hex>"}}``;
  no such offer: ``{"result":{"success":false,"msg":"商品不存在","traceId":…}}``;
  ``removeRelation`` adds ``"model":[]`` to both. ``addRelation`` needs no
  access token (:data:`TOKEN_FREE_APIS`; a given one is not checked).
- ``com.alibaba.product.push:alibaba.cross.syncProductListPushed``: ``productIdList``, a JSON list
  of ids (numbers or digit strings), at most :data:`MAX_PRODUCT_IDS` → follows those that name an
  offer and ignores the others (kept simple, unverified), ``{"result":{"success":true}}``. The
  failures are the API's own, never a gateway error: an empty or missing list →
  ``{"result":{"success":false,"errorCode":"OFFERIDS_IS_NULL","errorMsg":"productIdList is
  empty"}}``; too many ids, no JSON list, or an entry that is no id → the same shape with
  ``PARAM_ERROR``.
- ``com.alibaba.fenxiao:alibaba.fenxiao.relationadd``: ``offerId`` →
  ``{"result":{"success":true,"code":"200","message":"success","result":true}}``; no such offer:
  ``{"result":{"success":false,"code":"OFFER_NOT_EXIST","message":"商品不存在","result":false}}``.

A missing or non-numeric ``productId`` / ``offerId`` is a ``gw.ParamMissing`` (400), as for the
product APIs; a number that is no existing 9-15 digit offer id gets the "商品不存在" answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .catalogue import Catalogue
from .views import NOT_FOUND_MESSAGE, dumps

FOLLOW = "follow"
FOLLOW_CROSSBORDER = "follow.crossborder"
UNFOLLOW = "unfollow.crossborder"
ADD_RELATION = "kjdistribute.addRelation"
REMOVE_RELATION = "kjdistribute.removeRelation"
SYNC_PUSHED = "syncProductListPushed"
RELATION_ADD = "fenxiao.relationadd"
#: (namespace, apiName) of the relation APIs → the short name used here.
FOLLOW_APIS = {
    ("com.alibaba.product", "alibaba.product.follow"): FOLLOW,
    ("com.alibaba.product", "alibaba.product.follow.crossborder"): FOLLOW_CROSSBORDER,
    ("com.alibaba.product", "alibaba.product.unfollow.crossborder"): UNFOLLOW,
    ("com.alibaba.fenxiao.crossborder", "product.kjdistribute.addRelation"): ADD_RELATION,
    ("com.alibaba.fenxiao.crossborder", "product.kjdistribute.removeRelation"): REMOVE_RELATION,
    ("com.alibaba.product.push", "alibaba.cross.syncProductListPushed"): SYNC_PUSHED,
    ("com.alibaba.fenxiao", "alibaba.fenxiao.relationadd"): RELATION_ADD,
}
#: The relation APIs documented as needing no user token.
TOKEN_FREE_APIS = frozenset({("com.alibaba.fenxiao.crossborder", "product.kjdistribute.addRelation")})

MAX_PRODUCT_IDS = 20  # syncProductListPushed takes at most this many ids
IDS_NULL = "OFFERIDS_IS_NULL"
PARAM_ERROR = "PARAM_ERROR"
OFFER_NOT_EXIST = "OFFER_NOT_EXIST"
_ID_PARAM = {FOLLOW: "productId", FOLLOW_CROSSBORDER: "productId", UNFOLLOW: "productId",
             ADD_RELATION: "offerId", REMOVE_RELATION: "offerId", RELATION_ADD: "offerId"}
_REMOVING = frozenset({UNFOLLOW, REMOVE_RELATION})
_LONGEST_ID = 18  # digits; longer numbers are served as a missing offer (and int() stays cheap)


@dataclass(frozen=True)
class FollowRequest:
    """What one relation call asks: its API, the offer ids (0 for a number that cannot be an id)
    and, for ``syncProductListPushed``, the business failure its list already earns."""

    api: str
    offer_ids: tuple[int, ...]
    problem: tuple[str, str] | None = None  # (errorCode, errorMsg)


def parse(api: str, params: Mapping[str, str]) -> FollowRequest | str:
    """The request of a relation call, or the message of a ``gw.ParamMissing``."""
    if api == SYNC_PUSHED:
        return _id_list(params.get("productIdList"))
    label = _ID_PARAM[api]
    value = params.get(label)
    if not value:
        return f"{label} is required"
    if not value.isascii() or not value.isdigit():
        return f"{label} must be a number"
    return FollowRequest(api, (int(value) if len(value) <= _LONGEST_ID else 0,))


def _id_list(raw: str | None) -> FollowRequest:
    """``syncProductListPushed``'s list: its ids, or the failure it is answered with."""
    if raw is None or not raw.strip():
        return FollowRequest(SYNC_PUSHED, (), (IDS_NULL, "productIdList is empty"))
    try:
        values = json.loads(raw)
    except ValueError:
        values = None
    if not isinstance(values, list):
        return FollowRequest(SYNC_PUSHED, (), (PARAM_ERROR, "productIdList must be a JSON list"))
    if not values:
        return FollowRequest(SYNC_PUSHED, (), (IDS_NULL, "productIdList is empty"))
    if len(values) > MAX_PRODUCT_IDS:
        return FollowRequest(SYNC_PUSHED, (), (PARAM_ERROR, f"productIdList holds more than {MAX_PRODUCT_IDS} ids"))
    ids = [as_number(value) for value in values]
    if any(number is None for number in ids):
        return FollowRequest(SYNC_PUSHED, (), (PARAM_ERROR, "productIdList entries must be offer ids"))
    return FollowRequest(SYNC_PUSHED, tuple(number or 0 for number in ids))


def as_number(value: Any) -> int | None:
    """A JSON value naming an offer (a number or a string of digits) as a number (0 when too long
    for an id), or ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value)
    if not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text) <= _LONGEST_ID else 0


class Follows:
    """The followed offer ids, and the relation APIs' answers that change them."""

    def __init__(self, seed: int) -> None:
        self._ids: set[int] = set()
        self._trace_rng = random.Random(f"{seed}:trace-ids")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, offer_id: object) -> bool:
        return offer_id in self._ids

    def ids(self, limit: int | None = None) -> list[int]:
        """The followed ids in ascending order (the first ``limit`` of them)."""
        ordered = sorted(self._ids)
        return ordered if limit is None else ordered[:limit]

    def follow(self, offer_ids: Iterable[int]) -> int:
        """Follow these ids (the caller checked they name offers); how many were new."""
        before = len(self._ids)
        self._ids.update(offer_ids)
        return len(self._ids) - before

    def unfollow(self, offer_ids: Iterable[int]) -> int:
        """Stop following these ids; how many were followed."""
        before = len(self._ids)
        self._ids.difference_update(offer_ids)
        return before - len(self._ids)

    # -- the APIs ----------------------------------------------------------------------------

    def answer(self, request: FollowRequest, catalogue: Catalogue) -> tuple[bytes, bool]:
        """``(body, success)`` of a relation call, the registry changed when it succeeds."""
        api = request.api
        if api == SYNC_PUSHED:
            if request.problem is not None:
                code, message = request.problem
                return dumps({"result": {"success": False, "errorCode": code, "errorMsg": message}}), False
            self.follow(offer_id for offer_id in request.offer_ids if catalogue.exists(offer_id))
            return dumps({"result": {"success": True}}), True
        (offer_id,) = request.offer_ids
        if not catalogue.exists(offer_id):
            return dumps(self._failure(api)), False
        if api in _REMOVING:
            self.unfollow((offer_id,))
        else:
            self.follow((offer_id,))
        return dumps(self._success(api)), True

    def not_found(self, api: str) -> bytes:
        """A single-offer API's "no such offer" answer (also its answer under the ``gone`` fault;
        ``syncProductListPushed`` answers normally under it)."""
        return dumps(self._failure(api))

    def _success(self, api: str) -> dict[str, Any]:
        if api in (ADD_RELATION, REMOVE_RELATION):
            result: dict[str, Any] = {"success": True, "msg": "success", "traceId": self._trace_id()}
            if api == REMOVE_RELATION:
                result["model"] = []
            return {"result": result}
        if api == RELATION_ADD:
            return {"result": {"success": True, "code": "200", "message": "success", "result": True}}
        return {"code": 0, "message": "success"}

    def _failure(self, api: str) -> dict[str, Any]:
        if api in (ADD_RELATION, REMOVE_RELATION):
            result: dict[str, Any] = {"success": False, "msg": NOT_FOUND_MESSAGE, "traceId": self._trace_id()}
            if api == REMOVE_RELATION:
                result["model"] = []
            return {"result": result}
        if api == RELATION_ADD:
            return {"result": {"success": False, "code": OFFER_NOT_EXIST, "message": NOT_FOUND_MESSAGE,
                               "result": False}}
        return {"code": 1, "message": NOT_FOUND_MESSAGE}

    def _trace_id(self) -> str:
        return f"{self._trace_rng.getrandbits(120):030x}"
