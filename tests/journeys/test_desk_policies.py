"""Issue 13: breach policies, skills, automatic assignment and the router role.

Journeys on a fake clock (Monday 10:00 in São Paulo, inside business hours); the
policy tests run on both stores, and on Redis with two router processes (two clients)
sweeping the same timers at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.app import Escala, build
from bot.clock import UuidIds
from bot.models import (
    Agent,
    Availability,
    BreachAction,
    EventKind,
    Priority,
    Role,
    SkillMatch,
    TicketState,
    Tier,
)
from bot.ports import TicketChangeKind, TicketView
from bot.settings import Settings, default_settings
from bot.store import MemoryStore, Store
from bot.store.base import Routing
from bot.store.redis import RedisStore
from tests.journeys.harness import JOURNEY_KB, Journey, RecordingWorkspace

HUMAN = "quero falar com um atendente"
BILLING = "tem uma cobrança errada no meu cartão"
ALL = (
    BreachAction.NOTIFY,
    BreachAction.RAISE_PRIORITY,
    BreachAction.REASSIGN,
    BreachAction.ESCALATE,
)


def desk(tiers: tuple[Tier, ...], agents: tuple[Agent, ...]) -> Settings:
    base = default_settings()
    return replace(base, kb=replace(base.kb, paths=(JOURNEY_KB,)), tiers=tiers, agents=agents)


def n1(**changes: object) -> Tier:
    return replace(Tier("N1", 1, 15, resolution_minutes=None), **changes)  # type: ignore[arg-type]


N2 = Tier("N2", 2, 120)
N3 = Tier("N3", 3, 480)


class YieldingWorkspace(RecordingWorkspace):
    """Hands the loop over while it works, as a real workspace's HTTP call does."""

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        await asyncio.sleep(0)
        await super().ticket_changed(view, change)


async def kinds(store: Store) -> Counter[str]:
    return Counter(e.kind for e in await store.events())


# -- breach policies ---------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def two_stores(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Store, Store]]:
    """The store as two router processes see it: on Redis, two clients."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, memory
        return
    url: str = request.getfixturevalue("redis_url")
    first, second = RedisStore.from_url(url), RedisStore.from_url(url)
    await first.redis.flushdb()
    yield first, second
    await first.close()
    await second.close()


async def test_every_breach_action_happens_once_with_two_sweeping_processes(
    two_stores: tuple[Store, Store],
) -> None:
    store, other = two_stores
    settings = desk(
        (n1(on_first_response_breach=ALL), N2, N3),
        (
            Agent("ana", "Ana", ("N1",), max_concurrent=10),
            Agent("bruno", "Bruno", ("N2",)),
            Agent("carla", "Carla", ("N3",)),
        ),
    )
    customers = Journey(settings, store=store)
    for i in range(12):
        await customers.say(HUMAN, address=str(3000 + i))
    for number in range(1001, 1007):  # half are claimed, and never answered
        assert (await customers.desk.claim("ana", number)).ok
    customers.clock.advance(minutes=16)
    processes: list[tuple[Escala, YieldingWorkspace]] = []
    for backend in (store, other):
        process = build(settings, store=backend, clock=customers.clock, ids=UuidIds())
        process.timers.batch = 3  # small batches: the two sweeps interleave
        workspace = YieldingWorkspace()
        process.workspaces.add(workspace)
        for name in ("telegram",):
            process.outbox.register(name, customers.channels[name])
        processes.append((process, workspace))
    customers.channels["telegram"].sent.clear()
    tickets = [await store.find_ticket(n) for n in range(1001, 1013)]
    # both fire every ticket's timer at once (a lease ran out), then both sweep
    await asyncio.gather(
        *(
            p.alerts.first_response_due(f"{t.id}:N1")
            for p, _ in processes
            for t in tickets
            if t is not None
        )
    )
    await asyncio.gather(*(p.timers.sweep() for p, _ in processes))
    counted = await kinds(store)
    assert counted[EventKind.SLA_BREACHED] == 12
    assert counted[EventKind.PRIORITY_RAISED] == 12
    assert counted[EventKind.REASSIGNED] == 6
    assert counted[EventKind.ESCALATED] == 12
    notified = [
        view.ticket.number
        for _, w in processes
        for view, change in w.changed
        if change is TicketChangeKind.SLA_BREACHED
    ]
    assert sorted(notified) == list(range(1001, 1013))
    for number in range(1001, 1013):
        ticket = await store.find_ticket(number)
        assert ticket is not None
        assert (ticket.tier, ticket.state, ticket.assignee) == ("N2", TicketState.QUEUED, None)
        assert ticket.priority is Priority.HIGH  # raised once, from normal
        assert ticket.tier_history == ("N1", "N2")
    assert await store.assigned("ana") == []
    # customers hear of the move (once each), never of the breach
    told = customers.channels["telegram"].texts()
    assert len(told) == 12
    assert all("foi encaminhado para a equipe especializada N2" in t for t in told)
    assert not any("prazo" in t or "atras" in t for t in told)


async def test_reassign_on_breach_gives_the_ticket_to_the_next_available_agent() -> None:
    settings = desk(
        (n1(on_first_response_breach=(BreachAction.REASSIGN,), auto_assign=True), N2, N3),
        (
            Agent("ana", "Ana", ("N1",)),
            Agent("bia", "Bia", ("N1",)),
            Agent("bruno", "Bruno", ("N2",)),
            Agent("carla", "Carla", ("N3",)),
        ),
    )
    journey = Journey(settings)
    await journey.say(HUMAN)
    await journey.escala.timers.sweep()  # the offer
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None and ticket.offered_to == "ana"  # both idle: the first
    assert (await journey.desk.claim("ana", 1001)).ok
    journey.clock.advance(minutes=15)
    await journey.escala.timers.sweep()  # breach: taken from Ana ...
    await journey.escala.timers.sweep()  # ... and offered to the next agent
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None
    assert (ticket.state, ticket.assignee, ticket.offered_to) == (TicketState.QUEUED, None, "bia")
    events = await journey.escala.store.events(ticket_id=ticket.id)
    reassigned = [e for e in events if e.kind == EventKind.REASSIGNED]
    assert [e.data["from_agent"] for e in reassigned] == ["ana"]
    # no notify in this policy: agents see the move and the offer, not an SLA warning
    changes = [change for _, change in journey.workspace.changed]
    assert TicketChangeKind.SLA_BREACHED not in changes
    assert changes[-2:] == [TicketChangeKind.RELEASED, TicketChangeKind.OFFERED]


async def test_an_answered_ticket_is_not_reassigned() -> None:
    settings = desk(
        (n1(on_first_response_breach=(BreachAction.REASSIGN,)), N2, N3),
        (Agent("ana", "Ana", ("N1",)), Agent("b", "B", ("N2",)), Agent("c", "C", ("N3",))),
    )
    journey = Journey(settings)
    await journey.say(HUMAN)
    await journey.desk.claim("ana", 1001)
    await journey.desk.reply("ana", 1001, "Olá!")
    journey.clock.advance(hours=2)
    await journey.escala.timers.sweep()
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None and ticket.assignee == "ana"
    assert EventKind.SLA_BREACHED not in await kinds(journey.escala.store)


async def test_resolution_breach_escalates_with_its_reason() -> None:
    settings = desk(
        (
            n1(resolution_minutes=60, on_resolution_breach=(BreachAction.ESCALATE,)),
            N2,
            N3,
        ),
        (Agent("ana", "Ana", ("N1",)), Agent("b", "B", ("N2",)), Agent("c", "C", ("N3",))),
    )
    journey = Journey(settings)
    await journey.say(HUMAN)
    await journey.desk.claim("ana", 1001)
    await journey.desk.reply("ana", 1001, "Olá! Estou vendo.")
    journey.clock.advance(minutes=59)
    await journey.escala.timers.sweep()
    assert (await journey.desk.ticket(1001)).tier == "N1"  # type: ignore[union-attr]
    journey.clock.advance(minutes=1)
    await journey.escala.timers.sweep()
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None and ticket.tier == "N2" and ticket.state is TicketState.QUEUED
    (escalated,) = [e for e in await journey.escala.store.events() if e.kind == EventKind.ESCALATED]
    assert escalated.data["reason"] == "SLA breached (resolution)"
    assert escalated.data["from_tier"] == "N1" and escalated.data["agent"] is None
    opened = journey.workspace.opened[-1]
    assert (opened.ticket.tier, opened.previous_tier) == ("N2", "N1")
    assert "N2" in journey.channels["telegram"].texts()[-1]


# -- skills ----------------------------------------------------------------------------


def skills_desk(match: SkillMatch) -> Settings:
    return desk(
        (n1(skill_match=match), N2, N3),
        (
            Agent("ana", "Ana", ("N1",), skills=("billing",)),
            Agent("bruno", "Bruno", ("N1",), skills=("setup",)),
            Agent("c", "C", ("N2",)),
            Agent("d", "D", ("N3",)),
        ),
    )


async def test_take_next_prefers_tickets_with_the_agents_skills(store: Store) -> None:
    journey = Journey(skills_desk(SkillMatch.PREFER), store=store)
    await journey.say(HUMAN, address="1")  # #1001, no skills, older
    await journey.say(BILLING, address="2")  # #1002, billing, private
    bruno = await journey.desk.take_next("bruno")
    assert bruno.ticket is not None and bruno.ticket.number == 1001  # no skill needed
    await journey.say(BILLING, address="3")  # #1003, billing
    ana = await journey.desk.take_next("ana")
    assert ana.ticket is not None and ana.ticket.number == 1002
    # prefer: with nothing matching left, Bruno still gets the billing ticket
    bruno = await journey.desk.take_next("bruno")
    assert bruno.ticket is not None and bruno.ticket.number == 1003


async def test_strict_skills_leave_a_ticket_for_the_agent_who_has_them(store: Store) -> None:
    journey = Journey(skills_desk(SkillMatch.STRICT), store=store)
    await journey.say(BILLING)
    refused = await journey.desk.take_next("bruno")
    assert not refused.ok and refused.message == "no ticket waiting in N1"
    taken = await journey.desk.take_next("ana")
    assert taken.ok and taken.ticket is not None and taken.ticket.number == 1001


# -- automatic assignment ------------------------------------------------------------


def auto_desk(**n1_changes: object) -> Settings:
    return desk(
        (n1(auto_assign=True, offer_seconds=60, **n1_changes), N2, N3),
        (
            Agent("ana", "Ana", ("N1",), max_concurrent=1, skills=("billing",)),
            Agent("bruno", "Bruno", ("N1",), max_concurrent=2),
            Agent("bia", "Bia", ("N1",), max_concurrent=2),
            Agent("c", "C", ("N2",)),
            Agent("d", "D", ("N3",)),
        ),
    )


async def offered(journey: Journey, number: int) -> str | None:
    ticket = await journey.desk.ticket(number)
    assert ticket is not None
    return ticket.offered_to


async def test_offers_follow_skills_load_idle_time_capacity_and_availability(
    store: Store,
) -> None:
    journey = Journey(auto_desk(), store=store)
    await journey.say(BILLING, address="1")
    await journey.escala.timers.sweep()
    assert await offered(journey, 1001) == "ana"  # the skill wins
    assert (await journey.desk.claim("ana", 1001)).ok  # accepting is claiming
    await journey.say(BILLING, address="2")
    await journey.escala.timers.sweep()
    assert await offered(journey, 1002) == "bruno"  # Ana is at her maximum (1)
    # take-next leaves a ticket offered to someone else alone
    assert not (await journey.desk.take_next("bia")).ok
    assert (await journey.desk.claim("bruno", 1002)).ok
    await journey.say(HUMAN, address="3")
    await journey.escala.timers.sweep()
    assert await offered(journey, 1003) == "bia"  # fewest open tickets
    assert (await journey.desk.claim("bia", 1003)).ok
    await journey.say(HUMAN, address="4")
    await journey.escala.timers.sweep()
    assert await offered(journey, 1004) == "bruno"  # a tie: Bruno has been idle longer
    # not accepted within 60 s: the next agent
    journey.clock.advance(seconds=60)
    await journey.escala.timers.sweep()
    assert await offered(journey, 1004) == "bia"
    # Bia goes away: the offer runs out and nobody is left (Ana is full, Bruno had it)
    assert (await journey.desk.set_availability("bia", Availability.AWAY)).ok
    journey.clock.advance(seconds=60)
    await journey.escala.timers.sweep()
    assert await offered(journey, 1004) is None  # waits for anyone to take
    await journey.say(HUMAN, address="5")
    await journey.escala.timers.sweep()
    assert await offered(journey, 1005) == "bruno"  # Bia is away
    counted = await kinds(journey.escala.store)
    assert counted[EventKind.OFFERED] == 6 and counted[EventKind.OFFER_EXPIRED] == 2


async def test_an_agent_coming_online_is_offered_what_waits() -> None:
    journey = Journey(auto_desk())
    for agent in ("ana", "bruno", "bia"):
        await journey.desk.set_availability(agent, Availability.OFFLINE)
    await journey.say(HUMAN)
    await journey.escala.timers.sweep()
    assert await offered(journey, 1001) is None
    assert await journey.desk.availability("bia") is Availability.OFFLINE
    await journey.desk.set_availability("bia", Availability.ONLINE)
    await journey.escala.timers.sweep()
    assert await offered(journey, 1001) == "bia"


# -- the router role -------------------------------------------------------------------


def router_desk(tier_role: Role = Role.RESOLVER, agent_role: Role = Role.ROUTER) -> Settings:
    return desk(
        (n1(role=tier_role), N2, N3),
        (
            Agent("rita", "Rita", ("N1",), role=agent_role),
            Agent("ana", "Ana", ("N1",), skills=("billing",)),
            Agent("bruno", "Bruno", ("N2",)),
            Agent("carla", "Carla", ("N3",)),
        ),
    )


async def test_a_router_classifies_and_passes_on_without_owning(store: Store) -> None:
    journey = Journey(router_desk(), store=store)
    await journey.say(HUMAN)
    refused = await journey.desk.claim("rita", 1001)
    assert not refused.ok and "routes tickets" in refused.message
    assert not (await journey.desk.take_next("rita")).ok
    # in place: skills and priority, and Ana (billing) is served it first
    routed = await journey.desk.route(
        "rita", 1001, Routing(priority=Priority.HIGH, skills=("billing",))
    )
    assert routed.ok and routed.message == "#1001 routed: priority high; skills billing"
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None
    assert (ticket.tier, ticket.priority, ticket.skills, ticket.assignee) == (
        "N1",
        Priority.HIGH,
        ("billing",),
        None,
    )
    # on to N2: the customer is told the new team and its promise
    before = len(journey.channels["telegram"].sent)
    assert (await journey.desk.route("rita", 1001, Routing(tier="N2"))).ok
    (told,) = journey.channels["telegram"].texts()[before:]
    assert told.startswith("Seu chamado #1001 foi encaminhado para a equipe N2")
    assert "em até 2 horas" in told
    moved = await journey.desk.ticket(1001)
    assert moved is not None and moved.tier == "N2" and moved.state is TicketState.QUEUED
    assert journey.workspace.opened[-1].previous_tier == "N1"
    routes = [e for e in await journey.escala.store.events() if e.kind == EventKind.ROUTED]
    assert [(e.data["agent"], e.data["from_tier"], e.data["to_tier"]) for e in routes] == [
        ("rita", "N1", "N1"),
        ("rita", "N1", "N2"),
    ]
    assert not (await journey.desk.route("rita", 1001, Routing(tier="N3"))).ok  # not N1's now
    assert not (await journey.desk.route("ana", 1001, Routing(tier="N3"))).ok  # not a router


async def test_a_router_tier_makes_every_agent_of_it_a_router() -> None:
    journey = Journey(router_desk(tier_role=Role.ROUTER, agent_role=Role.RESOLVER))
    await journey.say(HUMAN)
    assert not (await journey.desk.claim("ana", 1001)).ok
    assert (await journey.desk.route("ana", 1001, Routing(tier="N2"))).ok
    assert (await journey.desk.claim("bruno", 1001)).ok
