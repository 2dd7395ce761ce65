"""Breach policies: what happens when a promise is broken (issue 13).

When a promise timer fires (:mod:`bot.sla`) and the promise is still broken — for a
first response: the ticket is open in the timer's tier and no agent replied since it
entered that queue (claimed or not); for a resolution: it is still open in that tier —
the policy in force (:meth:`bot.sla.Deadlines.terms`: the rule's, else the tier's) runs
its actions in order: ``notify``, ``raise_priority``, ``reassign``, ``escalate``.

Every action, and the breach itself, is one atomic store step that carries its own
mark (:meth:`~bot.store.base.DeskStore.breach_step`): two processes firing the same
timer, or a timer fired again after a crash, take each action once, and only the
process whose step won records its event and tells anyone. The customer is never told
of a breach; they are told when their ticket moves tier (``escalate``).
"""

from __future__ import annotations

import logging

from bot import i18n
from bot.clock import Clock
from bot.events import Recorder
from bot.models import BreachAction, EventKind, OutboundMessage, Promise, Ticket
from bot.outbox import Outbox
from bot.ports import TicketChangeKind
from bot.sla import RESOLUTION_TIMER, SLA_TIMER, Deadlines, waiting_for_first_response
from bot.store import Store
from bot.store.base import Breach, ChangeError
from bot.tiers import TierMap
from bot.timers import Timers
from bot.views import Views
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

#: The reason an escalation on breach gives the next tier.
BREACH_REASON = "SLA breached"
WHAT = {Promise.FIRST_RESPONSE: "first response", Promise.RESOLUTION: "resolution"}


class BreachPolicies:
    """Handles the ``sla`` and ``sla-resolution`` timers."""

    def __init__(
        self,
        store: Store,
        deadlines: Deadlines,
        tiers: TierMap,
        views: Views,
        recorder: Recorder,
        workspaces: Workspaces,
        outbox: Outbox,
        clock: Clock,
        timers: Timers,
    ) -> None:
        self._store = store
        self._deadlines = deadlines
        self._tiers = tiers
        self._views = views
        self._recorder = recorder
        self._workspaces = workspaces
        self._outbox = outbox
        self._clock = clock
        timers.on(SLA_TIMER, self.first_response_due)
        timers.on(RESOLUTION_TIMER, self.resolution_due)

    async def first_response_due(self, key: str) -> None:
        """The timer ``sla:<key>`` fired; ``key`` is ``<ticket id>:<tier>``."""
        await self._due(key, Promise.FIRST_RESPONSE)

    async def resolution_due(self, key: str) -> None:
        """The timer ``sla-resolution:<key>`` fired."""
        await self._due(key, Promise.RESOLUTION)

    async def _due(self, key: str, promise: Promise) -> None:
        ticket_id, _, tier = key.partition(":")
        ticket = await self._store.get_ticket(ticket_id)
        if ticket is None or ticket.tier != tier or not ticket.state.is_open:
            return
        if promise is Promise.FIRST_RESPONSE and not waiting_for_first_response(ticket, tier):
            return
        deadline = self._deadlines.due(ticket, promise)
        terms = self._deadlines.terms(ticket)
        if deadline is None or terms is None:
            return
        if self._clock.now() < deadline:  # the promise grew since the timer was set
            await self._deadlines.arm(ticket)
            return
        breach = Breach(promise, tier, ticket.queued_at, ticket.replied_at)
        # The breach itself is recorded once (the first step), whatever the policy.
        recorded = await self._store.breach_step(
            ticket.id, breach, BreachAction.NOTIFY, self._clock.now()
        )
        # ``notify`` shares the breach's mark: recorded and told together, once.
        if recorded.ok and recorded.ticket is not None:
            await self._breached(recorded.ticket, breach, terms.minutes(promise) or 0)
            if BreachAction.NOTIFY in terms.actions(promise):
                await self._notify(recorded.ticket, breach)
        elif recorded.error is not ChangeError.DONE_ALREADY:
            return  # answered or moved on meanwhile
        for action in terms.actions(promise):
            if action is not BreachAction.NOTIFY:
                await self._act(ticket, breach, action)

    async def _breached(self, ticket: Ticket, breach: Breach, promised: int) -> None:
        waited = int((self._clock.now() - breach.queued_at).total_seconds() // 60)
        await self._recorder.record(
            EventKind.SLA_BREACHED,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            tier=breach.tier,
            promise=breach.promise.value,
            queued_at=breach.queued_at.isoformat(),
            promise_minutes=promised,
            waited_minutes=waited,
        )
        log.warning(
            "%s in %s: %s overdue (%d min)", ticket.label, breach.tier, WHAT[breach.promise], waited
        )

    async def _notify(self, ticket: Ticket, breach: Breach) -> None:
        waited = int((self._clock.now() - breach.queued_at).total_seconds() // 60)
        note = f"{WHAT[breach.promise]} overdue ({waited} min)"
        view = await self._views.view(ticket, note=note)
        await self._workspaces.ticket_changed(view, TicketChangeKind.SLA_BREACHED)

    async def _act(self, ticket: Ticket, breach: Breach, action: BreachAction) -> None:
        to_tier = None
        if action is BreachAction.ESCALATE:
            target = self._tiers.next_tier(breach.tier)
            if target is None:  # `escala check` refuses this; a tier removed since
                log.warning("%s: no tier above %s to escalate to", ticket.label, breach.tier)
                return
            to_tier = target.name
        change = await self._store.breach_step(
            ticket.id, breach, action, self._clock.now(), to_tier
        )
        if not change.ok or change.ticket is None or change.before is None:
            return  # done by another process, or no longer breached
        after, before = change.ticket, change.before
        common = {
            "conversation_id": after.conversation_id,
            "ticket_id": after.id,
            "promise": breach.promise.value,
        }
        if action is BreachAction.RAISE_PRIORITY and after.priority != before.priority:
            await self._recorder.record(
                EventKind.PRIORITY_RAISED,
                **common,
                tier=after.tier,
                from_priority=before.priority.label,
                to_priority=after.priority.label,
            )
        elif action is BreachAction.REASSIGN and before.assignee is not None:
            await self._recorder.record(
                EventKind.REASSIGNED, **common, tier=after.tier, from_agent=before.assignee
            )
            view = await self._views.view(
                after, note=f"{WHAT[breach.promise]} overdue: taken from {before.assignee}"
            )
            await self._workspaces.ticket_changed(view, TicketChangeKind.RELEASED)
        elif action is BreachAction.ESCALATE:
            await self._escalated(before, after, breach)

    async def _escalated(self, before: Ticket, after: Ticket, breach: Breach) -> None:
        reason = f"{BREACH_REASON} ({WHAT[breach.promise]})"
        await self._deadlines.arm(after)
        await self._recorder.record(
            EventKind.ESCALATED,
            conversation_id=after.conversation_id,
            ticket_id=after.id,
            agent=None,
            from_tier=before.tier,
            to_tier=after.tier,
            reason=reason,
            promise=breach.promise.value,
        )
        conversation = await self._store.get_conversation(after.conversation_id)
        if conversation is not None:  # the customer hears that their ticket moved
            sla, _ = self._deadlines.promise_text(after, conversation.locale, self._clock.now())
            text = i18n.text(
                "escalated", conversation.locale, ticket=after.label, tier=after.tier, sla=sla
            )
            await self._outbox.send(conversation, OutboundMessage(text))
        old = await self._views.view(after, note=reason, previous_tier=before.tier)
        await self._workspaces.ticket_changed(old, TicketChangeKind.ESCALATED)
        new = await self._views.view(
            after, note=reason, previous_tier=before.tier, full_transcript=True
        )
        await self._workspaces.ticket_opened(new)
