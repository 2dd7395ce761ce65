"""Proactive first-response SLA alerts: what agents are told, when, and how often.

N1 promises a first response in 15 minutes, N2 in 120 (the defaults). The clock is a
fake one; the sweeper runs by hand (``timers.sweep``), so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

import pytest

from bot.app import build
from bot.clock import UuidIds
from bot.models import EventKind, TicketState
from bot.ports import TicketChangeKind, TicketView
from bot.settings import Settings, default_settings
from bot.store import MemoryStore, Store
from channels.console import Console
from tests.journeys.harness import JOURNEY_KB, Journey, RecordingWorkspace

HUMAN = "quero falar com um atendente"


def journey_settings() -> Settings:
    settings = default_settings()
    return replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,)))


@pytest.fixture
def journey() -> Journey:
    return Journey(journey_settings())


def alerts(workspace: RecordingWorkspace) -> list[tuple[int, str, str]]:
    """(ticket number, tier, note) of every SLA alert the workspace got."""
    return [
        (view.ticket.number, view.ticket.tier, view.note)
        for view, change in workspace.changed
        if change is TicketChangeKind.SLA_BREACHED
    ]


class YieldingWorkspace(RecordingWorkspace):
    """Hands the event loop over while it shows an alert, as a real workspace (an HTTP
    call to Slack) does, so two sweepers in one loop really interleave."""

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        await asyncio.sleep(0)
        await super().ticket_changed(view, change)


async def breaches(store: Store) -> list[tuple[str | None, object]]:
    return [
        (e.ticket_id, e.data.get("tier"))
        for e in await store.events()
        if e.kind == EventKind.SLA_BREACHED
    ]


async def test_console_warns_when_the_first_response_is_overdue() -> None:
    journey = Journey(journey_settings())
    out = io.StringIO()
    console = Console(journey.escala.edge, out, locale="pt-BR", agent_id="ana", echo=False)
    await console.customer(HUMAN)
    assert "[N1 queue] new ticket #1001" in out.getvalue()
    journey.clock.advance(minutes=14, seconds=59)
    assert await journey.escala.timers.sweep() == 0
    assert "overdue" not in out.getvalue()
    journey.clock.advance(seconds=1)
    assert await journey.escala.timers.sweep() == 1
    assert out.getvalue().splitlines()[-1] == "[N1 queue] #1001 first response overdue (15 min)"
    # once: later sweeps say nothing more
    journey.clock.advance(minutes=30)
    assert await journey.escala.timers.sweep() == 0
    assert out.getvalue().count("overdue") == 1
    assert len(await breaches(journey.escala.store)) == 1


async def test_a_ticket_answered_in_time_never_alerts(journey: Journey) -> None:
    await journey.say(HUMAN)
    journey.clock.advance(minutes=10)
    assert (await journey.desk.claim("ana", 1001)).ok
    assert (await journey.desk.reply("ana", 1001, "Olá! Já vejo isso.")).ok
    journey.clock.advance(minutes=60)
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == []
    assert await breaches(journey.escala.store) == []


async def test_a_ticket_claimed_but_unanswered_alerts(journey: Journey) -> None:
    """Issue 13: a claim is no answer. The customer still waits, so the promise is
    broken at the deadline even though an agent holds the ticket (the breach policy can
    then take it from them: ``reassign``)."""
    await journey.say(HUMAN)
    journey.clock.advance(minutes=10)
    assert (await journey.desk.claim("ana", 1001)).ok
    journey.clock.advance(minutes=5)
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == [(1001, "N1", "first response overdue (15 min)")]
    assert len(await breaches(journey.escala.store)) == 1


async def test_a_ticket_answered_in_time_then_released_late_does_not_alert(
    journey: Journey,
) -> None:
    await journey.say(HUMAN)
    journey.clock.advance(minutes=5)
    await journey.desk.claim("ana", 1001)
    await journey.desk.reply("ana", 1001, "Olá! Já vejo isso.")
    journey.clock.advance(minutes=30)
    assert (await journey.desk.release("ana", 1001)).ok
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == []


async def test_claimed_unanswered_then_released_alerts_once(journey: Journey) -> None:
    """Claimed in time but never answered: the deadline alerts while the agent holds it
    (issue 13: a claim is no answer); giving it back afterwards keeps its place and its
    stay in the queue, so it does not alert a second time."""
    await journey.say(HUMAN)
    journey.clock.advance(minutes=5)
    await journey.desk.claim("ana", 1001)
    journey.clock.advance(minutes=15)
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == [(1001, "N1", "first response overdue (20 min)")]
    await journey.desk.release("ana", 1001)
    await journey.escala.timers.sweep()
    assert len(alerts(journey.workspace)) == 1


async def test_a_release_after_the_alert_does_not_alert_twice(journey: Journey) -> None:
    await journey.say(HUMAN)
    journey.clock.advance(minutes=16)
    await journey.escala.timers.sweep()
    assert len(alerts(journey.workspace)) == 1
    await journey.desk.claim("ana", 1001)
    await journey.desk.release("ana", 1001)
    journey.clock.advance(minutes=1)
    await journey.escala.timers.sweep()
    assert len(alerts(journey.workspace)) == 1


async def test_escalation_rearms_for_the_new_tier(journey: Journey) -> None:
    await journey.say(HUMAN)
    journey.clock.advance(minutes=5)
    await journey.desk.claim("bruno", 1001)
    assert (await journey.desk.escalate("bruno", 1001, "N2", "needs a specialist")).ok
    journey.clock.advance(minutes=30)  # past N1's 15 minutes: N1 is no longer the promise
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == []
    journey.clock.advance(minutes=89, seconds=59)
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == []
    journey.clock.advance(seconds=1)  # 120 minutes in N2's queue
    await journey.escala.timers.sweep()
    assert alerts(journey.workspace) == [(1001, "N2", "first response overdue (120 min)")]
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None
    assert await breaches(journey.escala.store) == [(ticket.id, "N2")]


async def test_the_timer_survives_a_restart() -> None:
    """The deadline lives in the store: a new process on it alerts."""
    store = MemoryStore()
    first = Journey(journey_settings(), store=store)
    await first.say(HUMAN)
    first.clock.advance(minutes=20)
    second = build(first.settings, store=store, clock=first.clock, ids=UuidIds())
    workspace = RecordingWorkspace()
    second.workspaces.add(workspace)
    assert await second.timers.sweep() == 1
    assert alerts(workspace) == [(1001, "N1", "first response overdue (20 min)")]


async def test_two_sweepers_on_one_store_alert_each_breach_once(store: Store) -> None:
    """Two router processes sweep the same store at once (memory and Redis): every
    overdue ticket is announced exactly once, by one of them."""
    settings = journey_settings()
    customers = Journey(settings, store=store)
    for address in range(30):
        await customers.say(HUMAN, address=str(2000 + address))
    waiting = await store.queue("N1")
    assert len(waiting) == 30
    customers.clock.advance(minutes=16)
    processes = []
    for _ in range(2):
        process = build(settings, store=store, clock=customers.clock, ids=UuidIds())
        process.timers.batch = 4  # small batches, so the two sweeps interleave
        workspace = YieldingWorkspace()
        process.workspaces.add(workspace)
        processes.append((process, workspace))
    await asyncio.gather(store.ping(), store.ping())  # two connections ready, as two processes
    fired = await asyncio.gather(*(p.timers.sweep() for p, _ in processes))
    assert sum(fired) == 30 and all(fired), fired
    announced = [number for _, w in processes for number, _, _ in alerts(w)]
    assert sorted(announced) == sorted(t.number for t in waiting)
    assert len(await breaches(store)) == 30
    assert {(await store.get_ticket(t.id)).state for t in waiting} == {TicketState.QUEUED}  # type: ignore[union-attr]


async def test_two_processes_firing_the_same_stay_alert_once(store: Store) -> None:
    """A release re-arms the timer of the same stay in the queue; if two processes get
    the two timers at once, the store's atomic mark lets only one of them alert."""
    settings = journey_settings()
    customers = Journey(settings, store=store)
    await customers.say(HUMAN)
    ticket = (await store.queue("N1"))[0]
    customers.clock.advance(minutes=16)
    processes = []
    for _ in range(2):
        process = build(settings, store=store, clock=customers.clock, ids=UuidIds())
        workspace = YieldingWorkspace()
        process.workspaces.add(workspace)
        processes.append((process, workspace))
    await asyncio.gather(store.ping(), store.ping())

    key = f"{ticket.id}:N1"
    await asyncio.gather(*(p.alerts.first_response_due(key) for p, _ in processes))

    assert sum(len(alerts(w)) for _, w in processes) == 1
    assert await breaches(store) == [(ticket.id, "N1")]
