"""Ticket facts shared by the engine (customer side) and the desk (agent side):
events, the agent's view of a ticket, the customer's view of its status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot import i18n
from bot.clock import Clock, Ids
from bot.models import Event, Ticket, TicketState, Tier
from bot.ports import TicketView
from bot.store import Store
from bot.timers import Timers

#: The timer kind of a first-response deadline: ``sla:<ticket id>:<tier>``.
SLA_TIMER = "sla"


class Tickets:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: Ids,
        tiers: Sequence[Tier],
        card_context_messages: int,
        timers: Timers,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.timers = timers
        self.tiers = {tier.name: tier for tier in tiers}
        self._ordered = sorted(tiers, key=lambda t: t.level)
        self._context = card_context_messages

    def tier(self, name: str) -> Tier:
        """The tier a ticket is in; a tier removed from config still has a name to show."""
        return self.tiers.get(name) or Tier(name=name, level=99, first_response_minutes=0)

    def next_tier(self, name: str) -> Tier | None:
        current = self.tier(name)
        return next((t for t in self._ordered if t.level > current.level), None)

    def first_response_due(self, ticket: Ticket) -> datetime | None:
        """When the ticket's current tier promised a first response (None for a tier
        no longer configured)."""
        tier = self.tiers.get(ticket.tier)
        if tier is None:
            return None
        return ticket.queued_at + timedelta(minutes=tier.first_response_minutes)

    async def arm_first_response(self, ticket: Ticket) -> None:
        """Set the timer that alerts agents if ``ticket`` is still waiting at its tier's
        deadline (:mod:`bot.sla`). Called whenever a ticket enters a queue: opened,
        escalated (a new tier: a new timer), released (the same timer, moved)."""
        due = self.first_response_due(ticket)
        if due is not None:
            await self.timers.schedule(SLA_TIMER, f"{ticket.id}:{ticket.tier}", due)

    async def event(
        self,
        kind: str,
        *,
        conversation_id: str | None = None,
        ticket_id: str | None = None,
        **data: Any,
    ) -> None:
        await self.store.append_event(
            Event(
                id=self.ids.new("evt"),
                kind=kind,
                at=self.clock.now(),
                conversation_id=conversation_id,
                ticket_id=ticket_id,
                data=data,
            )
        )

    async def view(
        self,
        ticket: Ticket,
        *,
        actor: str | None = None,
        note: str = "",
        previous_tier: str | None = None,
        full_transcript: bool = False,
    ) -> TicketView:
        conversation = await self.store.get_conversation(ticket.conversation_id)
        if conversation is None:  # a ticket always belongs to a stored conversation
            raise LookupError(f"conversation {ticket.conversation_id} of {ticket.label} missing")
        contact = await self.store.get_contact(conversation.contact_id)
        limit = None if full_transcript else self._context
        transcript = await self.store.transcript(conversation.id, limit=limit)
        return TicketView(
            ticket=ticket,
            tier=self.tier(ticket.tier),
            conversation=conversation,
            contact=contact,
            transcript=transcript,
            actor=actor,
            note=note,
            previous_tier=previous_tier,
        )

    def sla(self, tier_name: str, locale: str) -> str:
        return i18n.duration(self.tier(tier_name).first_response_minutes, locale)

    async def status_text(self, ticket: Ticket | None, locale: str, asked: int | None) -> str:
        """What the customer is told about a ticket. No agent names or content: a ticket
        number is guessable, so a status answer reveals only state, tier and place."""
        if ticket is None:
            if asked is None:
                return i18n.text("status_none", locale)
            return i18n.text("status_not_found", locale, ticket=f"#{asked}")
        tier = self.tier(ticket.tier)
        if ticket.state is TicketState.QUEUED:
            queue = await self.store.queue(ticket.tier)
            position = next((i for i, t in enumerate(queue, 1) if t.id == ticket.id), len(queue))
            return i18n.text(
                "status_queued",
                locale,
                ticket=ticket.label,
                tier=tier.name,
                position=position,
                depth=max(len(queue), position),
                sla=self.sla(tier.name, locale),
            )
        if ticket.state is TicketState.ASSIGNED:
            return i18n.text("status_assigned", locale, ticket=ticket.label, tier=tier.name)
        return i18n.text("status_resolved", locale, ticket=ticket.label)
