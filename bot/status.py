"""What a customer is told about a ticket when they ask for its status."""

from __future__ import annotations

from bot import i18n
from bot.clock import Clock
from bot.models import Ticket, TicketState
from bot.sla import Deadlines
from bot.store.base import DeskStore
from bot.tiers import TierMap


class TicketStatus:
    def __init__(self, desk: DeskStore, tiers: TierMap, deadlines: Deadlines, clock: Clock) -> None:
        self._desk = desk
        self._tiers = tiers
        self._deadlines = deadlines
        self._clock = clock

    async def text(self, ticket: Ticket | None, locale: str, asked: int | None) -> str:
        """No agent names or content: a ticket number is guessable, so a status answer
        reveals only state, tier and place."""
        if ticket is None:
            if asked is None:
                return i18n.text("status_none", locale)
            return i18n.text("status_not_found", locale, ticket=f"#{asked}")
        tier = self._tiers.tier(ticket.tier)
        if ticket.state is TicketState.QUEUED:
            queue = await self._desk.queue(ticket.tier)
            position = next((i for i, t in enumerate(queue, 1) if t.id == ticket.id), len(queue))
            return i18n.text(
                "status_queued",
                locale,
                ticket=ticket.label,
                tier=tier.name,
                position=position,
                depth=max(len(queue), position),
                sla=self._deadlines.promise_text(ticket, locale, self._clock.now())[0],
            )
        if ticket.state is TicketState.ASSIGNED:
            return i18n.text("status_assigned", locale, ticket=ticket.label, tier=tier.name)
        return i18n.text("status_resolved", locale, ticket=ticket.label)
