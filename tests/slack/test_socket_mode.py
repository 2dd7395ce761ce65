"""Socket Mode: the same listeners, fed over a WebSocket from the fake Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.errors import ConfigError
from bot.models import TicketState
from channels.slack.app import SlackPlugin, slack_plugin
from channels.slack.config import load_slack_config
from channels.slack.workspace import web_client
from tests.journeys.harness import Journey
from tests.slack.conftest import ANA, CUSTOMER, NO_WAIT, TOKEN, patient, slack_settings
from tests.slack.fake_slack import TEAM, FakeSlack
from tests.waits import PATIENCE


@pytest.fixture
async def socket_plugin(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Journey, SlackPlugin]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    settings = patient(slack_settings(mode="socket"))
    journey = Journey(settings)
    client = web_client(TOKEN, base_url=f"{fake.url}api/", interval=NO_WAIT)
    plugin = slack_plugin(load_slack_config(settings), journey.escala.edge, client=client)
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


class BlackHole:
    """A TCP server that accepts connections and never answers: a Slack that hangs."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await reader.read()  # until the client goes away

    async def __aexit__(self, *_: object) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_socket_mode_that_cannot_connect_stops_start_up_in_time(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the Socket Mode client retries for ever, so an unreachable Slack
    hung ``escala serve`` at start-up with no word of why."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    settings = slack_settings(mode="socket", connect_timeout_seconds=1)
    journey = Journey(settings)
    client = web_client(TOKEN, base_url=f"{fake.url}api/", interval=NO_WAIT)
    plugin = slack_plugin(load_slack_config(settings), journey.escala.edge, client=client)
    async with BlackHole() as address:
        fake.socket_url = f"ws://{address}/link"
        with pytest.raises(ConfigError) as error:
            # Gives up by itself after connect_timeout_seconds; PATIENCE only turns a
            # hang (the bug) into a failure without timing a busy machine.
            async with asyncio.timeout(PATIENCE):
                await plugin.start()
        await plugin.stop()
    assert error.value.place == "slack.app_token_env"
    assert error.value.reason == (
        "cannot reach Slack (Socket Mode) within 1 s: no answer (or the app token was refused)"
    )
    assert str(error.value).startswith("settings: slack.app_token_env: cannot reach Slack")


async def test_an_unreachable_web_api_stops_start_up_naming_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret-long-enough")
    settings = slack_settings(connect_timeout_seconds=1)
    journey = Journey(settings)
    async with BlackHole() as address:
        client = web_client(TOKEN, base_url=f"http://{address}/api/", interval=NO_WAIT)
        plugin = slack_plugin(load_slack_config(settings), journey.escala.edge, client=client)
        with pytest.raises(ConfigError) as error:
            await plugin.start()
        await plugin.stop()
    assert error.value.place == "slack.bot_token_env"
    assert error.value.reason == "cannot reach Slack (Web API) within 1 s: no answer"
