"""KPIs per tier, rebuilt from the events a real journey leaves behind (issues 13 and 14)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot import kpis
from bot.settings import Settings, default_settings
from tests.journeys.harness import JOURNEY_KB, Journey


def journey_settings() -> Settings:
    settings = default_settings()
    return replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,)))


async def days_work(journey: Journey) -> None:
    """A: deflected. B: N1 → N2 unanswered after 10 min, answered in N2 at 40 min,
    resolved at 60 min, CSAT 5. C: answered in N1 at 5 min, resolved at 30 min, CSAT 3.
    D: still waiting in N1."""
    clock = journey.clock
    await journey.say("qual o horário de atendimento?", address="a")
    await journey.say("Sim", address="a")
    await journey.say("quero falar com um atendente", address="b")
    b = journey.workspace.opened[-1].ticket.number
    await journey.desk.claim("ana", b)
    clock.advance(minutes=10)
    await journey.desk.escalate("ana", b, "N2", "specialist")
    await journey.desk.claim("bruno", b)
    clock.advance(minutes=30)
    await journey.desk.reply("bruno", b, "Olá")
    clock.advance(minutes=20)
    await journey.desk.resolve("bruno", b)
    await journey.say("5", address="b")
    await journey.say("quero falar com um atendente", address="c")
    c = journey.workspace.opened[-1].ticket.number
    await journey.desk.claim("ana", c)
    clock.advance(minutes=5)
    await journey.desk.reply("ana", c, "Olá")
    clock.advance(minutes=25)
    await journey.desk.resolve("ana", c)
    await journey.say("3", address="c")
    await journey.say("quero falar com um atendente", address="d")


async def test_an_escalated_ticket_is_credited_where_each_thing_happened() -> None:
    """Issue 13, item 7: Ana claims and escalates to N2; Bruno replies and resolves."""
    journey = Journey(journey_settings())
    await journey.say("quero falar com um atendente", address="x")
    number = journey.workspace.opened[-1].ticket.number
    await journey.desk.claim("ana", number)
    await journey.desk.escalate("ana", number, "N2", "needs a specialist")
    await journey.desk.claim("bruno", number)
    journey.clock.advance(minutes=12)
    await journey.desk.reply("bruno", number, "Olá")
    journey.clock.advance(minutes=8)
    await journey.desk.resolve("bruno", number)

    events = await journey.escala.store.events()
    report = kpis.compute(events, journey.settings.tiers, end=journey.clock.advance(seconds=1))
    n1, n2, _ = report.tiers
    assert (n1.opened, n1.escalations, dict(n1.escalated_out)) == (1, 1, {"N2": 1})
    assert (n1.first_response_seconds, n1.resolved) == ([], 0)
    assert (n2.opened, n2.escalated_in, n2.resolved, n2.first_contact_resolved) == (0, 1, 1, 0)
    assert n2.first_response_seconds == [12 * 60]
    assert n2.resolution_seconds == [20 * 60]
    lines = kpis.render(report)
    assert lines[1].startswith("N1: opened 1, escalated in 0, resolved 0, first-contact -, ")
    assert "first response -" in lines[1] and "escalated 1 to N2" in lines[1]
    assert lines[2].startswith("N2: opened 0, escalated in 1, resolved 1, first-contact 0/1, ")
    assert "first response 12 min, resolution 20 min" in lines[2]


async def test_kpis_of_a_days_work() -> None:
    journey = Journey(journey_settings())
    await days_work(journey)
    journey.clock.advance(minutes=16)  # D has waited past N1's 15 minutes

    events = await journey.escala.store.events()
    report = kpis.compute(events, journey.settings.tiers, end=journey.clock.advance(seconds=1))
    assert report.conversations == 4
    assert report.deflected == 1 and report.deflection_rate == 0.25
    assert report.tickets == 3 and report.escalated_tickets == 1
    n1, n2, n3 = report.tiers
    assert (n1.tier, n1.opened, n1.stays, n1.resolved, n1.first_contact_resolved) == (
        "N1",
        3,
        3,
        1,
        1,
    )
    assert n1.first_response_seconds == [5 * 60]
    assert n1.resolution_seconds == [30 * 60]
    assert n1.sla_breaches == 1  # D; B left N1 unanswered before its 15 minutes
    assert (n1.csat, dict(n1.escalated_out)) == ([3], {"N2": 1})
    assert (n2.escalated_in, n2.stays, n2.resolved, n2.first_contact_resolved) == (1, 1, 1, 0)
    assert (n2.first_response_seconds, n2.resolution_seconds) == ([40 * 60], [60 * 60])
    assert (n2.sla_breaches, n2.csat) == (0, [5])
    assert (n3.stays, n3.opened) == (0, 0)
    overall = report.overall
    assert (
        kpis.median(overall.first_response_seconds),
        kpis.p90(overall.first_response_seconds),
    ) == (
        22.5 * 60,
        40 * 60,
    )
    assert overall.csat_distribution == {1: 0, 2: 0, 3: 1, 4: 0, 5: 1}
    assert (sum(report.hourly), report.hourly[13:15]) == (7, (3, 4))  # UTC without a zone


async def test_a_late_reply_and_a_recorded_breach_count_once_per_stay() -> None:
    journey = Journey(journey_settings())
    await journey.say("quero falar com um atendente", address="b")
    number = journey.workspace.opened[-1].ticket.number
    journey.clock.advance(minutes=16)
    await journey.escala.timers.sweep()  # the SLA alert records ticket.sla_breached
    await journey.desk.claim("ana", number)
    await journey.desk.reply("ana", number, "Olá")  # late, but the same stay
    report = kpis.compute(
        await journey.escala.store.events(),
        journey.settings.tiers,
        end=journey.clock.advance(seconds=1),
    )
    assert [e.kind for e in await journey.escala.store.events()].count("ticket.sla_breached") == 1
    assert (report.tiers[0].sla_breaches, report.tiers[0].stays) == (1, 1)


async def test_the_period_counts_what_happened_in_it() -> None:
    journey = Journey(journey_settings())
    await days_work(journey)
    events = await journey.escala.store.events()
    opened_b = next(e.at for e in events if e.kind == "ticket.opened")
    # From just after B's escalation: B's reply and resolution count, its opening does not.
    start = opened_b + timedelta(minutes=11)
    report = kpis.compute(
        events, journey.settings.tiers, start=start, end=journey.clock.advance(seconds=1)
    )
    n1, n2, _ = report.tiers
    assert report.tickets == 2  # C and D
    assert (n1.opened, n1.escalations, n2.escalated_in) == (2, 0, 0)
    assert n2.first_response_seconds == [40 * 60]  # measured from B's opening
    before = kpis.compute(events, journey.settings.tiers, end=datetime(2020, 1, 1, tzinfo=UTC))
    assert (before.tickets, before.conversations, before.overall.stays) == (0, 0, 0)
