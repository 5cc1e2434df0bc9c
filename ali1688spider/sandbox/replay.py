"""The replay APIs (PROTOCOL.md §8.4) over the store of failed messages.

A message is *listed* from its first failed delivery (at once when no callback URL is set) until
it is confirmed or a later attempt delivers it (:mod:`.push`). The APIs live in ``cn.alibaba.open``
(version 1, protocol ``param2`` or ``param``), are signed, and need no user token (a given one is
not checked, :data:`TOKEN_FREE_APIS`):

- ``push.query.messageList``: ``page`` (default 1, from 1), ``pageSize`` (20-200, default 20) →
  ``{"pushMessagePage":{"datas":[…],"totalCount":N}}``: the listed messages that pass the filters,
  by ascending ``msgId``; reading confirms nothing.
- ``push.cursor.messageList``: ``quantity`` (20-200, default 20) → ``{"pushMessageList":[…]}``: the
  first ``quantity`` of them, which count as confirmed from then on (even when a fault garbles the
  reply: the risk that comes with confirming by reading).
- ``push.message.confirm``: ``msgIdList``, a JSON list of numbers or digit strings →
  ``{"isSuccess":true}``; ids not listed (unknown, delivered, already confirmed) and entries that
  are no ids are ignored.

Filters of both lists: ``createStartTime`` and ``createEndTime`` (``yyyyMMddHHmmssSSS+0800``, any
``±HHMM`` offset; ``gmtBorn`` within both, inclusive), ``type`` and ``userInfo`` (equal). A
``page``, ``pageSize`` or ``quantity`` that is no number or out of range, a time of another form,
or a ``msgIdList`` that is missing or no JSON list is a ``gw.ParamMissing`` (400; chosen, the
real answers are unpublished).

A listed message is its envelope with ``topicGroup`` and ``topicName`` (``type`` split at its first
``_``: ``PRODUCT`` + ``RELATION_VIEW_PRODUCT_CHANGE``) and ``appKey``. At most :data:`MAX_LISTED`
messages are kept: beyond that the oldest listed one is forgotten (counted as ``dropped``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .messages import Message
from .stats import PushStats
from .views import dumps

NAMESPACE = "cn.alibaba.open"
QUERY = "push.query.messageList"
CURSOR = "push.cursor.messageList"
CONFIRM = "push.message.confirm"
#: (namespace, apiName) of the replay APIs → the short name used here.
REPLAY_APIS = {(NAMESPACE, QUERY): QUERY, (NAMESPACE, CURSOR): CURSOR, (NAMESPACE, CONFIRM): CONFIRM}
TOKEN_FREE_APIS = frozenset(REPLAY_APIS)

MIN_PAGE_SIZE, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 20, 200, 20
MAX_LISTED = 100_000
_TIME = re.compile(r"(\d{17})([+-])(\d{2})(\d{2})")
_TIME_FORMAT = "%Y%m%d%H%M%S%f%z"


@dataclass(frozen=True)
class ReplayQuery:
    """A list call: which listed messages (filters), and how many from where."""

    api: str
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE  # pageSize or quantity
    start_ms: int | None = None
    end_ms: int | None = None
    type: str | None = None
    user_info: str | None = None

    def admits(self, message: Message) -> bool:
        return ((self.start_ms is None or message.gmt_born >= self.start_ms)
                and (self.end_ms is None or message.gmt_born <= self.end_ms)
                and (self.type is None or message.type == self.type)
                and (self.user_info is None or message.user_info == self.user_info))


@dataclass(frozen=True)
class Confirmation:
    """A ``push.message.confirm`` call: the ids it names."""

    msg_ids: tuple[int, ...]


def parse(api: str, params: Mapping[str, str]) -> ReplayQuery | Confirmation | str:
    """The request of a replay call, or the message of a ``gw.ParamMissing``."""
    if api == CONFIRM:
        return _confirmation(params.get("msgIdList"))
    try:
        if api == QUERY:
            page = _number(params, "page", 1, 1, None)
            size = _number(params, "pageSize", DEFAULT_PAGE_SIZE, MIN_PAGE_SIZE, MAX_PAGE_SIZE)
        else:
            page, size = 1, _number(params, "quantity", DEFAULT_PAGE_SIZE, MIN_PAGE_SIZE, MAX_PAGE_SIZE)
        start, end = _time(params, "createStartTime"), _time(params, "createEndTime")
    except ValueError as exc:
        return str(exc)
    return ReplayQuery(api, page, size, start, end, params.get("type") or None, params.get("userInfo") or None)


def _number(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = params.get(name)
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise ValueError(f"{name} must be a number")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be within {low}..{high}" if high is not None else f"{name} must be >= {low}")
    return value


def _time(params: Mapping[str, str], name: str) -> int | None:
    """``yyyyMMddHHmmssSSS+0800`` → epoch ms; ``None`` when not given."""
    text = params.get(name)
    if not text:
        return None
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"{name} must be yyyyMMddHHmmssSSS+0800")
    try:  # %f takes the milliseconds as a fraction: "123" is .123 s
        moment = datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{name} is no valid time") from None
    return int(moment.timestamp() * 1000 + 0.5)


def _confirmation(raw: str | None) -> Confirmation | str:
    if not raw:
        return "msgIdList is required"
    try:
        values = json.loads(raw)
    except ValueError:
        return "msgIdList must be a JSON list"
    if not isinstance(values, list):
        return "msgIdList must be a JSON list"
    numbers = []
    for value in values:  # entries that are no ids name no message: ignored like unknown ids
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            continue
        text = str(value)
        if text.isascii() and text.isdigit() and len(text) <= 19:
            numbers.append(int(text))
    return Confirmation(tuple(numbers))


def replay_view(message: Message, app_key: str) -> dict[str, Any]:
    """A listed message as the replay APIs send it: the envelope plus the topic parts and app key."""
    group, _, name = message.type.partition("_")
    envelope = message.envelope
    return {"msgId": envelope["msgId"], "type": message.type, "topicGroup": group, "topicName": name,
            "appKey": app_key, "userInfo": message.user_info, "gmtBorn": message.gmt_born, "data": envelope["data"]}


class Replay:
    """The listed (failed, unconfirmed) messages, and the replay APIs' answers."""

    def __init__(self, app_key: str, stats: PushStats) -> None:
        self.app_key = app_key
        self._stats = stats
        self._listed: dict[int, Message] = {}  # by msgId, oldest listed first
        self._order: list[int] | None = None  # the listed ids ascending, until the next change

    def __len__(self) -> int:
        return len(self._listed)

    def __contains__(self, message: object) -> bool:
        return isinstance(message, Message) and self._listed.get(message.msg_id) is message

    def add(self, message: Message) -> None:
        """List a message whose delivery failed (a confirmed one stays out)."""
        if message.confirmed or message in self:
            return
        self._listed[message.msg_id] = message
        self._order = None
        if len(self._listed) > MAX_LISTED:
            del self._listed[next(iter(self._listed))]
            self._stats.dropped += 1

    def discard(self, message: Message) -> None:
        """Unlist a message that a later attempt delivered."""
        if message in self:
            del self._listed[message.msg_id]
            self._order = None

    def confirm(self, msg_ids: Iterable[int]) -> int:
        """Confirm the listed messages of these ids; how many there were."""
        count = 0
        for msg_id in msg_ids:
            message = self._listed.pop(msg_id, None)
            if message is not None:
                message.confirmed = True
                count += 1
        if count:
            self._order = None
            self._stats.confirmed += count
        return count

    def messages(self) -> Iterator[Message]:
        """The listed messages by ascending msgId."""
        if self._order is None:
            self._order = sorted(self._listed)
        return (self._listed[msg_id] for msg_id in self._order)

    # -- the APIs ----------------------------------------------------------------------------

    def answer(self, request: ReplayQuery | Confirmation) -> bytes:
        """The body of a replay call (they always succeed), confirming what it confirms."""
        if isinstance(request, Confirmation):
            self.confirm(request.msg_ids)
            return dumps({"isSuccess": True})
        matching = [message for message in self.messages() if request.admits(message)]
        if request.api == CURSOR:
            taken = matching[:request.size]
            self.confirm([message.msg_id for message in taken])
            return dumps({"pushMessageList": [replay_view(message, self.app_key) for message in taken]})
        first = (request.page - 1) * request.size
        page = matching[first:first + request.size]
        return dumps({"pushMessagePage": {"datas": [replay_view(message, self.app_key) for message in page],
                                          "totalCount": len(matching)}})
