"""A ticket card Slack would not take (after the Web API client's own retries) is
posted again later through a store timer: after 1, 5 and 15 minutes, then an event
says it never was. Meanwhile the ticket waits in its queue like any other."""

from __future__ import annotations

from bot.models import EventKind, TicketState
from tests.slack.conftest import ANA, World

HUMAN = "quero falar com um atendente"


def cards(world: World, channel: str = "C111") -> list[str]:
    return [
        str(c.args["text"])
        for c in world.fake.posted("chat.postMessage")
        if c.args["channel"] == channel and "thread_ts" not in c.args
    ]


async def test_a_card_that_failed_is_posted_later_and_works(world: World) -> None:
    timers = world.journey.escala.timers
    clock = world.journey.clock
    world.fake.broken["chat.postMessage"] = 500
    await world.customer_says(HUMAN)
    assert cards(world) == []
    ticket = await world.journey.desk.ticket(1001)
    assert ticket is not None and ticket.state is TicketState.QUEUED
    assert [t.number for t in await world.journey.escala.store.queue("N1")] == [1001]
    failed = await world.journey.escala.store.events(ticket_id=ticket.id)
    assert EventKind.DELIVERY_FAILED in [e.kind for e in failed]

    clock.advance(seconds=59)
    assert await timers.sweep() == 0
    clock.advance(seconds=1)
    assert await timers.sweep() == 1  # retry 1: Slack still down
    assert cards(world) == []
    world.fake.broken.clear()
    clock.advance(minutes=4)
    assert await timers.sweep() == 0  # retry 2 waits 5 minutes
    clock.advance(minutes=1)
    assert await timers.sweep() == 1
    assert cards(world) == ["Ticket #1001 in N1 (normal)"]
    # the card is a real one: the customer's next words land in its thread, and it
    # can be claimed
    await world.customer_says("ainda estou aqui")
    assert world.thread("C111") == ["*customer:* ainda estou aqui"]
    await world.slack.click("escala_claim", 1001, ANA, ts=world.card_ts("C111"))
    assert "Claimed by <@U0AAA>" in world.updates("C111")[-1]
    await world.slack.thread_reply(ANA, "Olá!", world.card_ts("C111"))
    calls = len(world.fake.calls)
    clock.advance(hours=1)
    await timers.sweep()
    assert len(world.fake.calls) == calls  # no second card, and answered: no SLA warning


async def test_the_card_of_a_ticket_claimed_meanwhile_shows_who_has_it(world: World) -> None:
    world.fake.broken["chat.postMessage"] = 503
    await world.customer_says(HUMAN)
    assert (await world.journey.desk.claim("ana", 1001)).ok
    world.fake.broken.clear()
    world.journey.clock.advance(minutes=1)
    await world.journey.escala.timers.sweep()
    assert cards(world) == ["Ticket #1001 in N1 (normal)"]
    assert "Claimed by <@U0AAA>" in str(world.card("C111")["blocks"])


async def test_retries_stop_with_an_event_after_the_last_one(world: World) -> None:
    timers = world.journey.escala.timers
    world.fake.broken["chat.postMessage"] = 500
    await world.customer_says(HUMAN)
    for minutes in (1, 5, 15):
        world.journey.clock.advance(minutes=minutes)
        await timers.sweep()
    ticket = await world.journey.desk.ticket(1001)
    assert ticket is not None
    gave_up = [
        e
        for e in await world.journey.escala.store.events(ticket_id=ticket.id)
        if e.kind == EventKind.WORKSPACE_GAVE_UP
    ]
    assert [(e.data["what"], e.data["attempts"]) for e in gave_up] == [("ticket card", 4)]
    attempts = [c for c in world.fake.calls if c.method == "chat.postMessage:500"]
    world.journey.clock.advance(hours=5)
    await timers.sweep()
    assert len([c for c in world.fake.calls if c.method == "chat.postMessage:500"]) == len(
        attempts
    )  # no more attempts
    assert ticket.id in [t.id for t in await world.journey.escala.store.queue("N1")]


async def test_a_ticket_resolved_before_the_retry_gets_no_card(world: World) -> None:
    world.fake.broken["chat.postMessage"] = 500
    await world.customer_says(HUMAN)
    await world.journey.desk.claim("ana", 1001)
    world.fake.broken.clear()
    await world.journey.desk.resolve("ana", 1001)
    world.journey.clock.advance(minutes=1)
    await world.journey.escala.timers.sweep()
    assert cards(world) == []


async def test_a_late_card_of_an_escalated_ticket_says_where_it_came_from(world: World) -> None:
    await world.customer_says(HUMAN)
    await world.slack.click("escala_claim", 1001, ANA, ts=world.card_ts("C111"))
    world.fake.broken["chat.postMessage"] = 500
    assert (await world.journey.desk.escalate("ana", 1001, "N2", "precisa de especialista")).ok
    assert cards(world, "C222") == []
    world.fake.broken.clear()
    world.journey.clock.advance(minutes=1)
    assert await world.journey.escala.timers.sweep() == 1
    assert cards(world, "C222") == ["Ticket #1001 in N2 (normal)"]
    assert "*Escalated from N1* by Ana: precisa de especialista" in str(
        world.card("C222")["blocks"]
    )
