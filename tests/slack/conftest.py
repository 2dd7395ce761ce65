"""An Escala with the Slack plugin mounted on a real aiohttp app, a fake Slack Web API
behind the real ``AsyncWebClient``, and a driver that posts signed Slack requests."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier

from bot.settings import Settings, default_settings
from channels.slack.app import SlackPlugin, slack_plugin
from channels.slack.config import load_slack_config
from channels.slack.workspace import web_client
from tests.journeys.harness import JOURNEY_KB, Journey
from tests.slack.fake_slack import TEAM, Call, FakeSlack
from tests.waits import PATIENCE

#: Retries without waiting: tests never sleep (a 429's Retry-After is Slack's own).
NO_WAIT = FixedValueRetryIntervalCalculator(0.0)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
CHANNELS = {"N1": "C111", "N2": "C222", "N3": "C333"}
PRIVATE_CHANNELS = {"N1": "G0PRIV"}
ANA, BRUNO, CARLA, STRANGER = "U0AAA", "U0BBB", "U0CCC", "U0ZZZ"
AGENTS = {ANA: "ana", BRUNO: "bruno", CARLA: "carla"}
CUSTOMER = "5511999991001"


def slack_settings(**overrides: Any) -> Settings:
    settings = default_settings()
    # N1 takes the sensitive tickets of the default routing rules: it needs a private
    # channel (issue 13: `escala check` refuses a private rule's tier without one).
    table: dict[str, Any] = {
        "channels": dict(CHANNELS),
        "private_channels": dict(PRIVATE_CHANNELS),
        "agents": dict(AGENTS),
    }
    table.update(overrides)
    return replace(
        settings,
        kb=replace(settings.kb, paths=(JOURNEY_KB,)),
        slack=MappingProxyType(table),
    )


def patient(settings: Settings) -> Settings:
    """A start-up that waits for the fake Slack as long as a loaded machine needs
    (``connect_timeout_seconds`` is 30 s by default), unless the test set a limit."""
    table = dict(settings.slack or {})
    table.setdefault("connect_timeout_seconds", PATIENCE)
    return replace(settings, slack=MappingProxyType(table))


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's scheme: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return signature


class Slack:
    """Plays Slack's side of the HTTP conversation: signed events, clicks, modals and
    slash commands, then waits for the work the listeners started."""

    def __init__(
        self, http: TestClient[web.Request, web.Application], plugin: SlackPlugin, fake: FakeSlack
    ) -> None:
        self.http = http
        self.plugin = plugin
        self.fake = fake
        self._event = 0

    def headers(self, body: str, content_type: str, **extra: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        signature = sign(SECRET, timestamp, body)
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            **extra,
        }

    async def post(
        self,
        body: str,
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        wait: bool = True,
    ) -> tuple[int, str]:
        """``wait``: also wait for the work the request started (the default)."""
        sent = headers if headers is not None else self.headers(body, content_type)
        async with self.http.post("/slack/events", data=body.encode(), headers=sent) as response:
            text = await response.text()
            status = response.status
        if wait:
            await self.plugin.background.drain()
        return status, text

    async def interaction(self, payload: dict[str, Any], *, wait: bool = True) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", wait=wait)

    async def click(
        self,
        action_id: str,
        number: int,
        user: str,
        channel: str = "C111",
        ts: str = "",
        *,
        wait: bool = True,
    ) -> tuple[int, str]:
        return await self.interaction(
            {
                "type": "block_actions",
                "team": {"id": TEAM},
                "user": {"id": user, "team_id": TEAM},
                "api_app_id": "A0APP",
                "trigger_id": f"trigger-{user}",
                "channel": {"id": channel},
                "container": {"type": "message", "channel_id": channel, "message_ts": ts},
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": "b",
                        "value": str(number),
                        "action_ts": "1",
                    }
                ],
            },
            wait=wait,
        )

    async def submit_escalation(
        self, number: int, user: str, tier: str | None, reason: str, channel: str = "C111"
    ) -> tuple[int, str]:
        selected = {"selected_option": {"value": tier}} if tier else {"selected_option": None}
        return await self.interaction(
            {
                "type": "view_submission",
                "team": {"id": TEAM},
                "user": {"id": user, "team_id": TEAM},
                "api_app_id": "A0APP",
                "view": {
                    "id": "V0VIEW",
                    "type": "modal",
                    "callback_id": "escala_escalate_view",
                    "private_metadata": json.dumps({"ticket": str(number), "channel": channel}),
                    "state": {
                        "values": {
                            "tier": {"tier": {"type": "static_select", **selected}},
                            "reason": {"reason": {"type": "plain_text_input", "value": reason}},
                        }
                    },
                },
            }
        )

    def event_body(
        self, user: str, text: str, thread_ts: str | None, channel: str = "C111", **more: Any
    ) -> tuple[str, str]:
        self._event += 1
        event_id = f"Ev{self._event:04d}"
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": f"1700000100.{self._event:06d}",
            "channel_type": "channel",
            **more,
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        body = {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "event": event,
            "event_id": event_id,
            "event_time": 1700000100,
        }
        return json.dumps(body), event_id

    async def thread_reply(
        self, user: str, text: str, thread_ts: str, channel: str = "C111"
    ) -> tuple[int, str]:
        body, _ = self.event_body(user, text, thread_ts, channel)
        return await self.post(body, "application/json")

    async def command(self, user: str, text: str) -> tuple[int, str]:
        self._event += 1  # Slack gives every command its own trigger id
        body = urlencode(
            {
                "command": "/escala",
                "text": text,
                "user_id": user,
                "team_id": TEAM,
                "channel_id": "C111",
                "trigger_id": f"trigger-cmd-{self._event}",
                "api_app_id": "A0APP",
                "response_url": f"{self.fake.url}respond/1",
            }
        )
        return await self.post(body, "application/x-www-form-urlencoded")


class World:
    def __init__(self, journey: Journey, slack: Slack, fake: FakeSlack) -> None:
        self.journey = journey
        self.slack = slack
        self.fake = fake

    @property
    def customer(self) -> list[str]:
        return self.journey.channels["telegram"].texts(CUSTOMER)

    async def customer_says(self, text: str) -> None:
        await self.journey.say(text, address=CUSTOMER)

    def card(self, channel: str = "C111") -> dict[str, Any]:
        """The last card posted (top-level message) in ``channel``."""
        return self._card(channel).args

    def card_ts(self, channel: str = "C111") -> str:
        return str(self._card(channel).answer["ts"])

    def _card(self, channel: str) -> Call:
        cards = [
            c
            for c in self.fake.posted("chat.postMessage")
            if c.args["channel"] == channel and "thread_ts" not in c.args
        ]
        assert cards, f"no card in {channel}"
        return cards[-1]

    def thread(self, channel: str = "C111") -> list[str]:
        """Texts posted in the thread of the last card of ``channel``."""
        ts = self.card_ts(channel)
        return [
            str(a["text"]) for a in self.fake.of("chat.postMessage") if a.get("thread_ts") == ts
        ]

    def updates(self, channel: str = "C111") -> list[str]:
        return [
            blocks_text(a["blocks"]) for a in self.fake.of("chat.update") if a["channel"] == channel
        ]

    def ephemerals(self, user: str) -> list[str]:
        return [str(a["text"]) for a in self.fake.of("chat.postEphemeral") if a["user"] == user]


def blocks_text(blocks: Any) -> str:
    """All the text in a list of blocks, in order."""
    return json.dumps(blocks, ensure_ascii=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def settings() -> Settings:
    return slack_settings()


@asynccontextmanager
async def world_for(
    settings: Settings, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """A customer channel, the Slack plugin on a test server, and the fake Slack."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    settings = patient(settings)
    journey = Journey(settings)
    client = web_client(TOKEN, base_url=f"{fake.url}api/", interval=NO_WAIT)
    plugin = slack_plugin(load_slack_config(settings), journey.escala.edge, client=client)
    app = web.Application()
    app.add_routes(plugin.routes())
    http = TestClient(TestServer(app, host="127.0.0.1"))
    await http.start_server()
    await plugin.start()
    try:
        yield World(journey, Slack(http, plugin, fake), fake)
    finally:
        await plugin.stop()
        await http.close()


@pytest.fixture
async def world(
    fake: FakeSlack, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    async with world_for(settings, fake, monkeypatch) as world:
        yield world
