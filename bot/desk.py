"""The agent side: claim, take next, reply, note, escalate, release, resolve; route
(the router role) and availability.

Every workspace (Slack, the console) calls these; the rules live here once. Ticket
state changes are single store operations; the conversation is touched only under
its lock. Results carry a short English sentence for the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot import i18n
from bot.clock import Clock, Ids
from bot.events import Recorder
from bot.models import (
    Agent,
    Availability,
    Direction,
    EventKind,
    Message,
    OutboundMessage,
    Priority,
    Role,
    SkillMatch,
    Ticket,
    TicketState,
)
from bot.outbox import Outbox
from bot.ports import TicketChangeKind
from bot.settings import EngineSettings
from bot.sla import Deadlines
from bot.store import ChangeError, Store, TicketChange
from bot.store.base import Routing, SkillFilter
from bot.tiers import TierMap
from bot.views import Views
from bot.workspaces import Workspaces

REFUSALS: dict[ChangeError, str] = {
    ChangeError.NOT_FOUND: "no such ticket",
    ChangeError.ALREADY_CLAIMED: "already claimed by someone else",
    ChangeError.NOT_QUEUED: "not waiting in a queue",
    ChangeError.NOT_ASSIGNEE: "assigned to another agent",
    ChangeError.NOT_OPEN: "not open",
    ChangeError.SAME_TIER: "already in that tier",
    ChangeError.AT_CAPACITY: "you are at your maximum of open tickets",
    ChangeError.NOT_IN_TIER: "moved to another tier meanwhile",
}
ROUTER_ONLY = "routes tickets (route them on), and does not own them"


@dataclass(frozen=True)
class DeskResult:
    ok: bool
    message: str
    ticket: Ticket | None = None


@dataclass(frozen=True)
class QueueStat:
    tier: str
    depth: int
    oldest_wait: timedelta | None
    sla_minutes: int

    @property
    def breaching(self) -> bool:
        return self.oldest_wait is not None and self.oldest_wait > timedelta(
            minutes=self.sla_minutes
        )


class Desk:
    def __init__(
        self,
        store: Store,
        *,
        tiers: TierMap,
        views: Views,
        deadlines: Deadlines,
        recorder: Recorder,
        outbox: Outbox,
        workspaces: Workspaces,
        settings: EngineSettings,
        clock: Clock,
        ids: Ids,
        agents: tuple[Agent, ...],
    ) -> None:
        self.store = store
        self.tiers = tiers
        self.views = views
        self.clock = clock
        self._deadlines = deadlines
        self._recorder = recorder
        self._outbox = outbox
        self._workspaces = workspaces
        self._settings = settings
        self._ids = ids
        self.agents = {agent.id: agent for agent in agents}

    # -- lookups ----------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent | None:
        return self.agents.get(agent_id)

    async def ticket(self, number: int) -> Ticket | None:
        return await self.store.find_ticket(number)

    def first_response_due(self, ticket: Ticket) -> datetime | None:
        """When the ticket's first response falls due in its current tier, on the
        tier's (or its rule's) calendar; None when no such promise applies."""
        return self._deadlines.first_response_due(ticket)

    async def queues(self) -> list[QueueStat]:
        now = self.clock.now()
        stats = []
        for tier in self.tiers:
            waiting = await self.store.queue(tier.name)
            oldest = min((t.queued_at for t in waiting), default=None)
            stats.append(
                QueueStat(
                    tier=tier.name,
                    depth=len(waiting),
                    oldest_wait=now - oldest if oldest else None,
                    sla_minutes=tier.first_response_minutes,
                )
            )
        return stats

    # -- actions ----------------------------------------------------------------------

    async def claim(self, agent_id: str, number: int) -> DeskResult:
        agent, ticket, refusal = await self._load(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        if ticket.tier not in agent.tiers:
            return DeskResult(
                False, f"{ticket.label} is in {ticket.tier}; {agent.name} works {_tiers(agent)}"
            )
        if self.routes_in(agent, ticket.tier):
            return DeskResult(False, f"{agent.name} {ROUTER_ONLY} in {ticket.tier}", ticket)
        change = await self.store.claim(
            ticket.id, agent.id, self.clock.now(), agent.max_concurrent, tiers=agent.tiers
        )
        return await self._claimed(agent, change)

    async def take_next(self, agent_id: str) -> DeskResult:
        agent = self.agent(agent_id)
        if agent is None:
            return DeskResult(False, f"unknown agent {agent_id}")
        tiers = [t for t in agent.tiers if not self.routes_in(agent, t)]
        if not tiers:
            return DeskResult(False, f"{agent.name} {ROUTER_ONLY}")
        strict = tuple(t for t in tiers if self.tiers.tier(t).skill_match is SkillMatch.STRICT)
        change = await self.store.take_next(
            tiers,
            agent.id,
            self.clock.now(),
            agent.max_concurrent,
            SkillFilter(agent.skills, strict),
        )
        if change.error is ChangeError.NOT_FOUND:
            return DeskResult(False, f"no ticket waiting in {'/'.join(tiers)}")
        return await self._claimed(agent, change)

    async def _claimed(self, agent: Agent, change: TicketChange) -> DeskResult:
        if not change.ok or change.ticket is None:
            label = change.ticket.label if change.ticket else "ticket"
            return DeskResult(False, f"{label}: {_refusal(change)}", change.ticket)
        ticket = change.ticket
        await self._recorder.record(
            EventKind.CLAIMED,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            agent=agent.id,
            tier=ticket.tier,
        )
        view = await self.views.view(ticket, actor=agent.name)
        await self._workspaces.ticket_changed(view, TicketChangeKind.CLAIMED)
        return DeskResult(True, f"{ticket.label} claimed by {agent.name}", ticket)

    async def reply(self, agent_id: str, number: int, text: str) -> DeskResult:
        agent, ticket, refusal = await self._owned(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        conversation = await self.store.get_conversation(ticket.conversation_id)
        if conversation is None:
            return DeskResult(False, f"{ticket.label}: conversation missing")
        # First the response is counted, atomically with the check that the ticket is
        # still this agent's in this tier; only then is it sent. A reply racing its own
        # escalation is counted in the old tier, or refused and not sent (issue 11).
        now = self.clock.now()
        counted = await self.store.mark_first_response(
            ticket.id, now, agent_id=agent.id, tier=ticket.tier
        )
        if not counted.ok:
            now_in = counted.ticket.tier if counted.ticket else ticket.tier
            return DeskResult(
                False,
                f"{ticket.label} is no longer yours in {ticket.tier} (now in {now_in}); "
                "reply not sent",
                counted.ticket,
            )
        first = (
            ticket.first_response_at is None
            and counted.ticket is not None
            and counted.ticket.first_response_at == now
        )
        body = i18n.text("agent_reply", conversation.locale, agent=agent.name, text=text)
        await self._outbox.send(
            conversation, OutboundMessage(body), direction=Direction.AGENT, author=agent.name
        )
        await self._recorder.record(
            EventKind.AGENT_REPLY,
            conversation_id=conversation.id,
            ticket_id=ticket.id,
            agent=agent.id,
            tier=ticket.tier,
            # Set on the ticket's first reply only (metrics: first response per tier).
            **(
                {"first_response_seconds": (now - ticket.created_at).total_seconds()}
                if first
                else {}
            ),
        )
        return DeskResult(True, f"sent to the customer of {ticket.label}", ticket)

    async def note(self, agent_id: str, number: int, text: str) -> DeskResult:
        agent, ticket, refusal = await self._load(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        await self.store.append_message(
            Message(
                id=self._ids.new("msg"),
                conversation_id=ticket.conversation_id,
                direction=Direction.NOTE,
                text=text,
                at=self.clock.now(),
                author=agent.name,
            )
        )
        await self._recorder.record(
            EventKind.NOTE,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            agent=agent.id,
        )
        return DeskResult(True, f"private note added to {ticket.label}", ticket)

    async def escalate(
        self, agent_id: str, number: int, to_tier: str | None, reason: str
    ) -> DeskResult:
        agent, ticket, refusal = await self._load(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        if not reason.strip():
            return DeskResult(False, "an escalation needs a reason", ticket)
        mine = ticket.state is TicketState.ASSIGNED and ticket.assignee == agent.id
        waiting_in_my_tier = ticket.state is TicketState.QUEUED and ticket.tier in agent.tiers
        if not (mine or waiting_in_my_tier):
            return DeskResult(False, f"{ticket.label}: claim it before escalating", ticket)
        if to_tier is None:
            target = self.tiers.next_tier(ticket.tier)
            if target is None:
                return DeskResult(False, f"{ticket.label}: {ticket.tier} is the last tier", ticket)
        else:
            found = self.tiers.get(to_tier)
            if found is None:
                known = ", ".join(self.tiers.names())
                return DeskResult(False, f"unknown tier {to_tier} (tiers: {known})", ticket)
            target = found
        previous = ticket.tier
        change = await self.store.escalate(ticket.id, target.name, self.clock.now(), expect=ticket)
        if not change.ok or change.ticket is None:
            return DeskResult(False, f"{ticket.label}: {_refusal(change)}", change.ticket)
        moved = change.ticket
        await self._deadlines.arm(moved)
        await self.store.append_message(
            Message(
                id=self._ids.new("msg"),
                conversation_id=moved.conversation_id,
                direction=Direction.SYSTEM,
                text=f"Escalated {previous} → {moved.tier} by {agent.name}: {reason}",
                at=self.clock.now(),
                author=agent.name,
            )
        )
        await self._recorder.record(
            EventKind.ESCALATED,
            conversation_id=moved.conversation_id,
            ticket_id=moved.id,
            agent=agent.id,
            agent_name=agent.name,
            from_tier=previous,
            to_tier=moved.tier,
            priority=moved.priority.label,
            reason=reason,
        )
        conversation = await self.store.get_conversation(moved.conversation_id)
        if conversation is not None:
            sla, _ = self._deadlines.promise_text(moved, conversation.locale, self.clock.now())
            await self._outbox.send(
                conversation,
                OutboundMessage(
                    i18n.text(
                        "escalated",
                        conversation.locale,
                        ticket=moved.label,
                        tier=moved.tier,
                        sla=sla,
                    )
                ),
            )
        old_view = await self.views.view(
            moved, actor=agent.name, note=reason, previous_tier=previous
        )
        await self._workspaces.ticket_changed(old_view, TicketChangeKind.ESCALATED)
        new_view = await self.views.view(
            moved, actor=agent.name, note=reason, previous_tier=previous, full_transcript=True
        )
        await self._workspaces.ticket_opened(new_view)
        return DeskResult(True, f"{moved.label} escalated {previous} → {moved.tier}", moved)

    async def release(self, agent_id: str, number: int) -> DeskResult:
        agent, ticket, refusal = await self._owned(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        change = await self.store.release(ticket.id, agent.id, self.clock.now())
        if not change.ok or change.ticket is None:
            return DeskResult(False, f"{ticket.label}: {_refusal(change)}", change.ticket)
        released = change.ticket
        await self._deadlines.arm(released)
        await self._recorder.record(
            EventKind.RELEASED,
            conversation_id=released.conversation_id,
            ticket_id=released.id,
            agent=agent.id,
            tier=released.tier,
        )
        view = await self.views.view(released, actor=agent.name)
        await self._workspaces.ticket_changed(view, TicketChangeKind.RELEASED)
        return DeskResult(True, f"{released.label} is back in the {released.tier} queue", released)

    async def resolve(self, agent_id: str, number: int) -> DeskResult:
        agent, ticket, refusal = await self._owned(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        change = await self.store.resolve(ticket.id, agent.id, self.clock.now())
        if not change.ok or change.ticket is None:
            return DeskResult(False, f"{ticket.label}: {_refusal(change)}", change.ticket)
        resolved = change.ticket
        await self._recorder.record(
            EventKind.RESOLVED,
            conversation_id=resolved.conversation_id,
            ticket_id=resolved.id,
            agent=agent.id,
            tier=resolved.tier,
            priority=resolved.priority.label,
            resolution_seconds=(self.clock.now() - resolved.created_at).total_seconds(),
        )
        settings = self._settings
        async with self.store.lock(resolved.conversation_id, settings.lock_ttl_seconds) as lease:
            conversation = await self.store.get_conversation(resolved.conversation_id)
            if conversation is not None:
                locale = conversation.locale
                ask_csat = settings.csat_enabled
                conversation = replace(
                    conversation,
                    ticket_id=None,
                    last_ticket_id=resolved.id,
                    flow=None,
                    csat_ticket_id=resolved.id if ask_csat else None,
                    csat_retries=0,
                    pending_choices=(),
                )
                await self._outbox.send(
                    conversation,
                    OutboundMessage(i18n.text("resolved", locale, ticket=resolved.label)),
                )
                if ask_csat:
                    choices = i18n.csat_choices(locale)
                    conversation = replace(conversation, pending_choices=choices)
                    await self._outbox.send(
                        conversation,
                        OutboundMessage(i18n.text("csat_question", locale), choices),
                    )
                    await self._recorder.record(
                        EventKind.CSAT_ASKED,
                        conversation_id=conversation.id,
                        ticket_id=resolved.id,
                    )
                await self.store.save_conversation(conversation, lease)
        view = await self.views.view(resolved, actor=agent.name)
        await self._workspaces.ticket_changed(view, TicketChangeKind.RESOLVED)
        return DeskResult(True, f"{resolved.label} resolved", resolved)

    # -- the router role ----------------------------------------------------------------

    def routes_in(self, agent: Agent, tier: str) -> bool:
        """Whether ``agent`` routes (rather than resolves) in ``tier``: a router agent,
        or any agent of a ``role = "router"`` tier."""
        return agent.role is Role.ROUTER or self.tiers.tier(tier).role is Role.ROUTER

    async def route(self, agent_id: str, number: int, routing: Routing) -> DeskResult:
        """A router classifies a waiting ticket — tier, skills, priority, private — and
        passes it on, without owning it. The customer hears only of a new tier."""
        agent, ticket, refusal = await self._load(agent_id, number)
        if refusal is not None:
            return refusal
        assert agent is not None and ticket is not None
        if ticket.tier not in agent.tiers or not self.routes_in(agent, ticket.tier):
            return DeskResult(False, f"{agent.name} does not route in {ticket.tier}", ticket)
        if routing.tier is not None and routing.tier not in self.tiers:
            known = ", ".join(self.tiers.names())
            return DeskResult(False, f"unknown tier {routing.tier} (tiers: {known})", ticket)
        if routing == Routing():
            return DeskResult(False, "say where it goes: a tier, skills, a priority", ticket)
        change = await self.store.route(ticket.id, routing, self.clock.now())
        if not change.ok or change.ticket is None or change.before is None:
            return DeskResult(False, f"{ticket.label}: {_refusal(change)}", change.ticket)
        routed, before = change.ticket, change.before
        moved = routed.tier != before.tier
        what = _routing_note(before, routed)
        await self._recorder.record(
            EventKind.ROUTED,
            conversation_id=routed.conversation_id,
            ticket_id=routed.id,
            agent=agent.id,
            from_tier=before.tier,
            to_tier=routed.tier,
            priority=routed.priority.label,
            skills=list(routed.skills),
            private=routed.private,
        )
        if not moved:
            view = await self.views.view(routed, actor=agent.name, note=what)
            await self._workspaces.ticket_changed(view, TicketChangeKind.ROUTED)
            return DeskResult(True, f"{routed.label} routed: {what}", routed)
        await self._deadlines.arm(routed)
        conversation = await self.store.get_conversation(routed.conversation_id)
        if conversation is not None:
            sla, _ = self._deadlines.promise_text(routed, conversation.locale, self.clock.now())
            text = i18n.text(
                "routed", conversation.locale, ticket=routed.label, tier=routed.tier, sla=sla
            )
            await self._outbox.send(conversation, OutboundMessage(text))
        note = f"routed by {agent.name}: {what}"
        old = await self.views.view(routed, actor=agent.name, note=note, previous_tier=before.tier)
        await self._workspaces.ticket_changed(old, TicketChangeKind.ESCALATED)
        new = await self.views.view(
            routed, actor=agent.name, note=note, previous_tier=before.tier, full_transcript=True
        )
        await self._workspaces.ticket_opened(new)
        return DeskResult(True, f"{routed.label} routed: {what}", routed)

    # -- availability ------------------------------------------------------------------

    async def set_availability(self, agent_id: str, state: Availability) -> DeskResult:
        """Online, away or offline: only online agents are offered tickets."""
        agent = self.agent(agent_id)
        if agent is None:
            return DeskResult(False, f"unknown agent {agent_id}")
        await self.store.set_availability(agent.id, state)
        await self._recorder.record(EventKind.AVAILABILITY, agent=agent.id, state=state.value)
        return DeskResult(True, f"{agent.name} is {state.value}")

    async def availability(self, agent_id: str) -> Availability:
        """What the agent last said; online if never (the configured desk is on shift)."""
        return await self.store.availability(agent_id) or Availability.ONLINE

    # -- shared checks ------------------------------------------------------------------

    async def _load(
        self, agent_id: str, number: int
    ) -> tuple[Agent | None, Ticket | None, DeskResult | None]:
        agent = self.agent(agent_id)
        if agent is None:
            return None, None, DeskResult(False, f"unknown agent {agent_id}")
        ticket = await self.store.find_ticket(number)
        if ticket is None:
            return agent, None, DeskResult(False, f"no ticket #{number}")
        return agent, ticket, None

    async def _owned(
        self, agent_id: str, number: int
    ) -> tuple[Agent | None, Ticket | None, DeskResult | None]:
        agent, ticket, refusal = await self._load(agent_id, number)
        if refusal is not None or agent is None or ticket is None:
            return agent, ticket, refusal
        if ticket.state in (TicketState.RESOLVED, TicketState.CLOSED):
            # claiming would not help: say what happened to it (issue 12)
            return (
                agent,
                ticket,
                DeskResult(
                    False, f"{ticket.label} is {ticket.state.value}; it is no longer open", ticket
                ),
            )
        if ticket.state is not TicketState.ASSIGNED or ticket.assignee != agent.id:
            owner = f"assigned to {ticket.assignee}" if ticket.assignee else ticket.state.value
            return (
                agent,
                ticket,
                DeskResult(False, f"{ticket.label} is {owner}; claim it first", ticket),
            )
        return agent, ticket, None


def parse_routing(words: Sequence[str], tiers: Sequence[str]) -> Routing | str:
    """What an agent typed after ``route N``: ``[TIER] [priority=P] [skills=a,b] [private=yes|no]``, or what is wrong with it."""
    tier: str | None = None
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep and word in tiers and tier is None:
            tier = word
        elif sep and key in ("priority", "skills", "private"):
            values[key] = value
        else:
            return f"route: did not understand '{word}' (tiers: {', '.join(tiers)})"
    priority = None
    if "priority" in values:
        try:
            priority = Priority.parse(values["priority"])
        except KeyError:
            return f"route: unknown priority '{values['priority']}'"
    private = None
    if "private" in values:
        if values["private"] not in ("yes", "no"):
            return "route: private=yes or private=no"
        private = values["private"] == "yes"
    skills = None
    if "skills" in values:
        skills = tuple(s for s in values["skills"].split(",") if s)
    return Routing(tier=tier, priority=priority, skills=skills, private=private)


def _routing_note(before: Ticket, after: Ticket) -> str:
    changes = []
    if after.tier != before.tier:
        changes.append(f"{before.tier} → {after.tier}")
    if after.priority != before.priority:
        changes.append(f"priority {after.priority.label}")
    if after.skills != before.skills:
        changes.append(f"skills {', '.join(after.skills) or 'none'}")
    if after.private != before.private:
        changes.append("private" if after.private else "not private")
    return "; ".join(changes) or "unchanged"


def _tiers(agent: Agent) -> str:
    return "/".join(agent.tiers)


def _refusal(change: TicketChange) -> str:
    return REFUSALS.get(change.error, "refused") if change.error else "done"
