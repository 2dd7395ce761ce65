"""Issue 13: promises in calendar time, told truthfully to the customer.

Business hours are the defaults: Monday to Friday, 08:00–20:00, America/Sao_Paulo
(UTC-3). The clock is fake; timers are swept by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.models import EventKind, OutboundMessage, Promise, SlaTerms
from bot.settings import Settings, default_settings
from tests.journeys.harness import JOURNEY_KB, Journey

HUMAN = "quero falar com um atendente"
#: 19:55 on Friday 27 November 2026 in São Paulo.
FRIDAY_1955 = datetime(2026, 11, 27, 22, 55, tzinfo=UTC)
#: 03:00 on Sunday 29 November 2026 in São Paulo.
SUNDAY_0300 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
MONDAY_0810 = datetime(2026, 11, 30, 11, 10, tzinfo=UTC)


def text(received: list[OutboundMessage]) -> str:
    """Everything the customer got in answer, as one text."""
    return "\n".join(m.text for m in received)


def settings() -> Settings:
    base = default_settings()
    return replace(base, kb=replace(base.kb, paths=(JOURNEY_KB,)))


def journey_at(when: datetime) -> Journey:
    journey = Journey(settings())
    journey.clock.set(when - timedelta(seconds=5))  # `say` takes five seconds
    return journey


async def test_friday_1955_with_a_15_minute_business_promise_is_due_monday_0810() -> None:
    journey = journey_at(FRIDAY_1955)
    told = text(await journey.say(HUMAN))
    assert "o primeiro retorno deve chegar até segunda às 8h10." in told
    assert "fora do horário" not in told  # open for five more minutes
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None
    deadlines = journey.escala.alerts._deadlines
    assert deadlines.due(ticket, Promise.FIRST_RESPONSE) == MONDAY_0810
    # nothing fires over the weekend ...
    journey.clock.set(MONDAY_0810 - timedelta(seconds=1))
    await journey.escala.timers.sweep()
    assert not [e for e in await journey.escala.store.events() if e.kind == EventKind.SLA_BREACHED]
    # ... and the promise breaks at 08:10 on Monday
    journey.clock.set(MONDAY_0810)
    await journey.escala.timers.sweep()
    breached = [e for e in await journey.escala.store.events() if e.kind == EventKind.SLA_BREACHED]
    assert [e.data["promise"] for e in breached] == ["first_response"]


async def test_the_same_ticket_told_in_english() -> None:
    journey = journey_at(FRIDAY_1955)
    told = text(await journey.say("I want to talk to a human", locale="en"))
    assert "you should hear back by Monday at 8:10 am." in told


async def test_outside_hours_the_customer_hears_when_we_open_and_the_deadline() -> None:
    saturday = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)  # 10:00 in São Paulo
    pt = journey_at(saturday)
    told = text(await pt.say(HUMAN))
    assert "o primeiro retorno deve chegar até segunda às 8h15." in told
    assert "Estamos fora do horário de atendimento agora: abrimos segunda às 8h;" in told
    assert "retorno até 8h15." in told
    en = journey_at(saturday)
    told = text(await en.say("I want to talk to a human", locale="en"))
    assert "you should hear back by Monday at 8:15 am." in told
    assert "we open Monday at 8 am; you'll hear back by 8:15 am." in told


async def test_inside_hours_the_promise_reads_as_a_duration() -> None:
    journey = Journey(settings())  # Monday 10:00 in São Paulo
    told = text(await journey.say(HUMAN))
    assert "deve chegar em até 15 minutos." in told
    status = await journey.say("status")
    assert any("Primeiro retorno previsto em até 15 minutos." in m.text for m in status)


async def test_a_holiday_is_closed() -> None:
    base = settings()
    christmas = datetime(2026, 12, 25).date()  # a Friday
    hours = replace(base.business_hours, holidays=(christmas,))
    journey = Journey(replace(base, business_hours=hours))
    journey.clock.set(datetime(2026, 12, 25, 12, 0, tzinfo=UTC) - timedelta(seconds=5))
    told = text(await journey.say(HUMAN))
    assert "abrimos segunda às 8h; retorno até 8h15." in told


async def test_an_urgent_security_ticket_on_sunday_at_3_gets_its_24x7_promise() -> None:
    journey = journey_at(SUNDAY_0300)
    told = text(await journey.say("hackearam minha conta, alguém entrou nela"))
    assert "Ele está na fila N3 e o primeiro retorno deve chegar em até 30 minutos." in told
    assert "fora do horário" not in told  # this promise runs on the 24x7 calendar
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None and ticket.tier == "N3"
    assert ticket.terms.first_response_minutes == 30
    journey.clock.set(SUNDAY_0300 + timedelta(minutes=29))
    await journey.escala.timers.sweep()
    assert journey.workspace.changed == []
    journey.clock.set(SUNDAY_0300 + timedelta(minutes=30))
    await journey.escala.timers.sweep()
    (view, _change), *_ = journey.workspace.changed
    assert view.note == "first response overdue (30 min)"


async def test_the_rules_promise_ends_when_the_ticket_leaves_its_tier() -> None:
    base = settings()
    tiers = (*base.tiers, replace(base.tiers[-1], name="N4", level=4))
    agents = (*base.agents, replace(base.agents[-1], id="dora", name="Dora", tiers=("N4",)))
    journey = Journey(replace(base, tiers=tiers, agents=agents))
    journey.clock.set(SUNDAY_0300)
    await journey.say("data leak in our account")
    ticket = await journey.desk.ticket(1001)
    assert ticket is not None and ticket.terms != SlaTerms()
    assert (await journey.desk.escalate("carla", 1001, "N4", "needs a patch")).ok
    moved = await journey.desk.ticket(1001)
    assert moved is not None
    terms = journey.escala.alerts._deadlines.terms(moved)
    assert terms is not None and terms.first_response_minutes == 480  # N4's, on business time
    # the customer is told the moved ticket's real deadline: Monday, business hours
    assert "retorno previsto até amanhã às 16h." in journey.channels["telegram"].texts()[-1]
