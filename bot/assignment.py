"""Automatic assignment: a ticket entering the queue of an ``assignment = "auto"`` tier
is offered to one agent at a time (issue 13).

Who gets the offer: an agent who works the tier, resolves (not a router), is online
(an agent who never said counts as online), is below ``max_concurrent`` open tickets
and was not offered this ticket during this stay in the queue; agents with every skill
the ticket needs come first (the only ones in a ``skill_match = "strict"`` tier), then
the fewest open tickets, then the longest idle (longest since their last assignment).

An offer is a mark on the ticket (``offered_to``, set by one atomic compare-and-set
step): take-next skips a ticket offered to someone else, and the agent accepts by
claiming it. Not accepted within the tier's ``offer_seconds``, it goes to the next
agent; with nobody left it stays in the queue for anyone to take.

Offers are made from store timers, never inside the step that queued the ticket: the
recorder tells this module (a subscriber) that a ticket entered a queue, and it sets
the ``assign:<ticket id>`` timer for now, which the next sweep of any process handles,
after the agents' workspaces have shown the ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from bot.clock import Clock
from bot.events import Recorder
from bot.models import Agent, Availability, Event, EventKind, Role, SkillMatch, Ticket, Tier
from bot.models import TicketState as State
from bot.ports import TicketChangeKind
from bot.store import Store
from bot.tiers import TierMap
from bot.timers import Timers
from bot.views import Views
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

#: ``assign:<ticket id>``: offer the ticket if its tier assigns automatically.
ASSIGN_TIMER = "assign"
#: ``offer:<ticket id>:<agent>:<stay>``: the offer to ``agent`` ran out.
OFFER_TIMER = "offer"
#: Events after which a ticket waits in a queue, maybe for an offer.
ENTERED_QUEUE = (
    EventKind.HANDOFF,
    EventKind.ESCALATED,
    EventKind.RELEASED,
    EventKind.REASSIGNED,
    EventKind.ROUTED,
)
#: How many waiting tickets an agent coming online may be offered at once, per tier.
ONLINE_BATCH = 20


def stay(ticket: Ticket) -> str:
    """Names one stay of a ticket in a queue (an escalation starts a new one)."""
    return str(int(ticket.queued_at.timestamp() * 1_000_000))


class Assigner:
    def __init__(
        self,
        store: Store,
        tiers: TierMap,
        agents: tuple[Agent, ...],
        views: Views,
        workspaces: Workspaces,
        recorder: Recorder,
        timers: Timers,
        clock: Clock,
    ) -> None:
        self._store = store
        self._tiers = tiers
        self._agents = agents
        self._views = views
        self._workspaces = workspaces
        self._recorder = recorder
        self._timers = timers
        self._clock = clock
        timers.on(ASSIGN_TIMER, self.assign_due)
        timers.on(OFFER_TIMER, self.offer_expired)
        recorder.subscribe(self._on_event)

    def _auto_tier(self, name: str) -> Tier | None:
        tier = self._tiers.get(name)
        return tier if tier is not None and tier.auto_assign else None

    async def _on_event(self, event: Event) -> None:
        if event.kind == EventKind.AVAILABILITY and event.data.get("state") == "online":
            await self.agent_online(str(event.data.get("agent", "")))
            return
        if event.kind not in ENTERED_QUEUE or event.ticket_id is None:
            return
        tier = event.data.get("to_tier") or event.data.get("tier")
        if isinstance(tier, str) and self._auto_tier(tier) is not None:
            await self._timers.schedule(ASSIGN_TIMER, event.ticket_id, self._clock.now())

    async def agent_online(self, agent_id: str) -> None:
        """Offer waiting, unoffered tickets of the agent's automatic tiers."""
        agent = next((a for a in self._agents if a.id == agent_id), None)
        if agent is None:
            return
        for name in agent.tiers:
            if self._auto_tier(name) is None:
                continue
            waiting = await self._store.queue(name)
            for ticket in [t for t in waiting if t.offered_to is None][:ONLINE_BATCH]:
                await self._timers.schedule(ASSIGN_TIMER, ticket.id, self._clock.now())

    async def assign_due(self, ticket_id: str) -> None:
        """The ``assign:<ticket id>`` timer: offer a waiting ticket nobody is offered."""
        ticket = await self._store.get_ticket(ticket_id)
        if ticket is None or ticket.state is not State.QUEUED or ticket.offered_to is not None:
            return
        await self.offer_next(ticket, None)

    async def offer_expired(self, key: str) -> None:
        """The ``offer:<ticket id>:<agent>:<stay>`` timer: not accepted in time."""
        ticket_id, agent_id, stay_id = key.split(":", 2)
        ticket = await self._store.get_ticket(ticket_id)
        if (
            ticket is None
            or ticket.state is not State.QUEUED
            or ticket.offered_to != agent_id
            or stay(ticket) != stay_id
        ):
            return  # accepted, moved on, or offered to someone else since
        await self.offer_next(ticket, agent_id)

    async def offer_next(self, ticket: Ticket, current: str | None) -> None:
        """Move the offer from ``current`` to the best candidate (or to nobody)."""
        tier = self._auto_tier(ticket.tier)
        if tier is None:
            return
        candidate = await self.candidate(ticket, tier)
        to = candidate.id if candidate is not None else None
        if to is None and current is None:
            return
        change = await self._store.move_offer(ticket.id, ticket.queued_at, current, to)
        if not change.ok or change.ticket is None:
            return  # claimed or offered elsewhere meanwhile: another process got there
        offered = change.ticket
        if current is not None:
            await self._recorder.record(
                EventKind.OFFER_EXPIRED,
                conversation_id=offered.conversation_id,
                ticket_id=offered.id,
                agent=current,
                tier=offered.tier,
            )
        if candidate is None:
            log.info("%s: nobody left to offer it to; it waits in %s", offered.label, tier.name)
            return
        await self._recorder.record(
            EventKind.OFFERED,
            conversation_id=offered.conversation_id,
            ticket_id=offered.id,
            agent=candidate.id,
            tier=offered.tier,
        )
        await self._timers.schedule(
            OFFER_TIMER,
            f"{offered.id}:{candidate.id}:{stay(offered)}",
            self._clock.now() + timedelta(seconds=tier.offer_seconds),
        )
        view = await self._views.view(offered, actor=candidate.name)
        await self._workspaces.ticket_changed(view, TicketChangeKind.OFFERED)

    async def candidate(self, ticket: Ticket, tier: Tier) -> Agent | None:
        """The agent to offer ``ticket`` to next (module docstring), or None."""
        pool = [
            a
            for a in self._agents
            if tier.name in a.tiers and a.role is Role.RESOLVER and a.id not in ticket.offers
        ]
        if tier.role is Role.ROUTER or not pool:
            return None
        states: Mapping[str, Availability] = await self._store.availabilities()
        pool = [a for a in pool if states.get(a.id, Availability.ONLINE) is Availability.ONLINE]
        needs = set(ticket.skills)
        if tier.skill_match is SkillMatch.STRICT:
            pool = [a for a in pool if needs <= set(a.skills)]
        loads = await self._store.agent_loads([a.id for a in pool])
        free = [a for a in pool if loads[a.id].open < a.max_concurrent]
        if not free:
            return None
        return min(
            free,
            key=lambda a: (
                0 if needs <= set(a.skills) else 1,
                loads[a.id].open,
                loads[a.id].last_assigned,
            ),
        )
