"""Handoff: a conversation becomes a ticket in a human tier's queue.

The customer is told the ticket number and the promise in force (the rule's, else the
tier's), in calendar time: "em até 15 minutos" inside hours, or when we open and the
actual deadline outside them (:meth:`bot.sla.Deadlines.promise_text`); agents are told by
the caller once the conversation is saved (the ticket is safe whatever a workspace
does).
"""

from __future__ import annotations

from dataclasses import replace

from bot import i18n, logs
from bot.access_code import access_code
from bot.clock import Clock, Ids
from bot.events import Recorder
from bot.models import (
    Contact,
    Conversation,
    EventKind,
    OutboundMessage,
    Ticket,
    TicketState,
    TriageDecision,
)
from bot.outbox import Outbox
from bot.sla import Deadlines
from bot.store.base import DeskStore
from bot.tiers import TierMap


class Handoff:
    def __init__(
        self,
        desk: DeskStore,
        tiers: TierMap,
        deadlines: Deadlines,
        outbox: Outbox,
        recorder: Recorder,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self._desk = desk
        self._tiers = tiers
        self._deadlines = deadlines
        self._outbox = outbox
        self._recorder = recorder
        self._clock = clock
        self._ids = ids

    async def open(
        self, conversation: Conversation, decision: TriageDecision, opened_by: str
    ) -> Ticket:
        """Open a ticket in the decided tier's queue: the turn's desk step (issue 18),
        once per customer message (``opened_by``): a retried turn gets the ticket its
        first attempt opened, with the same number."""
        now = self._clock.now()
        return await self._desk.open_handoff(
            Ticket(
                id=self._ids.new("tkt"),
                number=0,  # the store numbers it in the same step
                conversation_id=conversation.id,
                tier=decision.tier,
                priority=decision.priority,
                state=TicketState.QUEUED,
                created_at=now,
                queued_at=now,
                skills=decision.skills,
                private=decision.private,
                reasons=decision.reasons,
                tier_history=(decision.tier,),
                terms=decision.terms,
                opened_by=opened_by,
            )
        )

    async def confirm(
        self,
        conversation: Conversation,
        ticket: Ticket,
        locale: str,
        *,
        rule: str | None,
        contact: Contact | None = None,
    ) -> Conversation:
        """The handoff's outcome, written with the turn: the conversation owned by the
        ticket, its SLA timers, the event, and the customer told the ticket number, its
        access code and the tier's promise. Returns the conversation to save."""
        now = self._clock.now()
        logs.ticket(ticket.number)
        await self._deadlines.arm(ticket)
        conversation = replace(
            conversation,
            ticket_id=ticket.id,
            last_ticket_id=ticket.id,
            flow=None,
            pending_choices=(),
            failed_attempts=0,
            csat_ticket_id=None,
        )
        await self._recorder.record(
            EventKind.HANDOFF,
            conversation_id=conversation.id,
            ticket_id=ticket.id,
            number=ticket.number,
            tier=ticket.tier,
            priority=ticket.priority.label,
            rule=rule,
            reasons=list(ticket.reasons),
            private=ticket.private,
        )
        sla, closed = self._deadlines.promise_text(ticket, locale, now)
        code = access_code(ticket)
        lines = [
            i18n.text("handoff", locale, ticket=ticket.label, code=code, tier=ticket.tier, sla=sla)
        ]
        if closed is not None:
            lines.append(closed)
        if ticket.private:
            lines.append(i18n.text("private_data", locale))
        await self._outbox.send(conversation, OutboundMessage("\n\n".join(lines)), contact=contact)
        return conversation
