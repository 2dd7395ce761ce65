"""The ``sms`` and ``whatsapp`` entry points: validate ``[channels.sms]`` and
``[channels.whatsapp]`` without importing the Twilio SDK, which is imported only when
the channel is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.edge import Edge
from bot.plugins import ParseContext, Plugin
from channels.twilio.config import TwilioConfig, parse_twilio


class TwilioSpec:
    def __init__(self, name: str) -> None:
        self.name = name
        self.section = f"channels.{name}"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> TwilioConfig:
        return parse_twilio(
            context.file, self.name, table, context.default_locale, context.public_base_url
        )

    def build(self, config: TwilioConfig, edge: Edge) -> Plugin:
        from channels.twilio.adapter import TwilioChannel

        return TwilioChannel.from_config(config, edge)


sms = TwilioSpec("sms")
whatsapp = TwilioSpec("whatsapp")
