"""KPIs per tier, rebuilt from the events a real journey leaves behind."""

from __future__ import annotations

from dataclasses import replace

from bot import kpis
from bot.settings import default_settings
from tests.journeys.harness import JOURNEY_KB, Journey


async def test_kpis_from_a_days_work() -> None:
    settings = default_settings()
    journey = Journey(replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,))))
    # A: answered by the bot, never a ticket (deflected).
    await journey.say("qual o horário de atendimento?", address="a")
    await journey.say("Sim", address="a")
    # B: N1, first reply after 20 min (SLA 15: breach), escalated to N2, resolved, CSAT 5.
    await journey.say("quero falar com um atendente", address="b")
    b = journey.workspace.opened[-1].ticket.number
    await journey.desk.claim("ana", b)
    journey.clock.advance(minutes=20)
    await journey.desk.reply("ana", b, "Olá")
    await journey.desk.escalate("ana", b, "N2", "specialist")
    await journey.desk.claim("bruno", b)
    journey.clock.advance(minutes=60)
    await journey.desk.resolve("bruno", b)
    await journey.say("5", address="b")
    # C: N1, reply after 5 min, resolved at N1 (first contact), CSAT 3.
    await journey.say("quero falar com um atendente", address="c")
    c = journey.workspace.opened[-1].ticket.number
    await journey.desk.claim("ana", c)
    journey.clock.advance(minutes=5)
    await journey.desk.reply("ana", c, "Olá")
    await journey.desk.resolve("ana", c)
    await journey.say("3", address="c")
    # D: waiting in N1 past its 15 minutes: a breach before any reply.
    await journey.say("quero falar com um atendente", address="d")
    journey.clock.advance(minutes=16)

    events = await journey.escala.store.events()
    report = kpis.compute(events, settings.tiers, journey.clock.now())
    assert report.conversations == 4
    assert report.deflected == 1 and report.deflection_rate == 0.25
    assert report.tickets == 3 and report.escalated_tickets == 1
    n1, n2 = report.tiers[0], report.tiers[1]
    assert (n1.tier, n1.opened, n1.resolved, n1.escalated_away) == ("N1", 3, 1, 1)
    assert n1.first_contact_resolved == 1
    assert sorted(round(m) for m in n1.first_response_minutes) == [5, 20]
    assert n1.sla_breaches == 2  # B answered late, D not answered in time
    assert n1.csat == [3]
    assert (n2.resolved, n2.first_contact_resolved, n2.csat) == (1, 0, [5])
    lines = kpis.render(report)
    assert lines[0].startswith("conversations 4, tier-0 deflection 25%")
    assert "SLA breaches 2" in lines[1]
