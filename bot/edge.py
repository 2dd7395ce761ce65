"""The one port adapters talk to the core through.

Customer channels (Telegram, Twilio, the terminal console, a web chat) and agent
workspaces (Slack, a web console) live in ``channels/`` and never reach into the
engine, the store or the desk's parts: they hold an :class:`Edge` and use the
protocol they need, :class:`ChannelPort` or :class:`WorkspacePort`. Everything an
adapter may do to the core is listed here, so a change inside ``bot/`` that keeps
this interface keeps every adapter working, and a new channel needs nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot import event_stream, kpis, logs
from bot.clock import Clock, Ids, stable_id
from bot.content import ContentVersions
from bot.desk import Desk
from bot.engine import Engine
from bot.events import Listener, Recorder
from bot.metrics import Metrics
from bot.models import (
    Choice,
    Contact,
    Direction,
    Event,
    EventKind,
    Identity,
    InboundMessage,
    Message,
    Ticket,
)
from bot.outbox import Outbox
from bot.ports import AgentWorkspace, ChannelSender, TicketView
from bot.settings import Settings
from bot.store import Store
from bot.store.base import Listening
from bot.tiers import TierMap
from bot.timers import Handler, Timers
from bot.turn import Outcome
from bot.users import Users
from bot.views import Views
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

#: How long a stopping channel may take to deliver what it queued when the server did
#: not say (``[server] shutdown_timeout_seconds``' default): tests, ``escala chat``.
STOP_SECONDS = 30.0

#: What a customer may see of their transcript (never private notes or system lines).
CUSTOMER_VISIBLE = frozenset({Direction.INBOUND, Direction.BOT, Direction.AGENT})


@dataclass(frozen=True)
class Replay:
    """What a customer missed: see :meth:`ChannelPort.replay`."""

    #: Their transcript lines after the one they last had, oldest first; customer
    #: messages, bot and agent replies only.
    messages: list[Message]
    #: The choices the conversation is waiting for an answer to (buttons to show again).
    choices: tuple[Choice, ...]
    #: False when ``after`` was not among the lines looked at (too old, or unknown): the
    #: messages are then the latest ones, and the client may have some of them already.
    found: bool


class ChannelPort(Protocol):
    """What a customer channel adapter may ask of the core."""

    def now(self) -> datetime:
        """The injected clock's time (for ``received_at``)."""
        ...

    def new_id(self, prefix: str) -> str: ...

    async def receive(self, inbound: InboundMessage) -> Outcome:
        """Hand one verified, translated customer message to the engine. It is stored
        (and deduplicated by its provider id) before this returns; a store failure
        raises, and the adapter answers the provider with an error so it retries."""
        ...

    def register_sender(self, channel: str, sender: ChannelSender) -> None:
        """Replies to conversations on ``channel`` go through ``sender``."""
        ...

    async def contact(self, channel: str, address: str) -> Contact | None:
        """Who writes from ``address`` on ``channel``, if they ever did."""
        ...

    async def update_contact(
        self,
        channel: str,
        address: str,
        *,
        unreachable: bool | None = None,
        opted_out: bool | None = None,
    ) -> None:
        """What the provider told us about a contact (blocked the bot, unsubscribed)."""
        ...

    async def locale(self, channel: str, address: str) -> str | None:
        """The conversation's locale, None for an address never seen."""
        ...

    async def current_ticket(self, channel: str, address: str) -> Ticket | None:
        """The conversation's open ticket, else its last one, else None."""
        ...

    async def record_status(
        self, channel: str, address: str, provider_message_id: str, status: str, **data: Any
    ) -> bool:
        """A provider's final delivery status for a message we sent; recorded once
        however often the provider repeats it (False for a repeat). ``undelivered``
        and ``failed`` are delivery failures agents see."""
        ...

    async def note(self, channel: str, address: str, kind: EventKind, **data: Any) -> None:
        """An event on the conversation of ``address`` (a template sent instead of the
        text ...), whether or not the engine has seen that conversation yet."""
        ...

    async def delivery_failed(self, channel: str, address: str, reason: str, **data: Any) -> None:
        """A reply that finally did not reach the customer (agents see it)."""
        ...

    def time_to_stop(self) -> float:
        """Seconds a stopping channel has left to deliver the replies it queued: what
        is left of ``[server] shutdown_timeout_seconds`` once in-flight messages are
        done. A reply not delivered by then stays in the outbox, for the next process."""
        ...

    def provider_call(self, channel: str, result: str, seconds: float) -> None:
        """One call to the provider's send API finished: ``result`` is ``ok``, ``retry``,
        ``failed``, ``not_sent`` or ``crashed`` (metrics; measured by the sender only)."""
        ...

    async def remember(self, key: str, value: str) -> None:
        """Keep a small value across processes (keys namespaced by the adapter)."""
        ...

    async def recall(self, key: str) -> str | None: ...

    async def replay(
        self, channel: str, address: str, after: str | None, *, limit: int = 100
    ) -> Replay:
        """The transcript lines the customer of ``address`` may see that come after the
        line ``after`` (all of the last ``limit`` when None): a channel with a live
        connection (web chat) resumes from it after a reconnect, so nothing sent while
        the customer was away is lost."""
        ...

    async def publish(self, topic: str, payload: str) -> None:
        """Tell every process listening on ``topic`` (fire and forget: see
        :class:`~bot.store.base.SignalStore`); topics are namespaced by the adapter."""
        ...

    async def listen(self, topic: str) -> Listening:
        """Hear what is published on ``topic`` from now on, from any process."""
        ...

    async def hit(self, key: str, window_seconds: int) -> int:
        """Count a hit on ``key`` (shared by every process) and return the hits in the
        current window: rate limits."""
        ...


class WorkspacePort(Protocol):
    """What an agent workspace adapter may ask of the core."""

    @property
    def desk(self) -> Desk:
        """Claim, reply, note, escalate, release, resolve: the rules live there once."""
        ...

    @property
    def tiers(self) -> TierMap: ...

    @property
    def settings(self) -> Settings: ...

    def now(self) -> datetime: ...

    def add_workspace(self, workspace: AgentWorkspace) -> None:
        """Tell ``workspace`` of every ticket opened, changed or written to."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event this process records."""
        ...

    def on_timer(self, kind: str, handler: Handler) -> None: ...

    async def schedule_in(self, kind: str, key: str, delay: timedelta) -> None: ...

    async def view(
        self,
        ticket: Ticket,
        *,
        actor: str | None = None,
        note: str = "",
        previous_tier: str | None = None,
        full_transcript: bool = False,
    ) -> TicketView: ...

    async def ticket(self, ticket_id: str) -> Ticket | None: ...

    async def events(
        self, *, conversation_id: str | None = None, ticket_id: str | None = None
    ) -> list[Event]: ...

    async def record(
        self,
        kind: EventKind,
        *,
        conversation_id: str | None = None,
        ticket_id: str | None = None,
        **data: Any,
    ) -> Event: ...

    async def first_time(self, key: str, ttl_seconds: int) -> bool:
        """True the first time ``key`` is seen within ``ttl_seconds`` (any process)."""
        ...

    def time_to_stop(self) -> float:
        """Seconds a stopping workspace has left to finish its agents' actions (see
        :meth:`ChannelPort.time_to_stop`)."""
        ...

    async def report(
        self,
        *,
        days: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> kpis.Report:
        """The desk's KPIs over the last ``days`` (None: all the event stream keeps),
        or over ``[start, end)`` when given (the web console's date range); render it
        with :func:`bot.kpis.render` (``/agent stats``, ``/escala stats``)."""
        ...

    async def remember(self, key: str, value: str) -> None: ...

    async def recall(self, key: str) -> str | None: ...

    # -- what a web console reads (issue 15) ----------------------------------------

    @property
    def users(self) -> Users:
        """Console logins: verify a password, a user's role, agent and UI language."""
        ...

    def follow(self) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Every event recorded from now on by *any* process sharing the store (a
        live feed for browsers; see :meth:`bot.store.base.EventLog.follow`).
        :meth:`subscribe` sees only this process's events, in the recording task."""
        ...

    async def recent_events(self, limit: int) -> list[Event]:
        """The last ``limit`` events of the whole log, oldest first."""
        ...

    async def waiting(self, tier: str) -> list[Ticket]:
        """The tier's queue, in the order take-next serves it."""
        ...

    async def assigned(self, agent_id: str) -> list[Ticket]: ...


class Edge:
    """The core as adapters see it: implements :class:`ChannelPort` and
    :class:`WorkspacePort` over the assembled parts (see :func:`bot.app.build`)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        engine: Engine,
        desk: Desk,
        outbox: Outbox,
        workspaces: Workspaces,
        recorder: Recorder,
        views: Views,
        timers: Timers,
        tiers: TierMap,
        clock: Clock,
        ids: Ids,
        metrics: Metrics | None = None,
        content: ContentVersions | None = None,
    ) -> None:
        self._metrics = metrics
        self._content = content
        self._settings = settings
        self._store = store
        self._engine = engine
        self._desk = desk
        self._outbox = outbox
        self._workspaces = workspaces
        self._recorder = recorder
        self._views = views
        self._timers = timers
        self._tiers = tiers
        self._clock = clock
        self._ids = ids
        self._users = Users(store, settings.agents)
        self._stop_by: float | None = None

    # -- both sides ---------------------------------------------------------------------

    @property
    def content(self) -> ContentVersions:
        """Admin content versions: publish, roll back, drafts (the studio, issue 16)."""
        if self._content is None:
            raise RuntimeError("this edge was built without content versions")
        return self._content

    @property
    def settings(self) -> Settings:
        return self._settings

    def now(self) -> datetime:
        return self._clock.now()

    def new_id(self, prefix: str) -> str:
        return self._ids.new(prefix)

    async def remember(self, key: str, value: str) -> None:
        await self._store.set_link(key, value)

    async def recall(self, key: str) -> str | None:
        return await self._store.get_link(key)

    # -- customer channels ------------------------------------------------------------

    async def replay(
        self, channel: str, address: str, after: str | None, *, limit: int = 100
    ) -> Replay:
        conversation_id = stable_id("cnv", channel, address)
        conversation = await self._store.get_conversation(conversation_id)
        if conversation is None:
            return Replay([], (), after is None)
        lines = await self._store.transcript(conversation_id, limit)
        found = after is None
        if after is not None:
            for index, line in enumerate(lines):
                if line.id == after:
                    lines, found = lines[index + 1 :], True
                    break
        visible = [line for line in lines if line.direction in CUSTOMER_VISIBLE]
        return Replay(visible, conversation.pending_choices, found)

    async def publish(self, topic: str, payload: str) -> None:
        await self._store.publish(topic, payload)

    async def listen(self, topic: str) -> Listening:
        return await self._store.listen(topic)

    async def hit(self, key: str, window_seconds: int) -> int:
        return await self._store.hit(key, window_seconds)

    async def receive(self, inbound: InboundMessage) -> Outcome:
        # The one place a turn is measured (issue 14): its log correlation id, and with
        # metrics on, its latency and outcome.
        with logs.conversation(stable_id("cnv", inbound.channel, inbound.address)):
            if self._metrics is None:
                outcome = await self._engine.handle(inbound)
            else:
                with self._metrics.turn(inbound.channel) as turn:
                    outcome = await self._engine.handle(inbound)
                    turn.finish(outcome)
            log.debug("%s message %s: %s", inbound.channel, inbound.provider_message_id, outcome)
            return outcome

    def stopping(self, within: float) -> None:
        """The server began to stop and must be done within ``within`` seconds
        (``[server] shutdown_timeout_seconds``): :meth:`time_to_stop` counts down."""
        self._stop_by = time.monotonic() + within

    def time_to_stop(self) -> float:
        if self._stop_by is None:
            return STOP_SECONDS
        return max(0.0, self._stop_by - time.monotonic())

    def provider_call(self, channel: str, result: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.provider_call(channel, result, seconds)

    def register_sender(self, channel: str, sender: ChannelSender) -> None:
        self._outbox.register(channel, sender)

    async def contact(self, channel: str, address: str) -> Contact | None:
        return await self._store.find_contact(Identity(channel, address))

    async def update_contact(
        self,
        channel: str,
        address: str,
        *,
        unreachable: bool | None = None,
        opted_out: bool | None = None,
    ) -> None:
        contact = await self._store.find_contact(Identity(channel, address))
        if contact is None:
            return
        updated = contact
        if unreachable is not None:
            updated = replace(updated, unreachable=unreachable)
        if opted_out is not None:
            updated = replace(updated, opted_out=opted_out)
        if updated != contact:
            await self._store.save_contact(updated)

    async def locale(self, channel: str, address: str) -> str | None:
        conversation = await self._store.get_conversation(stable_id("cnv", channel, address))
        return conversation.locale if conversation is not None else None

    async def current_ticket(self, channel: str, address: str) -> Ticket | None:
        conversation = await self._store.get_conversation(stable_id("cnv", channel, address))
        if conversation is None:
            return None
        open_ticket = await self._store.open_ticket_of(conversation.id)
        if open_ticket is not None:
            return open_ticket
        last = conversation.last_ticket_id
        return await self._store.get_ticket(last) if last else None

    async def record_status(
        self, channel: str, address: str, provider_message_id: str, status: str, **data: Any
    ) -> bool:
        key = f"status:{channel}:{provider_message_id}:{status}"
        settings = self._settings.engine
        conversation_id = stable_id("cnv", channel, address)
        # Under the conversation's lock, like messages: two deliveries of the same
        # callback at once cannot both pass is_seen and record it twice.
        async with self._store.lock(conversation_id, settings.lock_ttl_seconds):
            if await self._store.is_seen(key):
                return False
            if status in ("undelivered", "failed"):
                await self._recorder.delivery_failed(
                    f"{channel} {status}",
                    conversation_id=conversation_id,
                    channel=channel,
                    provider_message_id=provider_message_id,
                    status=status,
                    **data,
                )
            else:
                await self._recorder.record(
                    EventKind.DELIVERY_STATUS,
                    conversation_id=conversation_id,
                    channel=channel,
                    provider_message_id=provider_message_id,
                    status=status,
                    **data,
                )
            await self._store.mark_seen(key, settings.dedupe_ttl_seconds)
        return True

    async def note(self, channel: str, address: str, kind: EventKind, **data: Any) -> None:
        await self._recorder.record(
            kind, conversation_id=stable_id("cnv", channel, address), channel=channel, **data
        )

    async def delivery_failed(self, channel: str, address: str, reason: str, **data: Any) -> None:
        conversation_id = stable_id("cnv", channel, address)
        conversation = await self._store.get_conversation(conversation_id)
        await self._recorder.delivery_failed(
            reason,
            conversation_id=conversation_id,
            ticket_id=conversation.ticket_in_view if conversation else None,
            channel=channel,
            **data,
        )

    # -- agent workspaces ---------------------------------------------------------------

    @property
    def desk(self) -> Desk:
        return self._desk

    @property
    def tiers(self) -> TierMap:
        return self._tiers

    def add_workspace(self, workspace: AgentWorkspace) -> None:
        self._workspaces.add(workspace)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._recorder.subscribe(listener)

    def on_timer(self, kind: str, handler: Handler) -> None:
        self._timers.on(kind, handler)

    async def schedule_in(self, kind: str, key: str, delay: timedelta) -> None:
        await self._timers.schedule_in(kind, key, delay)

    async def view(
        self,
        ticket: Ticket,
        *,
        actor: str | None = None,
        note: str = "",
        previous_tier: str | None = None,
        full_transcript: bool = False,
    ) -> TicketView:
        return await self._views.view(
            ticket,
            actor=actor,
            note=note,
            previous_tier=previous_tier,
            full_transcript=full_transcript,
        )

    async def ticket(self, ticket_id: str) -> Ticket | None:
        return await self._store.get_ticket(ticket_id)

    async def events(
        self, *, conversation_id: str | None = None, ticket_id: str | None = None
    ) -> list[Event]:
        return await self._store.events(conversation_id=conversation_id, ticket_id=ticket_id)

    async def record(
        self,
        kind: EventKind,
        *,
        conversation_id: str | None = None,
        ticket_id: str | None = None,
        **data: Any,
    ) -> Event:
        return await self._recorder.record(
            kind, conversation_id=conversation_id, ticket_id=ticket_id, **data
        )

    async def first_time(self, key: str, ttl_seconds: int) -> bool:
        return await self._store.mark_seen(key, ttl_seconds)

    async def report(
        self,
        *,
        days: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> kpis.Report:
        end = end or self._clock.now()
        if start is None and days is not None:
            start = end - timedelta(days=days)
        return await event_stream.report(self._store, self._settings, start=start, end=end)

    # -- what a web console reads -----------------------------------------------------

    @property
    def users(self) -> Users:
        return self._users

    def follow(self) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._store.follow()

    async def recent_events(self, limit: int) -> list[Event]:
        return await self._store.recent_events(limit)

    async def waiting(self, tier: str) -> list[Ticket]:
        return await self._store.queue(tier)

    async def assigned(self, agent_id: str) -> list[Ticket]:
        return await self._store.assigned(agent_id)
