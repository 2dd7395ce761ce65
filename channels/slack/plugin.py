"""The ``slack`` entry point: the agent workspace, configured by ``[slack]``.
Validating it imports neither slack_bolt nor slack_sdk; building it does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.edge import Edge
from bot.plugins import ParseContext, Plugin
from channels.slack.config import SlackConfig, load_slack_config


class SlackSpec:
    name = "slack"
    section = "slack"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> SlackConfig:
        return load_slack_config(context.settings)

    def build(self, config: SlackConfig, edge: Edge) -> Plugin:
        from channels.slack.app import slack_plugin

        return slack_plugin(config, edge)


channel = SlackSpec()
