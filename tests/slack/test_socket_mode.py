"""Socket Mode: the same listeners, fed over a WebSocket from the fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.models import TicketState
from channels.slack.app import SlackPlugin, slack_plugin
from channels.slack.workspace import web_client
from tests.journeys.harness import Journey
from tests.slack.conftest import ANA, CUSTOMER, NO_WAIT, TOKEN, slack_settings
from tests.slack.fake_slack import TEAM, FakeSlack


@pytest.fixture
async def socket_plugin(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Journey, SlackPlugin]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    settings = slack_settings(mode="socket")
    journey = Journey(settings)
    client = web_client(TOKEN, base_url=f"{fake.url}api/", interval=NO_WAIT)
    plugin = slack_plugin(settings, journey.escala, client=client)
    await plugin.start()
    try:
        yield journey, plugin
    finally:
        await plugin.stop()


async def test_claim_and_reply_over_socket_mode(
    fake: FakeSlack, socket_plugin: tuple[Journey, SlackPlugin]
) -> None:
    journey, plugin = socket_plugin
    await journey.say("quero falar com um atendente", address=CUSTOMER)
    card = next(c for c in fake.posted("chat.postMessage") if c.args["channel"] == "C111")
    ts = str(card.answer["ts"])
    click = {
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": ANA, "team_id": TEAM},
        "api_app_id": "A0APP", "trigger_id": "t", "channel": {"id": "C111"},
        "container": {"type": "message", "message_ts": ts},
        "actions": [{"type": "button", "action_id": "escala_claim", "value": "1001"}],
    }  # fmt: skip
    assert await fake.push("env-1", "interactive", click) == "env-1"
    await plugin.background.drain()
    ticket = await journey.escala.desk.ticket(1001)
    assert ticket is not None and ticket.state is TicketState.ASSIGNED
    event = {
        "type": "event_callback", "team_id": TEAM, "api_app_id": "A0APP", "event_id": "Ev1",
        "event": {"type": "message", "channel": "C111", "user": ANA, "text": "Olá, aqui é a Ana",
                  "ts": "1700000200.000001", "thread_ts": ts},
    }  # fmt: skip
    assert await fake.push("env-2", "events_api", event) == "env-2"
    await plugin.background.drain()
    assert "Olá, aqui é a Ana" in journey.channels["telegram"].texts(CUSTOMER)[-1]
