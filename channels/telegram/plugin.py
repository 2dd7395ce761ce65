"""The ``telegram`` entry point: validates ``[channels.telegram]`` without importing
aiogram; the adapter (and aiogram) is imported only when the channel is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.edge import Edge
from bot.plugins import ParseContext, Plugin
from channels.telegram.config import TelegramConfig, parse_telegram


class TelegramSpec:
    name = "telegram"
    section = "channels.telegram"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> TelegramConfig:
        return parse_telegram(context.file, table, context.default_locale)

    def build(self, config: TelegramConfig, edge: Edge) -> Plugin:
        from channels.telegram.adapter import TelegramChannel

        return TelegramChannel.from_config(config, edge)


channel = TelegramSpec()
