"""The message service's messages (PROTOCOL.md §8.1, §8.5): made from the drifts of followed
offers when the catalogue epoch moves on, or one at a time for a test (``POST /_sandbox/messages``).

When the epoch moves forward from ``a`` to ``b`` (:meth:`~.gateway.Gateway.set_epoch`), every step
``e`` of ``a + 1 .. b`` is a *move* (of a longer jump, the last :data:`MAX_MOVE_STEPS` only). The
offers followed at that moment (:mod:`.follows`) that differ at ``e`` from ``e - 1``
(:meth:`~.catalogue.Catalogue.drifted_ids`) get, in id order:

- ``PRODUCT_RELATION_VIEW_PRODUCT_CHANGE``, ``data`` ``{"memberId", "productIds", "action":
  "modify", "msgSendTime"}``: one message for one to three drifted offers (seeded),
  ``productIds`` their comma-separated ids; ``memberId`` is ``b2b-<seller's user id>`` when they
  share a seller, else the authorised member (who ``memberId`` is, is unverified);
- then for each of them ``PRODUCT_PRODUCT_INVENTORY_CHANGE`` when its stock changed:
  ``{"OfferInventoryChangeList": [...]}``, one entry per SKU whose stock changed ``{"offerId",
  "offerOnSale", "skuId", "skuOnSale", "quantity", "bizTime"}`` with the offer's and SKU's
  ``amountOnSale`` at ``e`` and ``quantity`` the signed change; an offer without SKUs has one
  entry, without ``skuId`` and ``skuOnSale``;
- and ``FENXIAO_PRICE_CHANGE`` when a price changed: ``{"productId": "<id>", "memberId": <the
  seller>, "msgSendTime"}``.

A move back to an earlier epoch makes no messages (chosen: the platform's offers never go back).

The envelope is ``{"msgId", "type", "userInfo", "gmtBorn", "data"}``: ``msgId`` grows by 1-9 from
a seeded base near :data:`FIRST_MSG_ID`, ``userInfo`` is the authorised member
(``config.DEMO_MEMBER_ID``), ``gmtBorn`` (epoch ms) and ``msgSendTime`` (``yyyy-MM-dd HH:mm:ss``,
Beijing time) are the moment the epoch was set. The real shapes are partly unverified, so they
vary, seeded per message: ``msgId`` is a JSON string in 1 message of 5; in 1 inventory message of
4 every number of the list is a string; ``bizTime`` is a number (1 in 2), a string (1 in 4) or
absent (1 in 4). Messages made by :meth:`MessageMaker.custom` are sent as given.

Examining an offer costs about half a millisecond when it drifted (two offers are built), so moves
are examined a slice of :data:`MAKE_SLICE` followed ids at a time (:meth:`MessageMaker.make_slice`,
called by the pusher between its other work); made messages wait in ``ready`` for it.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .catalogue import Catalogue, Offer, Sku
from .config import DEMO_MEMBER_ID
from .stats import PushStats
from .tokens import CHINA

RELATION_CHANGE = "PRODUCT_RELATION_VIEW_PRODUCT_CHANGE"
INVENTORY_CHANGE = "PRODUCT_PRODUCT_INVENTORY_CHANGE"
PRICE_CHANGE = "FENXIAO_PRICE_CHANGE"
FIRST_MSG_ID = 92_705_609_221  # a captured msgId; each seed starts a little above it
MAKE_SLICE = 200  # followed ids examined at a time: about 50 ms when 30 % of them drifted
MAX_MOVE_STEPS = 100  # epochs of one jump that make messages (the last ones)
SEND_TIME = "%Y-%m-%d %H:%M:%S"
GROUP_SIZES, GROUP_WEIGHTS = (1, 2, 3), (6, 3, 1)  # offers per RELATION_VIEW message
TEXT_MSG_ID_RATE = 0.2
TEXT_NUMBERS_RATE = 0.25
BIZ_TIME_NUMBER, BIZ_TIME_TEXT = 0.5, 0.75  # cumulative: number, string, else absent


@dataclass(eq=False, slots=True)
class Message:
    """One message: its envelope as sent (``text``), what the replay filters look at, and its
    delivery state (:mod:`.push`). Only the text of the envelope is kept: tens of thousands of
    messages may wait for delivery, and a tree of dicts each would make every full garbage
    collection stall the gateway."""

    msg_id: int  # the id as a number, whether the envelope sends a number or a string
    type: str
    user_info: str
    gmt_born: int
    text: str  # the envelope as compact JSON, not ASCII-escaped: the pushed ``message`` field
    failures: int = 0  # failed delivery attempts
    delivered: bool = False
    confirmed: bool = False

    @property
    def envelope(self) -> dict[str, Any]:
        """The envelope, decoded anew on each call."""
        return dict(json.loads(self.text))


def new_message(msg_id: int | str, topic: str, user_info: str, gmt_born: int, data: Any) -> Message:
    """A message whose envelope sends ``msg_id`` as given (a number, or a string of digits)."""
    envelope = {"msgId": msg_id, "type": topic, "userInfo": user_info, "gmtBorn": gmt_born, "data": data}
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return Message(int(msg_id), topic, user_info, gmt_born, text)


def send_time(epoch_ms: int) -> str:
    """Epoch milliseconds → ``yyyy-MM-dd HH:mm:ss``, Beijing wall clock (``msgSendTime``)."""
    return datetime.fromtimestamp(epoch_ms / 1000, CHINA).strftime(SEND_TIME)


def member_id(user_id: int) -> str:
    """A member id as the messages spell it: ``b2b-<user id>``."""
    return f"b2b-{user_id}"


@dataclass
class _Move:
    """One epoch step to examine: the ids followed when it was set, and how far it got."""

    epoch: int
    offer_ids: list[int]  # shared by the steps of one jump; never changed
    born_ms: int
    position: int = 0


class MessageMaker:
    """Makes messages from moves (a slice at a time) and on demand; they wait in ``ready``."""

    def __init__(self, catalogue: Catalogue, stats: PushStats, member: str = DEMO_MEMBER_ID) -> None:
        self.catalogue = catalogue
        self.member = member
        self._stats = stats
        self._seed = catalogue.seed
        self._id_rng = random.Random(f"{self._seed}:msg-ids")
        self._next_id = FIRST_MSG_ID + self._id_rng.randrange(10**6)
        self._moves: deque[_Move] = deque()
        self.ready: deque[Message] = deque()

    @property
    def backlog(self) -> int:
        """Followed ids still to examine, over every pending move."""
        return sum(len(move.offer_ids) - move.position for move in self._moves)

    def queue_moves(self, old: int, new: int, followed: list[int], born_ms: int) -> int:
        """Queue the steps of a move from epoch ``old`` to ``new`` over the ``followed`` ids (the
        list is kept: the caller must not change it); how many steps were queued."""
        if new <= old or not followed:
            return 0
        first = max(old + 1, new - MAX_MOVE_STEPS + 1)
        for epoch in range(first, new + 1):
            self._moves.append(_Move(epoch, followed, born_ms))
        return new + 1 - first

    def make_slice(self) -> int:
        """Examine the next slice of the first pending move (slices start at multiples of
        ``MAKE_SLICE``, so what is made does not depend on who calls); how many ids were examined."""
        if not self._moves:
            return 0
        move = self._moves[0]
        start = move.position
        chunk = move.offer_ids[start:start + MAKE_SLICE]
        move.position += len(chunk)
        if move.position >= len(move.offer_ids):
            self._moves.popleft()
        self._from_drifts(move, start, self.catalogue.drifted_ids(chunk, move.epoch))
        return len(chunk)

    def make_all(self) -> None:
        """Examine every pending move now (for callers without a pusher)."""
        while self._moves:
            self.make_slice()

    def take_ready(self) -> list[Message]:
        """The messages made since the last call, in the order they were made."""
        made = list(self.ready)
        self.ready.clear()
        return made

    def custom(self, topic: str, data: Any, born_ms: int, msg_id: int | str | None = None,
               user_info: str | None = None) -> Message:
        """One message of any topic, sent as given; without ``msg_id`` the next one is taken."""
        if msg_id is None:
            msg_id = self._next_msg_id()
        else:  # later ids stay above a given one, so they stay unique
            self._next_id = max(self._next_id, int(msg_id) + 1)
        message = new_message(msg_id, topic, self.member if user_info is None else user_info, born_ms, data)
        self._add(message)
        return message

    # -- from drifts ----------------------------------------------------------------------------

    def _from_drifts(self, move: _Move, start: int, drifted: list[int]) -> None:
        rng = random.Random(f"{self._seed}:groups:{move.epoch}:{start}")
        index = 0
        while index < len(drifted):
            size = rng.choices(GROUP_SIZES, GROUP_WEIGHTS)[0]
            pairs = [self._pair(offer_id, move.epoch) for offer_id in drifted[index:index + size]]
            index += size
            self._relation([after for _, after in pairs], move.born_ms)
            for before, after in pairs:
                changes = _stock_changes(before, after)
                if changes:
                    self._inventory(after, changes, move.born_ms)
                if _prices(before) != _prices(after):
                    self._price(after, move.born_ms)

    def _pair(self, offer_id: int, epoch: int) -> tuple[Offer, Offer]:
        before, after = self.catalogue.offer(offer_id, epoch - 1), self.catalogue.offer(offer_id, epoch)
        assert before is not None and after is not None  # a drifted id names an offer
        return before, after

    def _relation(self, offers: list[Offer], born_ms: int) -> None:
        sellers = {offer.seller.user_id for offer in offers}
        data = {
            "memberId": member_id(sellers.pop()) if len(sellers) == 1 else self.member,
            "productIds": ",".join(str(offer.offer_id) for offer in offers),
            "action": "modify",
            "msgSendTime": send_time(born_ms),
        }
        self._made(RELATION_CHANGE, lambda rng: data, born_ms)

    def _inventory(self, offer: Offer, changes: list[tuple[Sku | None, int]], born_ms: int) -> None:
        def data(rng: random.Random) -> dict[str, Any]:
            as_text = rng.random() < TEXT_NUMBERS_RATE
            roll = rng.random()
            biz_ms = born_ms - rng.randrange(1000)  # the change came a moment before its message
            entries = []
            for sku, quantity in changes:
                entry: dict[str, Any] = {"offerId": offer.offer_id, "offerOnSale": offer.amount_on_sale}
                if sku is not None:
                    entry.update(skuId=sku.sku_id, skuOnSale=sku.amount_on_sale)
                entry["quantity"] = quantity
                if as_text:
                    entry = {key: str(value) for key, value in entry.items()}
                if roll < BIZ_TIME_NUMBER:
                    entry["bizTime"] = biz_ms
                elif roll < BIZ_TIME_TEXT:
                    entry["bizTime"] = str(biz_ms)
                entries.append(entry)
            return {"OfferInventoryChangeList": entries}

        self._made(INVENTORY_CHANGE, data, born_ms)

    def _price(self, offer: Offer, born_ms: int) -> None:
        data = {"productId": str(offer.offer_id), "memberId": member_id(offer.seller.user_id),
                "msgSendTime": send_time(born_ms)}
        self._made(PRICE_CHANGE, lambda rng: data, born_ms)

    def _made(self, topic: str, data: Any, born_ms: int) -> None:
        """A message of ``topic`` whose ``data(rng)`` draws from the message's own rng."""
        number = self._next_msg_id()
        rng = random.Random(f"{self._seed}:message:{number}")
        msg_id: int | str = str(number) if rng.random() < TEXT_MSG_ID_RATE else number
        self._add(new_message(msg_id, topic, self.member, born_ms, data(rng)))

    def _next_msg_id(self) -> int:
        number = self._next_id
        self._next_id += self._id_rng.randint(1, 9)  # other apps' messages take the ids between
        return number

    def _add(self, message: Message) -> None:
        self.ready.append(message)
        self._stats.made += 1


def _stock_changes(before: Offer, after: Offer) -> list[tuple[Sku | None, int]]:
    """``(SKU at the new epoch or None, signed change)`` per SKU whose stock changed; an offer
    without SKUs: its own stock's change."""
    if after.skus:
        return [(new, new.amount_on_sale - old.amount_on_sale)
                for old, new in zip(before.skus, after.skus, strict=True) if new.amount_on_sale != old.amount_on_sale]
    change = after.amount_on_sale - before.amount_on_sale
    return [(None, change)] if change else []


def _prices(offer: Offer) -> tuple[object, ...]:
    """Every price of an offer: a change in any is a price change."""
    return offer.tiers, offer.retail_cents, tuple((s.price_cents, s.retail_cents, s.consign_cents) for s in offer.skus)
