"""Proactive first-response SLA alerts.

Every time a ticket enters a tier's queue, :meth:`bot.tickets.Tickets.arm_first_response`
sets the store timer ``sla:<ticket id>:<tier>`` at ``queued_at`` plus the tier's
``first_response_minutes``. When it is due, :class:`FirstResponseAlerts` checks that the
ticket is still waiting for that first response and, if so, records a
``ticket.sla_breached`` event and tells every agent workspace.

"Still waiting" means: queued, in the timer's tier, and no agent reply since it
entered that queue. A ticket claimed in time is not queued when the timer fires, so it
never alerts; a ticket released back (it keeps its place and ``queued_at``) alerts at
the original deadline, or at once when that deadline has passed and nobody answered;
an escalation arms a new timer for the new tier. One alert per stay in a queue: a
second timer for the same stay (a release after the alert) finds the mark and is
quiet (an atomic store mark, so two processes never both alert).
"""

from __future__ import annotations

import logging

from bot.models import EventKind, Ticket, TicketState
from bot.outbox import Workspaces
from bot.ports import TicketChangeKind
from bot.tickets import SLA_TIMER, Tickets

log = logging.getLogger(__name__)

#: How long "this stay in the queue already alerted" is remembered (a small key).
ALERT_MARK_SECONDS = 90 * 24 * 3600


def waiting_for_first_response(ticket: Ticket, tier: str) -> bool:
    return (
        ticket.state is TicketState.QUEUED
        and ticket.tier == tier
        and (ticket.first_response_at is None or ticket.first_response_at < ticket.queued_at)
    )


class FirstResponseAlerts:
    def __init__(self, tickets: Tickets, workspaces: Workspaces) -> None:
        self.tickets = tickets
        self.store = tickets.store
        self.workspaces = workspaces
        tickets.timers.on(SLA_TIMER, self.due)

    async def due(self, key: str) -> None:
        """The timer ``sla:<key>`` fired; ``key`` is ``<ticket id>:<tier>``."""
        ticket_id, _, tier = key.partition(":")
        ticket = await self.store.get_ticket(ticket_id)
        if ticket is None or not waiting_for_first_response(ticket, tier):
            return
        deadline = self.tickets.first_response_due(ticket)
        if deadline is None:
            return
        now = self.tickets.clock.now()
        if now < deadline:  # the tier's promise grew since the timer was set
            await self.tickets.arm_first_response(ticket)
            return
        queued_at = ticket.queued_at.isoformat()
        # The store's atomic dedupe mark claims this alert: two processes firing a timer
        # for the same stay in the queue (a release re-arms it) cannot both alert.
        if not await self.store.mark_seen(f"{SLA_TIMER}:{key}:{queued_at}", ALERT_MARK_SECONDS):
            return
        waited = int((now - ticket.queued_at).total_seconds() // 60)
        promise = self.tickets.tier(tier).first_response_minutes
        await self.tickets.event(
            EventKind.SLA_BREACHED,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            tier=tier,
            queued_at=queued_at,
            promise_minutes=promise,
            waited_minutes=waited,
        )
        log.warning("%s in %s: first response overdue (%d min)", ticket.label, tier, waited)
        view = await self.tickets.view(ticket, note=f"first response overdue ({waited} min)")
        await self.workspaces.ticket_changed(view, TicketChangeKind.SLA_BREACHED)
