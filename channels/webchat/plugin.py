"""The ``webchat`` entry point: validates ``[channels.webchat]``; the channel (and
aiohttp-sse) is imported only when the channel is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.edge import Edge
from bot.plugins import ParseContext, Plugin
from channels.webchat.config import WebchatConfig, parse_webchat


class WebchatSpec:
    name = "webchat"
    section = "channels.webchat"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> WebchatConfig:
        return parse_webchat(context.file, table, context.default_locale, context.public_base_url)

    def build(self, config: WebchatConfig, edge: Edge) -> Plugin:
        from channels.webchat.channel import WebChat

        return WebChat(config, edge)


channel = WebchatSpec()
