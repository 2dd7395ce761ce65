"""Proactive first-response SLA alerts.

Every time a ticket enters a tier's queue, :meth:`Deadlines.arm_first_response` sets the store timer ``sla:<ticket id>:<tier>`` at ``queued_at`` plus the tier's
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
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.events import Recorder
from bot.models import EventKind, Ticket, TicketState
from bot.ports import TicketChangeKind
from bot.store.base import DedupeStore, DeskStore
from bot.tiers import TierMap
from bot.timers import Timers
from bot.views import Views
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

#: The timer kind of a first-response deadline: ``sla:<ticket id>:<tier>``.
SLA_TIMER = "sla"

#: How long "this stay in the queue already alerted" is remembered (a small key).
ALERT_MARK_SECONDS = 90 * 24 * 3600


def waiting_for_first_response(ticket: Ticket, tier: str) -> bool:
    return (
        ticket.state is TicketState.QUEUED
        and ticket.tier == tier
        and (ticket.first_response_at is None or ticket.first_response_at < ticket.queued_at)
    )


class Deadlines:
    """When each tier promised a first response, and the timers that watch it."""

    def __init__(self, tiers: TierMap, timers: Timers) -> None:
        self._tiers = tiers
        self._timers = timers

    def first_response_due(self, ticket: Ticket) -> datetime | None:
        """When the ticket's current tier promised a first response (None for a tier
        no longer configured)."""
        tier = self._tiers.get(ticket.tier)
        if tier is None:
            return None
        return ticket.queued_at + timedelta(minutes=tier.first_response_minutes)

    async def arm_first_response(self, ticket: Ticket) -> None:
        """Set the timer that alerts agents if ``ticket`` is still waiting at its tier's
        deadline. Called whenever a ticket enters a queue: opened, escalated (a new
        tier: a new timer), released (the same timer, moved)."""
        due = self.first_response_due(ticket)
        if due is not None:
            await self._timers.schedule(SLA_TIMER, f"{ticket.id}:{ticket.tier}", due)


class FirstResponseAlerts:
    def __init__(
        self,
        desk: DeskStore,
        marks: DedupeStore,
        deadlines: Deadlines,
        tiers: TierMap,
        views: Views,
        recorder: Recorder,
        workspaces: Workspaces,
        clock: Clock,
        timers: Timers,
    ) -> None:
        self._desk = desk
        self._marks = marks
        self._deadlines = deadlines
        self._tiers = tiers
        self._views = views
        self._recorder = recorder
        self._workspaces = workspaces
        self._clock = clock
        timers.on(SLA_TIMER, self.due)

    async def due(self, key: str) -> None:
        """The timer ``sla:<key>`` fired; ``key`` is ``<ticket id>:<tier>``."""
        ticket_id, _, tier = key.partition(":")
        ticket = await self._desk.get_ticket(ticket_id)
        if ticket is None or not waiting_for_first_response(ticket, tier):
            return
        deadline = self._deadlines.first_response_due(ticket)
        if deadline is None:
            return
        now = self._clock.now()
        if now < deadline:  # the tier's promise grew since the timer was set
            await self._deadlines.arm_first_response(ticket)
            return
        queued_at = ticket.queued_at.isoformat()
        # The store's atomic dedupe mark claims this alert: two processes firing a timer
        # for the same stay in the queue (a release re-arms it) cannot both alert.
        if not await self._marks.mark_seen(f"{SLA_TIMER}:{key}:{queued_at}", ALERT_MARK_SECONDS):
            return
        waited = int((now - ticket.queued_at).total_seconds() // 60)
        promise = self._tiers.tier(tier).first_response_minutes
        await self._recorder.record(
            EventKind.SLA_BREACHED,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            tier=tier,
            queued_at=queued_at,
            promise_minutes=promise,
            waited_minutes=waited,
        )
        log.warning("%s in %s: first response overdue (%d min)", ticket.label, tier, waited)
        view = await self._views.view(ticket, note=f"first response overdue ({waited} min)")
        await self._workspaces.ticket_changed(view, TicketChangeKind.SLA_BREACHED)
