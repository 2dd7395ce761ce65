"""Messages to customers, on whatever channel their conversation is on.

Every outbound customer message is written to the transcript *before* it is sent,
and a failed delivery is an event on the conversation (agents see it); nothing is
dropped silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from bot.clock import Clock, Ids
from bot.errors import DeliveryError
from bot.events import Recorder
from bot.models import Contact, Conversation, Direction, Message, OutboundMessage
from bot.ports import ChannelSender
from bot.store.base import ContactStore, ConversationStore

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

    def __init__(
        self,
        conversations: ConversationStore,
        contacts: ContactStore,
        recorder: Recorder,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self._conversations = conversations
        self._contacts = contacts
        self._recorder = recorder
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
        await self._conversations.append_message(record)
        if contact is None or contact.id != conversation.contact_id:
            contact = await self._contacts.get_contact(conversation.contact_id)
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
        await self._recorder.delivery_failed(
            reason, conversation_id=conversation_id, channel=channel, text=message.text[:80]
        )

    async def _failed(self, conversation: Conversation, record: Message, reason: str) -> None:
        await self._recorder.delivery_failed(
            reason,
            conversation_id=conversation.id,
            ticket_id=conversation.ticket_in_view,
            message_id=record.id,
            channel=conversation.channel,
        )
