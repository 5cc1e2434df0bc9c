"""The 1688 message service as the app sees it (docs/PROTOCOL.md, "Change messages").

A message is one JSON object, pushed to the app's callback URL or read back from the replay APIs:
``msgId`` (a number, or its text), ``type`` (the topic), ``userInfo``, ``gmtBorn`` (epoch ms) and
a topic-specific ``data``. :func:`read_message` reads one whatever the spelling of its numbers;
:func:`what_it_means` says what a product-change topic asks of the crawler: offers to re-read,
offers gone, stock to apply at once.

A push is a form ``message=…&_aop_signature=…`` signed like a call but without the URL path:
:func:`push_signature`. Also here: the replay APIs (``push.query.messageList`` and
``push.message.confirm``) and the follow APIs, as :class:`ApiSpec` data with their answer readers.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .apis import ApiSpec, failure_fields
from .errors import BusinessFailure, InvalidOfferRef
from .refs import parse_offer_ref
from .signing import SIGNATURE_PARAM, sign_encoded
from .text import storable_text

#: The message service's times (``msgSendTime``, the replay filters) are China's (UTC+8).
CHINA = timezone(timedelta(hours=8))
MAX_IDS_PER_MESSAGE = 1000  # productIds is one comma-separated text; more is no message 1688 sends

RELATION_CHANGE = "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE"
INVENTORY_CHANGE = "PRODUCT_PRODUCT_INVENTORY_CHANGE"
PRICE_CHANGE = "FENXIAO_PRICE_CHANGE"
CURATED_PRICE_CHANGE = "PRODUCT_PFT_OFFER_PRICE_MODIFY"
#: Topics whose products are gone: marked unavailable without a call.
GONE_TOPICS = frozenset({"PRODUCT_RELATION_VIEW_PRODUCT_EXPIRE", "PRODUCT_RELATION_VIEW_PRODUCT_DELETE"})
#: Topics whose products are re-read.
REFRESH_TOPICS = frozenset({"PRODUCT_RELATION_VIEW_PRODUCT_NEW_OR_MODIFY", "PRODUCT_RELATION_VIEW_PRODUCT_REPOST"})
#: Actions of the change topic that mean the offer is off sale (deleted, or expired/delisted).
GONE_ACTIONS = frozenset({"member_delete", "member_expired"})


class MalformedMessage(ValueError):
    """Not a message: not JSON, not an object, or no ``msgId``."""


@dataclass(frozen=True)
class Message:
    msg_id: str  # the digits of msgId, whichever way it was sent
    topic: str
    data: Mapping[str, Any]
    born: datetime | None  # gmtBorn
    user_info: str | None


@dataclass(frozen=True)
class StockChange:
    """One entry of an inventory message: the offer's (and, with ``sku_id``, the SKU's) stock now."""

    offer_id: str
    offer_stock: int | None
    sku_id: str | None
    sku_stock: int | None
    at: datetime | None  # bizTime


@dataclass
class Meaning:
    """What a message asks: ``refresh`` offers to re-read (queued with ``reason``), ``gone`` offers
    to mark unavailable, ``stock`` to apply at once, ``bad_ids`` texts that are no offer id."""

    reason: str
    refresh: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    stock: list[StockChange] = field(default_factory=list)
    bad_ids: list[str] = field(default_factory=list)

    @property
    def handled(self) -> bool:
        return bool(self.refresh or self.gone or self.stock)


def push_signature(params: Mapping[str, str], app_secret: str) -> str:
    """The ``_aop_signature`` of a push: HMAC-SHA1 over the sorted ``key+value`` texts of the
    received parameters (all but the signature), with no URL path before them; upper-case hex."""
    return sign_encoded("", params, app_secret)


def push_signature_matches(params: Mapping[str, str], app_secret: str) -> bool:
    """Whether a push's ``_aop_signature`` is right (the case of its hex digits does not matter)."""
    given = params.get(SIGNATURE_PARAM, "")
    return bool(given) and hmac.compare_digest(given.upper().encode("utf-8", "replace"),
                                               push_signature(params, app_secret).encode())


def read_message(value: str | bytes | Mapping[str, Any]) -> Message:
    """A message from its JSON text (or the decoded object of a replay page)."""
    data: Any = value
    if isinstance(value, (str, bytes)):
        try:
            data = json.loads(value)
        except (ValueError, RecursionError):
            raise MalformedMessage("the message is not JSON") from None
    if not isinstance(data, Mapping):
        raise MalformedMessage("the message is not a JSON object")
    msg_id = _whole(data.get("msgId"))
    if msg_id is None:
        raise MalformedMessage("the message has no msgId")
    topic = data.get("type")
    if not isinstance(topic, str) or not topic.strip():
        # the replay APIs name the topic in two parts as well
        group, name = data.get("topicGroup"), data.get("topicName")
        topic = f"{group}_{name}" if isinstance(group, str) and isinstance(name, str) and group and name else ""
    if not topic:
        raise MalformedMessage(f"message {msg_id} has no type")
    body = data.get("data")
    if isinstance(body, str):  # a data object sent as its JSON text
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            body = {"text": body}
    user = data.get("userInfo")
    return Message(msg_id=msg_id, topic=storable_text(topic.strip())[:200],
                   data=body if isinstance(body, Mapping) else {}, born=epoch_ms(data.get("gmtBorn")),
                   user_info=storable_text(user)[:200] if isinstance(user, str) and user else None)


def what_it_means(message: Message) -> Meaning:
    """The work a message asks for. Topics this does not know ask for none (they are stored)."""
    data, topic = message.data, message.topic
    if topic == RELATION_CHANGE:
        action = str(data.get("action") or "").strip().lower()
        meaning = Meaning(reason=f"message:{topic}:{storable_text(action)[:40] or 'change'}")
        ids, meaning.bad_ids = offer_ids(data.get("productIds"))
        (meaning.gone if action in GONE_ACTIONS else meaning.refresh).extend(ids)
        return meaning
    meaning = Meaning(reason=f"message:{topic}")
    if topic in GONE_TOPICS or topic in REFRESH_TOPICS:
        ids, meaning.bad_ids = offer_ids(data.get("productIds") or data.get("productId"))
        (meaning.gone if topic in GONE_TOPICS else meaning.refresh).extend(ids)
    elif topic == PRICE_CHANGE:
        meaning.refresh, meaning.bad_ids = offer_ids(data.get("productId") or data.get("productIds"))
    elif topic == CURATED_PRICE_CHANGE:
        meaning.refresh, meaning.bad_ids = offer_ids(data.get("offerId"))
    elif topic == INVENTORY_CHANGE:
        meaning.stock, meaning.bad_ids = stock_changes(data.get("OfferInventoryChangeList")
                                                       or data.get("offerInventoryChangeList"))
        meaning.refresh = list(dict.fromkeys(change.offer_id for change in meaning.stock))
    return meaning


def offer_ids(value: object) -> tuple[list[str], list[str]]:
    """The offer ids of ``productIds`` (one comma-separated text, a number or a list), without
    repeats, and the pieces that are no offer id."""
    if isinstance(value, list):
        pieces = [str(item) for item in value if not isinstance(item, (dict, list))]
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        pieces = str(value).replace(";", ",").split(",")
    else:
        return [], []
    good: dict[str, None] = {}
    bad: list[str] = []
    for piece in pieces[:MAX_IDS_PER_MESSAGE]:
        piece = piece.strip()
        if not piece:
            continue
        try:
            if not (piece.isascii() and piece.isdigit()):  # an id, not a URL or an encrypted id
                raise InvalidOfferRef(piece)
            good[parse_offer_ref(piece)] = None
        except InvalidOfferRef:
            bad.append(storable_text(piece)[:80])
    return list(good), bad


def stock_changes(value: object) -> tuple[list[StockChange], list[str]]:
    """The entries of ``OfferInventoryChangeList``; numbers may come as text, ``bizTime`` may be
    missing. An entry without a readable offer id is a bad id."""
    changes: list[StockChange] = []
    bad: list[str] = []
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, Mapping):
            bad.append(storable_text(str(entry))[:80])
            continue
        ids, wrong = offer_ids(entry.get("offerId"))
        if len(ids) != 1:
            bad.extend(wrong or [storable_text(str(entry.get("offerId")))[:80]])
            continue
        sku = _whole(entry.get("skuId"))
        changes.append(StockChange(offer_id=ids[0], offer_stock=_count(entry.get("offerOnSale")),
                                   sku_id=sku if sku not in (None, "0") else None,
                                   sku_stock=_count(entry.get("skuOnSale")), at=epoch_ms(entry.get("bizTime"))))
    return changes, bad


def _whole(value: object) -> str | None:
    """The digits of a whole number sent as a number or as text, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 30:
            return str(int(text))
    return None


def _count(value: object) -> int | None:
    digits = _whole(value)
    return int(digits) if digits is not None and len(digits) <= 18 else None


def epoch_ms(value: object) -> datetime | None:
    """A time sent as epoch milliseconds (a number or its text), in UTC; None when it is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or not 0 < number < 10**14:
        return None
    return datetime.fromtimestamp(number / 1000, UTC)


def replay_time(moment: datetime) -> str:
    """A replay filter's time: ``yyyyMMddHHmmssSSS+0800``."""
    local = moment.astimezone(CHINA)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}+0800"


# -- the replay APIs -----------------------------------------------------------------------------

REPLAY_NAMESPACE = "cn.alibaba.open"
MAX_PAGE_SIZE = 200


def _page_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    page = reply.get("pushMessagePage")
    if isinstance(page, Mapping):
        return page
    code, message = failure_fields(reply)
    raise BusinessFailure(code or "no_page", message or "the reply has no pushMessagePage")


def _confirm_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    if reply.get("isSuccess") in (True, "true"):
        return reply
    code, message = failure_fields(reply)
    raise BusinessFailure(code or "not_confirmed", message or "the confirmation was not accepted")


MESSAGE_LIST = ApiSpec(key="messages.list", namespace=REPLAY_NAMESPACE, name="push.query.messageList",
                       needs_token=False, extract=_page_extract)
MESSAGE_CONFIRM = ApiSpec(key="messages.confirm", namespace=REPLAY_NAMESPACE, name="push.message.confirm",
                          needs_token=False, extract=_confirm_extract)


def list_params(page: int, page_size: int, since: datetime | None) -> dict[str, object]:
    params: dict[str, object] = {"page": page, "pageSize": page_size}
    if since is not None:
        params["createStartTime"] = replay_time(since)
    return params


def replay_entries(payload: Mapping[str, Any]) -> list[Any]:
    """A replay page's entries (``datas``) as sent; none when it holds no list."""
    datas = payload.get("datas")
    return list(datas) if isinstance(datas, list) else []


def confirm_params(msg_ids: list[str]) -> dict[str, object]:
    return {"msgIdList": [int(msg_id) for msg_id in msg_ids]}


# -- the follow APIs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FollowApi:
    """A way to ask 1688 for an offer's messages: the call that follows, the one that stops
    following (None: there is none), the parameter naming the offer, and how many offers one call
    takes (above 1: a JSON list)."""

    name: str
    follow: ApiSpec
    unfollow: ApiSpec | None
    param: str
    batch: int = 1

    def params(self, offer_ids: list[str]) -> dict[str, object]:
        if self.batch > 1:
            return {self.param: [int(offer_id) for offer_id in offer_ids]}
        return {self.param: int(offer_ids[0])}


def _follow_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    """The answers of the follow APIs: ``{"code":0,"message":"success"}``, or a ``result`` object
    with ``success``; a ``result`` that is itself ``false`` is a refusal too."""
    outer = reply.get("result")
    if isinstance(outer, Mapping):
        if outer.get("success") in (True, "true") and outer.get("result") not in (False, "false"):
            return outer
        code, message = failure_fields(outer)
        raise BusinessFailure(code or "not_followed", message or "the relation was refused")
    code = reply.get("code")
    if code is not None and str(code).strip() in ("0", "200") and not isinstance(code, bool):
        return reply
    if reply.get("success") in (True, "true"):
        return reply
    found_code, message = failure_fields(reply)
    raise BusinessFailure(found_code or "not_followed", message or "the reply does not say the offer is followed")


def _spec(key: str, namespace: str, name: str, *, token: bool = True) -> ApiSpec:
    return ApiSpec(key=key, namespace=namespace, name=name, needs_token=token, extract=_follow_extract)


_PRODUCT = "com.alibaba.product"
_UNFOLLOW = _spec("unfollow.crossborder", _PRODUCT, "alibaba.product.unfollow.crossborder")
FOLLOW_APIS: dict[str, FollowApi] = {api.name: api for api in (
    FollowApi("follow", _spec("follow", _PRODUCT, "alibaba.product.follow"), _UNFOLLOW, "productId"),
    FollowApi("crossborder", _spec("follow.crossborder", _PRODUCT, "alibaba.product.follow.crossborder"),
              _UNFOLLOW, "productId"),
    FollowApi("relation",
              _spec("relation.add", "com.alibaba.fenxiao.crossborder", "product.kjdistribute.addRelation",
                    token=False),
              _spec("relation.remove", "com.alibaba.fenxiao.crossborder", "product.kjdistribute.removeRelation"),
              "offerId"),
    FollowApi("pushed", _spec("pushed.sync", "com.alibaba.product.push", "alibaba.cross.syncProductListPushed"),
              None, "productIdList", batch=20),
    FollowApi("fenxiao", _spec("fenxiao.relation", "com.alibaba.fenxiao", "alibaba.fenxiao.relationadd"),
              None, "offerId"),
)}

#: Every API of the message service by its key (for the gateway middleware's classification).
MESSAGE_APIS: dict[str, ApiSpec] = {spec.key: spec for spec in (
    MESSAGE_LIST, MESSAGE_CONFIRM,
    *(api.follow for api in FOLLOW_APIS.values()),
    *(api.unfollow for api in FOLLOW_APIS.values() if api.unfollow is not None),
)}
