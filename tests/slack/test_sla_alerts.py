"""First-response SLA alerts in Slack: a warning in the card's thread that pings the
tier's channel, and the card marked overdue. The fake clock moves; the sweeper runs
by hand."""

from __future__ import annotations

from tests.slack.conftest import ANA, World, blocks_text

HUMAN = "quero falar com um atendente"


async def test_overdue_ticket_is_announced_in_its_card_thread(world: World) -> None:
    await world.customer_says(HUMAN)
    ts = world.card_ts("C111")
    timers = world.journey.escala.timers
    world.journey.clock.advance(minutes=14)
    await timers.sweep()
    assert world.thread("C111") == []
    world.journey.clock.advance(minutes=1)
    await timers.sweep()
    assert world.thread("C111") == [
        ":warning: <!here> #1001 in N1: first response overdue (15 min), "
        "the promise is 15 min. Claim it or escalate."
    ]
    update = world.fake.of("chat.update")[-1]
    assert update["ts"] == ts
    assert "⚠ first response overdue (15 min)" in blocks_text(update["blocks"])
    assert "Claim" in blocks_text(update["blocks"])  # still waiting: still claimable
    world.journey.clock.advance(minutes=30)
    await timers.sweep()
    assert len(world.thread("C111")) == 1  # once


async def test_a_card_answered_in_time_gets_no_warning(world: World) -> None:
    await world.customer_says(HUMAN)
    world.journey.clock.advance(minutes=5)
    await world.slack.click("escala_claim", 1001, ANA, ts=world.card_ts("C111"))
    await world.slack.thread_reply(ANA, "Olá! Já vejo isso.", world.card_ts("C111"))
    world.journey.clock.advance(minutes=60)
    await world.journey.escala.timers.sweep()
    assert "overdue" not in world.fake.everything_sent()


async def test_a_card_claimed_but_unanswered_is_warned(world: World) -> None:
    """Issue 13: a claim is no answer; the warning asks the owner to reply."""
    await world.customer_says(HUMAN)
    world.journey.clock.advance(minutes=5)
    await world.slack.click("escala_claim", 1001, ANA, ts=world.card_ts("C111"))
    world.journey.clock.advance(minutes=10)
    await world.journey.escala.timers.sweep()
    assert world.thread("C111") == [
        ":warning: <!here> #1001 in N1: first response overdue (15 min), the promise is"
        " 15 min. <@U0AAA> holds it: reply, or release it."
    ]
