"""A tiny channel that exists only for the tests: registered through the
``escala.channels`` entry points exactly as a third-party package would register
one (tests/plugins/test_plugins.py writes the distribution metadata), it proves a new
channel touches nothing in ``bot/``.

``POST <path>`` with ``{"from": ..., "id": ..., "text": ...}`` is a customer
message; ``GET <path>/outbox`` lists what the bot sent; ``GET <path>/modules`` says
which heavy client libraries the process has imported (the start-up probe).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.edge import ChannelPort, Edge
from bot.errors import ConfigError
from bot.models import InboundMessage, OutboundMessage
from bot.plugins import ParseContext, Plugin

HEAVY = ("aiogram", "slack_bolt", "slack_sdk", "twilio")


@dataclass(frozen=True)
class EchoConfig:
    path: str
    enabled: bool = True


class EchoChannel:
    name = "echo"

    def __init__(self, config: EchoConfig, port: ChannelPort) -> None:
        self.config = config
        self.port = port
        self.sent: list[dict[str, str]] = []
        port.register_sender("echo", self)

    def routes(self) -> Sequence[web.RouteDef]:
        path = self.config.path
        return (
            web.post(path, self.inbound),
            web.get(f"{path}/outbox", self.outbox),
            web.get(f"{path}/modules", self.modules),
        )

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        self.sent.append({"to": address, "text": message.text})

    async def inbound(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.port.receive(
            InboundMessage(
                channel="echo",
                address=str(body["from"]),
                text=str(body["text"]),
                provider_message_id=str(body["id"]),
                received_at=self.port.now(),
                locale="pt-BR",
            )
        )
        return web.Response(text="ok\n")

    async def outbox(self, request: web.Request) -> web.Response:
        return web.json_response(self.sent)

    async def modules(self, request: web.Request) -> web.Response:
        return web.json_response({name: name in sys.modules for name in HEAVY})


class EchoSpec:
    name = "echo"
    section = "channels.echo"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> EchoConfig:
        path = table.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(
                context.file, "channels.echo.path", "must be a path starting with '/'"
            )
        return EchoConfig(path=path)

    def build(self, config: EchoConfig, edge: Edge) -> Plugin:
        return EchoChannel(config, edge)


channel = EchoSpec()
