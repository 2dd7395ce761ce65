"""Everything that leaves the engine: messages to customers and news to agents.

Every outbound customer message is written to the transcript *before* it is sent,
and a failed delivery is an event on the conversation (agents see it); nothing is
dropped silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.clock import Clock, Ids
from bot.errors import DeliveryError
from bot.models import (
    Contact,
    Conversation,
    Direction,
    Event,
    EventKind,
    Message,
    OutboundMessage,
)
from bot.ports import AgentWorkspace, ChannelSender, TicketChangeKind, TicketView
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass
class _TurnLines:
    """The ids of the lines one turn writes: ``<inbound id>.1``, ``.2`` ..."""

    base: str
    count: int = 0
    active: bool = True


_TURN_LINES: contextvars.ContextVar[_TurnLines | None] = contextvars.ContextVar(
    "escala_turn_lines", default=None
)


class Outbox:
    """Sends to customers on whatever channel their conversation is on."""

    def __init__(self, store: Store, clock: Clock, ids: Ids) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._senders: dict[str, ChannelSender] = {}

    def register(self, channel: str, sender: ChannelSender) -> None:
        self._senders[channel] = sender

    @contextlib.contextmanager
    def turn(self, inbound_id: str) -> Iterator[None]:
        """Within: the transcript lines :meth:`send` writes get ids derived from the
        inbound message's, in order. A turn retried after a store failure makes the
        same lines with the same ids, and the store writes each once."""
        lines = _TurnLines(inbound_id)
        token = _TURN_LINES.set(lines)
        try:
            yield
        finally:
            lines.active = False  # a task spawned in the turn must not keep counting
            _TURN_LINES.reset(token)

    def _line_id(self) -> str:
        lines = _TURN_LINES.get()
        if lines is None or not lines.active:
            return self._ids.new("msg")
        lines.count += 1
        return f"{lines.base}.{lines.count}"

    async def send(
        self,
        conversation: Conversation,
        message: OutboundMessage,
        *,
        direction: Direction = Direction.BOT,
        author: str = "",
        contact: Contact | None = None,
    ) -> None:
        """Record ``message`` in the transcript, then deliver it (or record why not).

        ``contact``: the conversation's contact when the caller has just read it (a
        turn does, under the conversation's lock), saving a store round trip.
        """
        record = Message(
            id=self._line_id(),
            conversation_id=conversation.id,
            direction=direction,
            text=message.text,
            at=self._clock.now(),
            author=author,
        )
        await self._store.append_message(record)
        if contact is None or contact.id != conversation.contact_id:
            contact = await self._store.get_contact(conversation.contact_id)
        if contact is not None and (contact.opted_out or contact.unreachable):
            why = "opted out" if contact.opted_out else "unreachable"
            await self._failed(conversation, record, f"not sent: contact {why}")
            return
        sender = self._senders.get(conversation.channel)
        if sender is None:
            await self._failed(
                conversation, record, f"no sender for channel {conversation.channel}"
            )
            return
        try:
            await sender.send(conversation.address, message, conversation.locale)
        except DeliveryError as e:
            await self._failed(conversation, record, e.reason)

    async def notice(
        self,
        conversation_id: str,
        channel: str,
        address: str,
        message: OutboundMessage,
        contact: Contact,
    ) -> None:
        """A reply outside the conversation's turns (a carrier keyword's answer, the
        "text only" reply to media), kept out of the transcript like the message it
        answers; never sent to a contact who opted out or cannot be reached."""
        if contact.opted_out or contact.unreachable:
            return
        sender = self._senders.get(channel)
        reason = f"no sender for channel {channel}"
        if sender is not None:
            try:
                await sender.send(address, message, contact.locale)
                return
            except DeliveryError as e:
                reason = e.reason
        await self._delivery_failed(
            conversation_id, None, reason, channel=channel, text=message.text[:80]
        )

    async def _failed(self, conversation: Conversation, record: Message, reason: str) -> None:
        await self._delivery_failed(
            conversation.id,
            conversation.ticket_in_view,
            reason,
            message_id=record.id,
            channel=conversation.channel,
        )

    async def _delivery_failed(
        self, conversation_id: str, ticket_id: str | None, reason: str, **data: object
    ) -> None:
        """The one record of a message that did not reach the customer (agents see it)."""
        log.warning("delivery failed in conversation %s: %s", conversation_id, reason)
        await self._store.append_event(
            Event(
                id=self._ids.new("evt"),
                kind=EventKind.DELIVERY_FAILED,
                at=self._clock.now(),
                conversation_id=conversation_id,
                ticket_id=ticket_id,
                data={"reason": reason, **data},
            )
        )


class Workspaces:
    """Fans ticket news out to every agent workspace (Slack, console ...).

    A failing workspace never breaks the customer's journey: the ticket is already
    safe in its queue, so the error is logged and recorded as an event.
    """

    def __init__(self, store: Store, clock: Clock, ids: Ids) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._workspaces: list[AgentWorkspace] = []

    def add(self, workspace: AgentWorkspace) -> None:
        self._workspaces.append(workspace)

    @property
    def attached(self) -> Sequence[AgentWorkspace]:
        return tuple(self._workspaces)

    async def ticket_opened(self, view: TicketView) -> None:
        for workspace in self._workspaces:
            try:
                await workspace.ticket_opened(view)
            except Exception as e:  # a workspace outage must not lose the customer's turn
                await self._failed(view, workspace, "ticket_opened", e)

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        for workspace in self._workspaces:
            try:
                await workspace.ticket_changed(view, change)
            except Exception as e:
                await self._failed(view, workspace, f"ticket_changed:{change}", e)

    async def customer_message(self, view: TicketView, message: Message) -> None:
        for workspace in self._workspaces:
            try:
                await workspace.customer_message(view, message)
            except Exception as e:
                await self._failed(view, workspace, "customer_message", e)

    async def _failed(
        self, view: TicketView, workspace: AgentWorkspace, what: str, error: Exception
    ) -> None:
        name = type(workspace).__name__
        log.exception("workspace %s failed on %s for ticket %s", name, what, view.ticket.label)
        await self._store.append_event(
            Event(
                id=self._ids.new("evt"),
                kind=EventKind.DELIVERY_FAILED,
                at=self._clock.now(),
                conversation_id=view.conversation.id,
                ticket_id=view.ticket.id,
                data={"workspace": name, "what": what, "reason": str(error)},
            )
        )
