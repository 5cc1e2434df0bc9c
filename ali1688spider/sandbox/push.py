"""Delivery of messages to the app's callback URL (PROTOCOL.md §8.2), from the emulator's own loop.

One asyncio task, started and stopped with the app (:mod:`.server`), makes messages from pending
epoch moves a slice at a time (:class:`~.messages.MessageMaker`; the gateway answers between
slices) and delivers them. A delivery is ``POST callback_url`` with an
``application/x-www-form-urlencoded`` body of exactly two fields, ``message`` (the envelope as
compact JSON) and ``_aop_signature`` (:func:`~.signature.push_signature`), through one aiohttp
session, at most :data:`MAX_SENDING` at a time. A 2xx answer delivers the message; any other
answer, a connection error or no answer within :data:`PUSH_TIMEOUT` seconds is a failed attempt.

Faults (config and CLI flags), drawn from ``(seed, msgId, …)`` so that a run repeats whatever the
network does:

- ``push_delay_ms`` plus an exponential extra of mean ``push_jitter_ms``: from the making of a
  message to its first delivery; the extra reorders messages.
- ``push_fail``: an attempt fails on purpose at this rate, nothing is sent.
- ``push_duplicate``: a delivered message is delivered once more at this rate (after another
  jitter delay), same body, same ``msgId``; a duplicate that fails is not retried.
- ``push_retry_seconds``, ``push_attempts``: a failed attempt is retried after
  ``push_retry_seconds``, twice as long after each further failure, until ``push_attempts``
  attempts have failed; the message is then left to the replay APIs.

A message whose delivery failed once is listed by the replay APIs (:mod:`.replay`) until it is
confirmed or a later attempt delivers it; a confirmed message is not attempted again. Without a
callback URL every message is listed at once and never pushed, also after a URL is set. The URL can
change while the emulator runs (``POST /_sandbox/push``): an attempt goes to the URL of its time.
One log line per failed attempt (why, the msgId, the attempt), never the secret or a signature.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .config import check_callback_url
from .gateway import Gateway
from .messages import Message
from .signature import SIGNATURE, push_signature

PUSH_TIMEOUT = 10.0  # seconds for the callback's answer (unpublished on the platform)
MAX_SENDING = 32  # deliveries in flight at once
# Between two slices of message making: long enough for the loop to carry a request through its
# several steps (sleep(0) would let each step wait for a whole slice), short beside a slice.
SLICE_PAUSE = 0.003
FORM = "application/x-www-form-urlencoded"
INJECTED = "failed on purpose (push_fail)"

log = logging.getLogger("ali1688spider.sandbox.push")


@dataclass(order=True)
class _Delivery:
    """One planned attempt, ordered by when it is due (then by when it was planned)."""

    due: float  # loop time
    order: int
    message: Message = field(compare=False)
    duplicate: bool = field(compare=False, default=False)


class Pusher:
    """The delivery loop of one emulator; its state (messages, replay, counters) is the gateway's."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._config = gateway.config
        self.callback_url = gateway.config.callback_url
        self._planned: list[_Delivery] = []  # a heap
        self._order = itertools.count()
        self._sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()  # something to do: new messages, a slot, a new plan
        self._idle = asyncio.Event()  # every pending move made and every made message handed out
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT))
        self._task = asyncio.create_task(self._run(), name="sandbox-pusher")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Cancel the loop and the deliveries in flight, then close the session."""
        tasks = [task for task in (self._task, *self._sending) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """Tell the loop that moves or messages are waiting (:meth:`caught_up` waits for them)."""
        self._idle.clear()
        self._wake.set()

    async def caught_up(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) until every pending move was made into messages and
        each was planned for delivery or listed for replay; whether that happened. Without a
        started loop, do it at once; a loop that crashed (logged) ends the wait."""
        if self._task is None:
            self._gateway.messages.make_all()
            self._hand_out(self._gateway.messages.take_ready(), asyncio.get_running_loop().time())
            return True
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait((idle, self._task), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
        return self._idle.is_set()

    # -- settings and counters -----------------------------------------------------------------

    def set_callback(self, url: str) -> None:
        """Push to ``url`` from the next attempt on ("" = nowhere); ``ValueError`` if malformed."""
        check_callback_url(url)
        self.callback_url = url

    def settings(self) -> dict[str, Any]:
        """What ``GET /_sandbox/push`` shows: the URL and fault settings under their config names,
        and the counters beside them."""
        config = self._config
        return {
            "callback_url": self.callback_url, "push_delay_ms": config.push_delay_ms,
            "push_jitter_ms": config.push_jitter_ms, "push_duplicate": config.push_duplicate,
            "push_fail": config.push_fail, "push_retry_seconds": config.push_retry_seconds,
            "push_attempts": config.push_attempts, "push_timeout_seconds": PUSH_TIMEOUT, **self.counters(),
        }

    def counters(self) -> dict[str, int]:
        """The gateway's push counters plus the deliveries planned and in flight."""
        counters = self._gateway.push_snapshot()
        counters.update(planned=len(self._planned), sending=len(self._sending))
        return counters

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        maker = self._gateway.messages
        while True:
            self._wake.clear()
            if maker.backlog:
                maker.make_slice()
            self._hand_out(maker.take_ready(), loop.time())
            self._start_due(loop.time())
            if maker.backlog:
                await asyncio.sleep(SLICE_PAUSE)  # the gateway answers between slices
                continue
            self._idle.set()
            timeout = None
            if self._planned and len(self._sending) < MAX_SENDING:
                timeout = max(0.0, self._planned[0].due - loop.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _hand_out(self, messages: list[Message], now: float) -> None:
        """Plan the first delivery of new messages, or list them when there is nowhere to push."""
        for message in messages:
            if not self.callback_url:
                self._gateway.replay.add(message)
                self._gateway.push_stats.unsent += 1
            else:
                self._plan(message, now + self._delay(message, "first"))

    def _start_due(self, now: float) -> None:
        while self._planned and self._planned[0].due <= now and len(self._sending) < MAX_SENDING:
            delivery = heapq.heappop(self._planned)
            task = asyncio.create_task(self._attempt(delivery))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the pusher stopped: no more messages are made or pushed", exc_info=task.exception())

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("push delivery crashed", exc_info=task.exception())

    def _plan(self, message: Message, due: float, *, duplicate: bool = False) -> None:
        heapq.heappush(self._planned, _Delivery(due, next(self._order), message, duplicate))
        self._wake.set()

    # -- one attempt ---------------------------------------------------------------------------

    async def _attempt(self, delivery: _Delivery) -> None:
        message = delivery.message
        if message.confirmed and not delivery.duplicate:
            return  # the app has it from the replay APIs: the platform stops pushing it
        stats = self._gateway.push_stats
        stats.attempts += 1
        attempt = message.failures + 1
        problem = await self._send(message, "fail:duplicate" if delivery.duplicate else f"fail:{attempt}")
        now = asyncio.get_running_loop().time()
        if problem is None:
            self._delivered(delivery, now)
            return
        stats.failed_attempts += 1
        what = "duplicate of message" if delivery.duplicate else "message"
        level = logging.INFO if problem == INJECTED else logging.WARNING
        log.log(level, "push of %s %s failed (attempt %d of %d): %s", what, message.msg_id, attempt,
                self._config.push_attempts, problem)
        if not delivery.duplicate:
            self._failed(message, now)

    async def _send(self, message: Message, draw: str) -> str | None:
        """Deliver once: ``None``, or why the attempt failed (``draw`` names its push_fail draw)."""
        url = self.callback_url
        if not url:
            return "no callback URL"
        if self._draw(message, draw) < self._config.push_fail:
            return INJECTED
        assert self._session is not None
        fields = {"message": message.text}
        fields[SIGNATURE] = push_signature(fields, self._config.app_secret)
        try:
            async with self._session.post(url, data=urlencode(fields).encode(), headers={"Content-Type": FORM},
                                          allow_redirects=False) as response:
                await response.read()
        except TimeoutError:
            return f"no answer within {PUSH_TIMEOUT:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= response.status < 300 else f"HTTP {response.status}"

    def _delivered(self, delivery: _Delivery, now: float) -> None:
        stats = self._gateway.push_stats
        message = delivery.message
        if delivery.duplicate:
            stats.duplicates += 1
            return
        message.delivered = True
        stats.delivered += 1
        self._gateway.replay.discard(message)  # delivered at last: no longer a failed message
        if self._draw(message, "duplicate") < self._config.push_duplicate:
            self._plan(message, now + self._delay(message, "duplicate", base=False), duplicate=True)

    def _failed(self, message: Message, now: float) -> None:
        message.failures += 1
        self._gateway.replay.add(message)
        if message.failures >= self._config.push_attempts:
            self._gateway.push_stats.exhausted += 1
            return
        if message.confirmed:  # confirmed while this attempt was on its way: no retry
            return
        self._plan(message, now + self._config.push_retry_seconds * 2 ** (message.failures - 1))

    # -- seeded draws --------------------------------------------------------------------------

    def _draw(self, message: Message, purpose: str) -> float:
        return random.Random(f"{self._config.seed}:push:{message.msg_id}:{purpose}").random()

    def _delay(self, message: Message, purpose: str, *, base: bool = True) -> float:
        """Seconds before a delivery: the base delay (if ``base``) and the exponential extra."""
        seconds = self._config.push_delay_ms / 1000 if base else 0.0
        if self._config.push_jitter_ms:
            rng = random.Random(f"{self._config.seed}:push:{message.msg_id}:{purpose}:delay")
            seconds += rng.expovariate(1000 / self._config.push_jitter_ms)
        return seconds
