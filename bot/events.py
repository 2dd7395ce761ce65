"""The one event recorder: every state change is written here, and only here.

Every fact Escala records ("a message came in", "ticket #1042 was claimed", "a reply
did not reach the customer") is an :class:`~bot.models.Event` of a typed
:class:`~bot.models.EventKind`, appended to the store's event log by
:meth:`Recorder.record`. Observers (metrics, live consoles over SSE, audit logs)
subscribe once instead of adding call sites: a listener is called with every event
this process records, after the store accepted it.

A listener's failure is logged and never reaches the code that recorded the event:
observing must not break a customer's turn. Listeners run in the recording task, in
subscription order, so they see events in the order they happened; a listener that
needs slow work (network) should queue it and return.

Events written by *other* processes reach a process through the store (the event log
of a shared Redis), not through these listeners.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot import pending
from bot.clock import Clock, Ids
from bot.models import Event, EventKind
from bot.store.base import EventLog

log = logging.getLogger(__name__)

#: Called with every event this process records.
Listener = Callable[[Event], Awaitable[None]]


class Recorder:
    def __init__(self, log_store: EventLog, clock: Clock, ids: Ids) -> None:
        self._store = log_store
        self._clock = clock
        self._ids = ids
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event recorded from now on; returns a function
        that unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def record(
        self,
        kind: EventKind,
        *,
        conversation_id: str | None = None,
        ticket_id: str | None = None,
        **data: Any,
    ) -> Event:
        """Append one event to the store's log, then tell the listeners.

        Inside a turn of the event's conversation (:mod:`bot.pending`) the event is
        written with the rest of the turn, and listeners hear of it once the turn is
        committed (:meth:`announce`). Raises the store's error when the event could not
        be written (the caller's turn fails and is retried, as for any store failure)."""
        if not isinstance(kind, EventKind):  # typed kinds only: reports group by them
            raise TypeError(f"not an EventKind: {kind!r}")
        event = Event(
            id=self._ids.new("evt"),
            kind=kind,
            at=self._clock.now(),
            conversation_id=conversation_id,
            ticket_id=ticket_id,
            data=data,
        )
        turn = pending.current(conversation_id) if conversation_id is not None else None
        if turn is not None:
            turn.write.events.append(event)
            return event
        await self._store.append_event(event)
        await self.announce((event,))
        return event

    async def announce(self, events: Iterable[Event]) -> None:
        """Tell the listeners of events the store has just accepted (a turn's, after
        its commit)."""
        for event in events:
            for listener in tuple(self._listeners):
                try:
                    await listener(event)
                except Exception:  # an observer's bug must not fail the turn that recorded
                    log.exception("event listener %r failed on %s", listener, event.kind)

    async def delivery_failed(
        self,
        reason: str,
        *,
        conversation_id: str | None,
        ticket_id: str | None = None,
        **data: Any,
    ) -> Event:
        """The one record of something that did not reach a customer or a workspace
        (agents see it on the ticket). ``data`` says where: channel, message id,
        workspace ..."""
        log.warning("delivery failed in conversation %s: %s", conversation_id, reason)
        return await self.record(
            EventKind.DELIVERY_FAILED,
            conversation_id=conversation_id,
            ticket_id=ticket_id,
            reason=reason,
            **data,
        )
