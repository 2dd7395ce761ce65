"""Outbound delivery to customer channels: ordered per address, retried with bounded
exponential backoff, and never lost silently (issue 4).

An adapter gives :class:`RetryingSender` two functions: ``render`` turns an
:class:`~bot.models.OutboundMessage` into the provider's parts (text chunks at the
channel's limit, buttons on the last one) and ``deliver`` sends one part, raising
:class:`~bot.errors.DeliveryError` (``permanent=True`` when a retry cannot help) or
:class:`RetryLater` (429 / 5xx, with the provider's retry-after when it gave one).

``enqueue`` (what the durable outbox calls, :class:`bot.ports.QueueingSender`) only
queues, so a webhook is answered as soon as the engine has stored and decided; one
worker task per address delivers that address's parts in order and tells the outbox
how each message ended, which then removes it from the store or records the failure
(issue 11). ``send`` is the same for a caller without an outbox: a final failure is a
``delivery.failed`` event on the conversation, which agents see.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.edge import ChannelPort
from bot.errors import DeliveryError, DeliveryInterrupted, StoreError
from bot.models import OutboundMessage
from bot.ports import Done

log = logging.getLogger(__name__)

Part = TypeVar("Part")


class RetryLater(DeliveryError):
    """A transient failure (429, 5xx, network): try again, after ``retry_after`` seconds
    when the provider said so."""

    def __init__(self, channel: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(channel, reason, permanent=False)
        self.retry_after = retry_after


class NotSent(DeliveryError):
    """The adapter decided not to call the provider (a channel rule forbids this send
    now): final, and recorded with ``reason`` as is, since no attempt was made."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(channel, reason, permanent=True)


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff with jitter: ``base * 2**n`` up to ``cap`` seconds,
    scaled by a random factor in [0.5, 1); at most ``attempts`` tries in all."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0
    #: The longest provider retry-after we honour before giving up on the part.
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        return min(self.cap, self.base * 2.0**attempt) * (0.5 + jitter / 2)


@dataclass(frozen=True)
class _Item(Generic[Part]):
    message_no: int
    part: Part
    preview: str
    #: Told once how the message ended (on its last part, or its first failure).
    done: Done | None = None
    last: bool = True


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in chunks of at most ``limit`` characters, cut at a line break, else a
    space, else hard; never an empty list (an empty text is one empty chunk)."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ") if cut < limit else rest[cut:]
    chunks.append(rest)
    return [c for c in chunks if c] or [""]


class RetryingSender(Generic[Part]):
    """A :class:`~bot.ports.ChannelSender` that queues and retries (see the module doc)."""

    def __init__(
        self,
        channel: str,
        *,
        render: Callable[[OutboundMessage, str], Awaitable[Sequence[Part]]],
        deliver: Callable[[str, Part], Awaitable[None]],
        port: ChannelPort,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.channel = channel
        self._render = render
        self._deliver = deliver
        self._port = port
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._jitter = jitter
        self._queues: dict[str, asyncio.Queue[_Item[Part]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._numbers = itertools.count(1)

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        """Queue ``message``; a final failure is recorded through the port."""
        await self._queue(address, message, locale, None)

    async def enqueue(
        self, address: str, message: OutboundMessage, locale: str, done: Done
    ) -> None:
        """Queue ``message``; ``done`` hears how it ended (nothing is recorded here)."""
        await self._queue(address, message, locale, done)

    async def _queue(
        self, address: str, message: OutboundMessage, locale: str, done: Done | None
    ) -> None:
        parts = await self._render(message, locale)
        number = next(self._numbers)
        queue = self._queues.setdefault(address, asyncio.Queue())
        for n, part in enumerate(parts, 1):
            queue.put_nowait(_Item(number, part, message.text[:80], done, n == len(parts)))
        if address not in self._workers:
            self._workers[address] = asyncio.create_task(
                self._work(address, queue), name=f"deliver-{self.channel}"
            )

    async def flush(self, within: float | None = None) -> None:
        """Wait until every queued part is delivered or has finally failed. Parts still
        waiting after ``within`` seconds are never dropped silently: the outbox keeps
        those it handed over (:meth:`enqueue`) for the next process, and the others
        (:meth:`send`) are recorded as failed."""
        workers = list(self._workers.values())
        if not workers:
            return
        _, late = await asyncio.wait(workers, timeout=within)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        for address, queue in list(self._queues.items()):
            failed: set[int] = set()
            while not queue.empty():
                item = queue.get_nowait()
                if item.message_no not in failed:
                    failed.add(item.message_no)
                    await self._interrupted(address, item)
            self._queues.pop(address, None)

    async def _work(self, address: str, queue: asyncio.Queue[_Item[Part]]) -> None:
        given_up: int | None = None
        current: _Item[Part] | None = None
        try:
            while not queue.empty():
                current = queue.get_nowait()
                if current.message_no == given_up:
                    continue  # the rest of a message whose earlier part finally failed
                if not await self._attempt(address, current):
                    given_up = current.message_no
                elif current.last and current.done is not None:
                    await current.done(None)
                current = None
        except asyncio.CancelledError:
            if current is not None:
                await self._interrupted(address, current)
            raise
        finally:
            self._workers.pop(address, None)
            if queue.empty():
                self._queues.pop(address, None)

    async def _attempt(self, address: str, item: _Item[Part]) -> bool:
        """Deliver one part with retries; False when it finally failed (recorded)."""
        attempt = 0
        while True:
            start = time.perf_counter()
            try:
                await self._deliver(address, item.part)
                self._port.provider_call(self.channel, "ok", time.perf_counter() - start)
                return True
            except NotSent as e:
                self._port.provider_call(self.channel, "not_sent", time.perf_counter() - start)
                await self._failed(address, item, e.reason)
                return False
            except DeliveryError as e:
                retry_after = e.retry_after if isinstance(e, RetryLater) else None
                attempt += 1
                too_long = retry_after is not None and retry_after > self.backoff.max_retry_after
                final = e.permanent or attempt >= self.backoff.attempts or too_long
                result = "failed" if final else "retry"
                self._port.provider_call(self.channel, result, time.perf_counter() - start)
                if final:
                    await self._failed(address, item, f"{e.reason} (after {attempt} attempts)")
                    return False
                delay = self.backoff.delay(attempt - 1, retry_after, self._jitter())
                log.info("%s delivery retry %d in %.1fs: %s", self.channel, attempt, delay, e)
                await self._sleep(delay)
            except Exception as e:  # an adapter bug must not kill the address's queue
                self._port.provider_call(self.channel, "crashed", time.perf_counter() - start)
                log.exception("%s delivery crashed", self.channel)
                await self._failed(address, item, f"unexpected error: {type(e).__name__}")
                return False

    async def _interrupted(self, address: str, item: _Item[Part]) -> None:
        if item.done is not None:  # the outbox keeps it for the next process
            await item.done(DeliveryInterrupted(self.channel))
        else:
            await self._failed(address, item, "not sent before shutdown")

    async def _failed(self, address: str, item: _Item[Part], reason: str) -> None:
        if item.done is not None:
            await item.done(DeliveryError(self.channel, reason, permanent=True))
            return
        try:
            await self._port.delivery_failed(self.channel, address, reason, text=item.preview)
        except StoreError:  # nowhere left to record it: the log line must do
            log.exception("could not record a failed %s delivery: %s", self.channel, reason)
