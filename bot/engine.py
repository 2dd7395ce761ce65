"""The conversation engine: one customer message in, the right thing out.

Under the conversation's lock the engine drops a provider's retry of a message it
already handled, records who wrote (the contact) and the message itself, then hands
the rest to a :class:`~bot.turn.Turn`, which walks the decision order. Carrier
keywords (STOP/START/HELP) and media the bot cannot read take the same lock and
dedupe, so they keep their place in the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import replace

from bot import i18n, logs, pending
from bot.clock import stable_id
from bot.content import Content, ContentHolder
from bot.errors import LockTimeout
from bot.events import Recorder
from bot.language import guess_locale
from bot.masking import Masking
from bot.models import (
    EMPTY,
    CarrierKeyword,
    Contact,
    Conversation,
    Direction,
    EventKind,
    Identity,
    InboundMessage,
    Message,
    OutboundMessage,
    Ticket,
    media_data,
    normalize_locale,
)
from bot.outbox import Outbox
from bot.store import Lease, Store
from bot.store.base import TurnStart, TurnWrite
from bot.turn import Outcome, Turn, TurnParts

log = logging.getLogger(__name__)

#: What agents are told a carrier keyword did (agent-facing, English).
KEYWORD_NOTES = {
    CarrierKeyword.OPT_OUT: "opted out: nothing more reaches them on {channel} until START",
    CarrierKeyword.OPT_IN: "opted back in on {channel}",
    CarrierKeyword.HELP: "carrier HELP keyword: answered with the help text",
}

#: Longest customer message kept (Telegram sends at most 4,096 characters, Twilio 1,600).
MAX_MESSAGE_CHARS = 8000
#: A UTF-16 surrogate on its own (JSON's "\ud800" decodes to one): not encodable.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(inbound: InboundMessage) -> InboundMessage:
    """The message with every lone surrogate replaced by U+FFFD (issue 11): kept, and
    storable and sendable, instead of a UnicodeEncodeError (a 500 retried for ever)."""

    def clean(text: str) -> str:
        return _LONE_SURROGATE.sub("\ufffd", text)

    fields = (inbound.text, inbound.name, *inbound.attributes.values())
    if not any(_LONE_SURROGATE.search(value) for value in fields):
        return inbound
    return replace(
        inbound,
        text=clean(inbound.text),
        name=clean(inbound.name),
        attributes={k: clean(v) for k, v in inbound.attributes.items()},
    )


class Engine:
    """Turns customer messages into turns: the lock, the dedupe, the contact, then
    :class:`~bot.turn.Turn` walks the decision order."""

    def __init__(
        self, store: Store, parts: TurnParts, content: ContentHolder | None = None
    ) -> None:
        self.store = store
        self._base = parts
        #: Where each turn takes its KB, flows and triage (issue 16: swapped between turns).
        self.content = content
        self._parts_of: tuple[Content, TurnParts] | None = None
        self._outbox: Outbox = parts.outbox
        self._recorder: Recorder = parts.recorder

    @property
    def parts(self) -> TurnParts:
        """The parts of the next turn: the engine's own, with the current content."""
        if self.content is None:
            return self._base
        content = self.content.current
        if self._parts_of is None or self._parts_of[0] is not content:
            self._parts_of = (content, content.turn_parts(self._base))
        return self._parts_of[1]

    async def handle(self, inbound: InboundMessage) -> Outcome:
        """Process one inbound message. A provider retry of the same message is a no-op.

        Two store steps (issue 18): :meth:`Store.begin_turn` takes the conversation's
        lock and reads what the turn needs; the turn decides, collecting what it
        produced (:mod:`bot.pending`); :meth:`Store.commit_turn` writes all of it (the
        transcript lines, the conversation, the events, the replies in the durable
        outbox, the dedupe mark) and gives the lock back, in one atomic step. A
        handoff adds one desk step in between (the ticket, opened once per message).

        A failure before the commit writes nothing of the turn: it raises, the adapter
        answers 5xx, and the provider's retry is processed instead of being dropped as a
        duplicate. Replies are sent after the commit, never under the lock. Carrier
        keywords and media take the same lock and dedupe as text, so they keep their
        order in the conversation and a redelivery is never handled twice.
        """
        inbound = _without_lone_surrogates(inbound)
        if len(inbound.text) > MAX_MESSAGE_CHARS:
            # Bounded, not refused: the customer's words are kept up to a size no
            # channel sends, so one pasted log cannot bloat transcripts or matching.
            inbound = replace(inbound, text=inbound.text[:MAX_MESSAGE_CHARS])
        inbound = self._masked(inbound)
        key = f"in:{inbound.channel}:{inbound.provider_message_id}"
        conversation_id = stable_id("cnv", inbound.channel, inbound.address)
        parts = self.parts  # one content version for the whole turn, whatever is published
        settings = parts.settings
        identity = Identity(inbound.channel, inbound.address)
        start = await self._begin_turn(conversation_id, key, identity)
        if start.open_ticket is not None:
            logs.ticket(start.open_ticket.number)
        if start.seen or start.lease is None:
            log.info(
                "duplicate %s message %s dropped", inbound.channel, inbound.provider_message_id
            )
            return Outcome.DUPLICATE
        lease = start.lease
        write = TurnWrite(
            conversation_id,
            lease=lease,
            seen_key=key,
            seen_ttl_seconds=settings.dedupe_ttl_seconds,
        )
        try:
            with pending.collecting(write) as turn_write:
                outcome = await self._decide(parts, inbound, start, write)
            committed = await self.store.commit_turn(write)
        except BaseException:
            # Give the lock back now, so the provider's retry need not wait for its ttl
            # (the lease fences it: a no-op when the lock has moved on).
            with contextlib.suppress(Exception):
                await self.store.unlock(lease)
            raise
        await self._recorder.announce(write.events)
        await self._outbox.deliver(write, committed.outbox_leased)
        for action in turn_write.after:
            try:
                await action()
            except Exception:  # the turn is stored; a workspace's failure is its own
                log.exception("after turn %s: workspace notification failed", conversation_id)
        return outcome

    async def _begin_turn(self, conversation_id: str, key: str, identity: Identity) -> TurnStart:
        """:meth:`Store.begin_turn`, waiting a bounded time for a held lock (issue 11:
        far shorter than a provider's timeout; past it, :class:`LockTimeout`, a quick
        503 the provider retries)."""
        settings = self.parts.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.lock_wait_seconds
        pause = 0.002
        while True:
            start = await self.store.begin_turn(
                conversation_id, key, identity, settings.lock_ttl_seconds
            )
            if start is not None:
                return start
            if loop.time() >= deadline:
                raise LockTimeout(conversation_id)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def _decide(
        self, parts: TurnParts, inbound: InboundMessage, start: TurnStart, write: TurnWrite
    ) -> Outcome:
        """The decision order, collecting writes into ``write``."""
        assert start.lease is not None
        conversation_id = write.conversation_id
        contact = self._heard_from(inbound, start.contact, write)
        # Derived from the provider's id: a retry of a turn that failed half-way
        # writes the same transcript lines, each once (Store.append_message).
        inbound_id = stable_id("msg", inbound.channel, inbound.provider_message_id)
        with self._outbox.turn(inbound_id):
            if inbound.keyword is not None and await self._keyword(
                conversation_id, inbound, contact, write
            ):
                if start.open_ticket is not None:
                    self._keyword_to_agents(start.open_ticket, inbound, contact, inbound_id, write)
                return Outcome.KEYWORD
            if inbound.media and not inbound.text.strip() and start.open_ticket is None:
                await self._unsupported(conversation_id, inbound, contact)
                return Outcome.UNSUPPORTED
            turn = await self._start(
                parts, conversation_id, inbound, start.lease, start, contact, inbound_id, write
            )
            outcome = await turn.run()
            write.conversation = turn.conversation
            return outcome

    def _masked(self, inbound: InboundMessage) -> InboundMessage:
        """Card and CPF numbers masked before anything stores, shows or logs the text
        (:mod:`bot.masking`); the raw payload, which holds them too, is dropped."""
        settings = self.parts.settings
        masking = Masking(cards=settings.mask_card_numbers, cpf=settings.mask_cpf)
        if not masking.enabled:
            return inbound
        locale = normalize_locale(inbound.locale, settings.default_locale)
        masked = masking.mask(inbound.text, locale)
        return inbound if masked == inbound.text else replace(inbound, text=masked, raw=EMPTY)

    def _heard_from(
        self, inbound: InboundMessage, contact: Contact | None, write: TurnWrite
    ) -> Contact:
        """The contact who wrote, created on first contact, with what this message tells
        (saved with the turn when new or changed)."""
        # A channel that cannot tell the language (SMS, WhatsApp): the customer's words
        # can, when they clearly do ("ok" does not, and changes nothing). A first
        # message has no language to keep: less evidence is enough ("thanks, bye").
        written_in = (
            None if inbound.locale_known else guess_locale(inbound.text, first=contact is None)
        )
        if contact is None:
            contact = Contact(
                id=stable_id("ct", inbound.channel, inbound.address),
                identities=(Identity(inbound.channel, inbound.address),),
                locale=written_in
                or normalize_locale(inbound.locale, self.parts.settings.default_locale),
                name=inbound.name,
                attributes=dict(inbound.attributes),
            )
            write.contact = contact
            return contact
        updated = contact
        if written_in is not None and written_in != contact.locale:
            updated = replace(updated, locale=written_in)
        if contact.unreachable:
            # They wrote to us, so the channel reaches them again (e.g. a Telegram user
            # who had blocked the bot and unblocked it).
            updated = replace(updated, unreachable=False)
        if any(contact.attributes.get(k) != v for k, v in inbound.attributes.items()):
            updated = replace(updated, attributes={**contact.attributes, **inbound.attributes})
        if updated != contact:
            write.contact = updated
        return updated

    async def _keyword(
        self, conversation_id: str, inbound: InboundMessage, contact: Contact, write: TurnWrite
    ) -> bool:
        """Carrier compliance: nothing more is sent after STOP until START. False when the
        keyword is an ordinary message here (START from someone who never stopped)."""
        keyword = inbound.keyword
        outbox = self._outbox
        if keyword is CarrierKeyword.HELP:
            help_text = OutboundMessage(i18n.text("keyword_help", contact.locale))
            await outbox.notice(
                conversation_id, inbound.channel, inbound.address, help_text, contact
            )
            return True
        if keyword is CarrierKeyword.OPT_IN and not contact.opted_out:
            return False
        opt_out = keyword is CarrierKeyword.OPT_OUT
        contact = replace(contact, opted_out=opt_out)
        write.contact = contact
        kind = EventKind.OPTED_OUT if opt_out else EventKind.OPTED_IN
        await self._recorder.record(
            kind,
            conversation_id=conversation_id,
            channel=inbound.channel,
            keyword=inbound.text.strip().casefold(),
            provider_message_id=inbound.provider_message_id,
        )
        log.info("%s in conversation %s", kind.value, conversation_id)
        if not opt_out:
            welcome = OutboundMessage(i18n.text("opted_in", contact.locale))
            await outbox.notice(conversation_id, inbound.channel, inbound.address, welcome, contact)
        return True

    def _keyword_to_agents(
        self,
        ticket: Ticket,
        inbound: InboundMessage,
        contact: Contact,
        inbound_id: str,
        write: TurnWrite,
    ) -> None:
        """A carrier keyword while agents own the conversation: they see it in the
        ticket (and transcript) with what it did, since after STOP nothing they write
        reaches the customer until START."""
        keyword = inbound.keyword
        assert keyword is not None
        message = Message(
            id=inbound_id,
            conversation_id=ticket.conversation_id,
            direction=Direction.INBOUND,
            text=f"{inbound.text.strip()} [{KEYWORD_NOTES[keyword].format(channel=inbound.channel)}]",
            at=inbound.received_at,
            author=contact.name,
            provider_message_id=inbound.provider_message_id,
        )
        write.messages.append(message)

        async def tell_agents() -> None:
            view = await self.parts.views.view(ticket)
            await self.parts.workspaces.customer_message(view, message)

        if self.parts.workspaces:
            pending_write = pending.current(ticket.conversation_id)
            assert pending_write is not None
            pending_write.later(tell_agents)

    async def _unsupported(
        self, conversation_id: str, inbound: InboundMessage, contact: Contact
    ) -> None:
        """Media outside a ticket: noted, and a polite "text only" reply."""
        await self._recorder.record(
            EventKind.MESSAGE_UNSUPPORTED,
            conversation_id=conversation_id,
            channel=inbound.channel,
            **media_data(inbound.media),
        )
        reply = OutboundMessage(i18n.text("unsupported_media", contact.locale))
        await self._outbox.notice(conversation_id, inbound.channel, inbound.address, reply, contact)

    async def _start(
        self,
        parts: TurnParts,
        conversation_id: str,
        inbound: InboundMessage,
        lease: Lease,
        start: TurnStart,
        contact: Contact,
        inbound_id: str,
        write: TurnWrite,
    ) -> Turn:
        now = inbound.received_at
        conversation = start.conversation
        if conversation is None:
            conversation = Conversation(
                id=conversation_id,
                contact_id=contact.id,
                channel=inbound.channel,
                address=inbound.address,
                locale=contact.locale,
                created_at=now,
                updated_at=now,
            )
        message = Message(
            id=inbound_id,
            conversation_id=conversation.id,
            direction=Direction.INBOUND,
            text=inbound.transcript_text,
            at=now,
            author=contact.name,
            provider_message_id=inbound.provider_message_id,
        )
        write.messages.append(message)
        await self._recorder.record(
            EventKind.MESSAGE_IN,
            conversation_id=conversation.id,
            ticket_id=conversation.ticket_id,
            channel=inbound.channel,
            message_id=message.id,
        )
        if conversation.locale != contact.locale and not inbound.locale_known:
            # the customer now writes in another language (_heard_from): replies follow
            conversation = conversation.changed(locale=contact.locale)
        return Turn(
            parts,
            conversation.changed(updated_at=now),
            contact,
            inbound,
            message,
            lease,
            start.open_ticket,
            start.recent,
        )
