"""Live pages: events from the recorder, of this process and of every other, pushed to
browsers as Server-Sent Events (``aiohttp-sse``).

The hub listens twice: :meth:`Edge.subscribe` (this process's events, at once) and
:meth:`Edge.follow` (every process's, through the store: Redis pub/sub), and drops an
event it already passed on (same id). Each open page is a :class:`Watcher` with a
filter (the desk as a whole, or one ticket); it gets *signals*, not data: an SSE
event named ``desk`` or ``ticket``, on which the page fetches its fragments again
(``hx-trigger="sse:desk"``), rendered on the server with the same role checks and
escaping as a full page. So a missed signal only delays a view until the next one,
and reloading a page always shows the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from bot.edge import Edge
from bot.models import Event, EventKind

log = logging.getLogger(__name__)

#: Event ids remembered to drop the second copy (local listener + store feed).
SEEN_IDS = 10_000
#: Events within this much time reach a page as one signal (a turn records several).
COALESCE_SECONDS = 0.15
#: A page that went away is noticed within this (an SSE comment line).
PING_SECONDS = 15.0
#: Waits before following the store again after its feed broke (Redis restarted).
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

#: What changes the desk (queues, owners, the board).
DESK_KINDS = frozenset(
    {
        EventKind.HANDOFF,
        EventKind.CLAIMED,
        EventKind.RELEASED,
        EventKind.ESCALATED,
        EventKind.RESOLVED,
        EventKind.SLA_BREACHED,
        EventKind.CSAT_RECORDED,
        EventKind.AGENT_REPLY,
        EventKind.AVAILABILITY,
    }
)

Signal = Callable[[Event], str | None]


class Watcher:
    """One open page: the signals it wants, queued until its SSE response sends them."""

    def __init__(self, signal: Signal, sse: EventSourceResponse) -> None:
        self.signal = signal
        self.sse = sse
        self.pending: asyncio.Queue[str] = asyncio.Queue(1000)

    def offer(self, event: Event) -> None:
        name = self.signal(event)
        if name is not None:
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page just refreshes less
                self.pending.put_nowait(name)

    async def pump(self) -> None:
        """Send the signals, a turn's events gathered into one of each name."""
        try:
            while True:
                names = {await self.pending.get()}
                await asyncio.sleep(COALESCE_SECONDS)
                while not self.pending.empty():
                    names.add(self.pending.get_nowait())
                for name in sorted(names):
                    await self.sse.send(name, event=name)
        except (ConnectionResetError, RuntimeError):  # the page went away
            self.sse.stop_streaming()


class LiveHub:
    def __init__(self, edge: Edge) -> None:
        self._edge = edge
        self._watchers: set[Watcher] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._unsubscribe: Callable[[], None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._following = asyncio.Event()

    async def start(self) -> None:
        self._unsubscribe = self._edge.subscribe(self._local)
        self._follower = asyncio.create_task(self._follow(), name="web-live-follow")
        # Pages opened right after start-up must not miss another process's events.
        await asyncio.wait_for(self._following.wait(), timeout=10)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def _local(self, event: Event) -> None:
        self._publish(event)

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                async with self._edge.follow() as feed:
                    self._following.set()
                    failures = 0
                    async for event in feed:
                        self._publish(event)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis went away: follow again, the pages reload
                wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("live event feed broke (%s); following again in %gs", e, wait)
                self._following.set()  # start() must not wait for a Redis that is down
                await asyncio.sleep(wait)

    def _publish(self, event: Event) -> None:
        if event.id in self._seen:
            return
        self._seen[event.id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        for watcher in tuple(self._watchers):
            watcher.offer(event)

    def close_all(self) -> None:
        """End every open stream (server shutdown): browsers reconnect elsewhere."""
        for watcher in tuple(self._watchers):
            watcher.sse.stop_streaming()

    @property
    def watching(self) -> int:
        """How many pages are live on this process."""
        return len(self._watchers)

    async def stream(self, request: web.Request, signal: Signal) -> web.StreamResponse:
        """The SSE response of one page: a ``hello`` at once (the page then knows it
        is live), then coalesced signals until the browser goes away."""
        async with sse_response(request, ping_interval=PING_SECONDS) as sse:
            watcher = Watcher(signal, sse)
            self._watchers.add(watcher)
            pump = asyncio.create_task(watcher.pump())
            try:
                await sse.send("live", event="hello")
                await sse.wait()  # until the browser leaves or close_all
            finally:
                self._watchers.discard(watcher)
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        return sse


def desk_signal(event: Event) -> str | None:
    return "desk" if event.kind in DESK_KINDS else None


def ticket_signal(ticket_id: str, conversation_id: str) -> Signal:
    def signal(event: Event) -> str | None:
        if event.ticket_id == ticket_id or event.conversation_id == conversation_id:
            return "ticket"
        return desk_signal(event)

    return signal
