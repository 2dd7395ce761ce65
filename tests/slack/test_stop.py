"""A stopping server gives its Slack workspace what is left of the stop budget: an
agent's action stuck on a hung Slack API is cancelled then, and the process stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.models import TicketState
from tests.slack.conftest import ANA, World
from tests.waits import PATIENCE, eventually

N = 1001


async def test_stop_cancels_an_action_that_outlives_the_budget(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await world.customer_says("quero falar com um atendente")
    world.fake.hang.add("chat.update")  # the card is updated after the claim: it hangs
    status, _ = await world.slack.click("escala_claim", N, ANA, wait=False)
    assert status == 200  # acknowledged at once, the work runs in the background
    await eventually(lambda: "chat.update" in world.fake.held, "the card update reached Slack")

    world.journey.escala.edge.stopping(0.5)  # the server began to stop, 0.5 s to go
    with caplog.at_level(logging.WARNING, logger="channels.slack.listeners"):
        async with asyncio.timeout(PATIENCE):  # without the budget: until Slack answers
            await world.slack.plugin.stop()
    assert "1 Slack action(s) still running after 0.5s of stopping; cancelled" in caplog.text
    # The claim itself was stored before the card update began: nothing the desk
    # decided is lost, only the card's refresh.
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.ASSIGNED
