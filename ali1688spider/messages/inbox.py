"""What happens to a message, pushed (the listener) or replayed (``scrapy crawl messages``).

In this order, each step safe to run again: the message is stored (``messages``, ``_id`` = its
``msgId``); what it changes at once is written (a deleted offer's product marked unavailable, an
inventory change's stock); the offers it names go to the front of the Redis queue, each only if
it is not waiting there already; the message is marked handled. Only then may the caller answer
1688 (or confirm it). A crash anywhere before that leaves the message unhandled: 1688 delivers it
again and the steps run again, queuing only what is not already waiting. A message delivered
after it was handled does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..aop.messages import Meaning, Message, what_it_means
from ..cluster.leases import LeaseQueue
from ..store.messages import MessageStore


@dataclass
class Receipt:
    """What accepting one message did."""

    message: Message
    meaning: Meaning
    duplicate: bool = False  # handled before: nothing done
    queued: list[str] = field(default_factory=list)  # offers queued for a refresh now
    waiting: list[str] = field(default_factory=list)  # offers it names that were queued already
    gone: int = 0  # stored products marked unavailable
    stock: int = 0  # stored products whose stock was written

    def summary(self) -> str:
        if self.duplicate:
            return "delivered again: nothing to do"
        parts = [f"{len(self.queued)} queued"]
        if self.waiting:
            parts.append(f"{len(self.waiting)} already waiting")
        if self.meaning.gone:
            parts.append(f"{self.gone} of {len(self.meaning.gone)} marked unavailable")
        if self.meaning.stock:
            parts.append(f"stock written to {self.stock}")
        if self.meaning.bad_ids:
            parts.append(f"{len(self.meaning.bad_ids)} ids unreadable")
        if not self.meaning.handled and not self.meaning.bad_ids:
            return "stored (a topic that asks for no refresh)"
        return ", ".join(parts)


class Inbox:
    def __init__(self, store: MessageStore, queue: LeaseQueue) -> None:
        self.store = store
        self.queue = queue

    async def accept(self, message: Message, via: str) -> Receipt:
        """Store, apply and queue ``message``; raises ``StorageError`` or a Redis error when it
        could not (the message is then not handled, and must not be acknowledged)."""
        meaning = what_it_means(message)
        receipt = Receipt(message, meaning)
        if await self.store.receive(message, via):
            receipt.duplicate = True
            return receipt
        receipt.gone = await self.store.mark_gone(meaning.gone, message, meaning.reason)
        receipt.stock = await self.store.apply_stock(meaning.stock, message, meaning.reason)
        entries = {offer_id: refresh_entry(offer_id, message, meaning) for offer_id in meaning.refresh}
        receipt.queued = await self.queue.push_urgent(entries)
        queued = set(receipt.queued)
        receipt.waiting = [offer_id for offer_id in meaning.refresh if offer_id not in queued]
        await self.store.handled(message, meaning, receipt.queued, receipt.waiting, receipt.stock)
        return receipt


def refresh_entry(offer_id: str, message: Message, meaning: Meaning) -> bytes:
    """The queue entry of an offer a message names: the worker's product API and country, with
    the reason and the message (kept as the product's ``changed_by``)."""
    entry: dict[str, object] = {"id": offer_id, "reason": meaning.reason, "message": message.msg_id}
    if message.born is not None:
        entry["born"] = int(message.born.timestamp() * 1000)
    return json.dumps(entry, separators=(",", ":")).encode()
