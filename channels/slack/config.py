"""The validated ``[slack]`` section.

``Settings.slack`` is the raw table (the core knows no provider); this module checks
it the way ``bot.settings`` checks the rest: unknown keys, wrong types, a tier without
a channel or a Slack user mapped to an unknown agent stop start-up with the file, the
key and the reason. Secrets are read from the environment here, once, and kept out
of ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.errors import ConfigError, ConfigErrors
from bot.settings import Settings
from bot.toml_config import (
    MIN_WEBHOOK_SECRET,
    Section,
    did_you_mean,
    secret_from_env,
    type_name,
)
from bot.triage import load_triage

KEYS = (
    "mode", "bot_token_env", "signing_secret_env", "app_token_env",
    "channels", "private_channels", "agents", "note_prefix", "events_path",
    "card_retry_minutes", "connect_timeout_seconds",
)  # fmt: skip

#: Public (C…) or private (G…) channel ids; events carry ids, never ``#names``.
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
#: Slack user ids (U…, or W… on Enterprise Grid).
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

DEFAULT_NOTE_PREFIXES = ("//", "note:")
#: After a card could not be posted (the client's own quick retries included), try
#: again after 1, then 5, then 15 minutes, then give up with an event.
DEFAULT_CARD_RETRY_MINUTES = (1.0, 5.0, 15.0)
MAX_CARD_RETRIES = 10


@dataclass(frozen=True)
class SlackConfig:
    mode: Literal["http", "socket"]
    bot_token: str = field(repr=False)
    #: Tier name → channel id (every configured tier has one).
    channels: Mapping[str, str]
    #: Slack user id → Escala agent id.
    agents: Mapping[str, str]
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    note_prefixes: tuple[str, ...] = DEFAULT_NOTE_PREFIXES
    events_path: str = "/slack/events"
    #: Tier name → private channel for tickets triage flagged as sensitive (billing,
    #: health ...): their transcript is not shown in the tier's open channel.
    private_channels: Mapping[str, str] = field(default_factory=dict)
    #: Waits before each new attempt at posting a card that failed.
    card_retry_minutes: tuple[float, ...] = DEFAULT_CARD_RETRY_MINUTES
    #: How long start-up may take to reach Slack (token check, Socket Mode connection).
    connect_timeout_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        """A ``[slack]`` table means Slack is on (there is no ``enabled`` key)."""
        return True

    def channel_for(self, tier: str, private: bool) -> str | None:
        """Where a ticket's card goes: the tier's private channel for sensitive tickets
        when there is one, else the tier's channel."""
        return (self.private_channels.get(tier) if private else None) or self.channels.get(tier)

    def tier_of_channel(self, channel_id: str) -> str | None:
        for mapping in (self.channels, self.private_channels):
            tier = next((t for t, cid in mapping.items() if cid == channel_id), None)
            if tier is not None:
                return tier
        return None

    def slack_user(self, agent_id: str) -> str | None:
        return next((user for user, aid in self.agents.items() if aid == agent_id), None)

    def is_note(self, text: str) -> bool:
        lowered = text.lstrip().lower()
        return any(lowered.startswith(prefix.lower()) for prefix in self.note_prefixes)

    def strip_note(self, text: str) -> str:
        stripped = text.lstrip()
        for prefix in self.note_prefixes:
            if stripped.lower().startswith(prefix.lower()):
                return stripped[len(prefix) :].strip()
        return stripped


def enabled(settings: Settings) -> bool:
    """True when the settings file has a ``[slack]`` table."""
    return bool(settings.slack)


def load_slack_config(settings: Settings) -> SlackConfig:
    """Validate ``settings.slack``; raises :class:`~bot.errors.ConfigError`."""
    file = str(settings.source or "settings")
    s = Section(file, "slack", settings.slack)
    s.check_keys(KEYS)
    mode = s.string("mode", "http")
    if mode not in ("http", "socket"):
        raise s.error("mode", f"'{mode}' is not one of http, socket")
    bot_token = secret_from_env(
        file, s.at("bot_token_env"), s.string("bot_token_env", "SLACK_BOT_TOKEN")
    )
    signing_secret = app_token = None
    if mode == "http":
        if "app_token_env" in s.data:
            raise s.error("app_token_env", "set, but mode is 'http' (set mode = \"socket\")")
        signing_secret = secret_from_env(
            file,
            s.at("signing_secret_env"),
            s.string("signing_secret_env", "SLACK_SIGNING_SECRET"),
            min_length=MIN_WEBHOOK_SECRET,
        )
    else:
        app_token = secret_from_env(
            file, s.at("app_token_env"), s.string("app_token_env", "SLACK_APP_TOKEN")
        )
        if "signing_secret_env" in s.data:  # socket mode payloads are not signed
            raise s.error("signing_secret_env", "set, but mode is 'socket' (no HTTP requests)")
    events_path = s.string("events_path", "/slack/events")
    if not events_path.startswith("/"):
        raise s.error("events_path", f"must start with '/', got {events_path!r}")
    tiers = [t.name for t in settings.tiers]
    channels = _channels(s.table("channels"), tiers)
    private = _channels(s.table("private_channels"), tiers, every_tier=False)
    for tier, channel in private.items():
        if channel in channels.values():
            raise s.error(f"private_channels.{tier}", f"{channel} is also a tier's open channel")
    _private_rules_have_channels(settings, private, s)
    return SlackConfig(
        mode="http" if mode == "http" else "socket",
        bot_token=bot_token,
        signing_secret=signing_secret,
        app_token=app_token,
        channels=channels,
        private_channels=private,
        agents=_agents(s.table("agents"), [a.id for a in settings.agents]),
        note_prefixes=_note_prefixes(s),
        events_path=events_path,
        card_retry_minutes=_card_retry_minutes(s),
        connect_timeout_seconds=s.number("connect_timeout_seconds", 30.0, low=1, high=600) or 30.0,
    )


def _private_rules_have_channels(
    settings: Settings, private: Mapping[str, str], s: Section
) -> None:
    """A routing rule that flags tickets private sends them to its tier; with Slack on,
    that tier needs a private channel, or the sensitive transcript would be shown in the
    open one (issue 13). Every such rule is reported at once."""
    triage = load_triage(settings.triage.rules, settings.tiers, settings.business_hours)
    problems = [
        ConfigError(
            str(settings.triage.rules),
            f"rule[{i}] '{rule.name}'.private",
            f"sensitive tickets go to tier {rule.tier}, which has no private Slack channel"
            f" ({s.file}: {s.at('private_channels')}.{rule.tier}): their cards would show"
            " in the open channel",
        )
        for i, rule in enumerate(triage.rules, start=1)
        if rule.private and rule.tier not in private
    ]
    if problems:
        raise ConfigErrors.of(problems)


def _channels(s: Section, tiers: list[str], every_tier: bool = True) -> Mapping[str, str]:
    channels: dict[str, str] = {}
    for tier in s.data:
        if tier not in tiers:
            raise s.error(
                tier, f"unknown tier{did_you_mean(tier, tiers)} (tiers: {', '.join(tiers)})"
            )
        channel = s.string(tier)
        if not _CHANNEL_ID.match(channel):
            raise s.error(tier, f"expected a channel id like C0123ABCD, got {channel!r}")
        channels[tier] = channel
    for tier in tiers if every_tier else ():
        if tier not in channels:
            raise s.error(tier, f"tier {tier} has no Slack channel (every tier needs one)")
    return channels


def _agents(s: Section, agent_ids: list[str]) -> Mapping[str, str]:
    if not s.data:
        raise s.error("", "map at least one Slack user id to an agent id")
    agents: dict[str, str] = {}
    for user in s.data:
        if not _USER_ID.match(user):
            raise s.error(user, f"expected a Slack user id like U0123ABCD, got {user!r}")
        agent = s.string(user)
        if agent not in agent_ids:
            known = ", ".join(agent_ids)
            hint = did_you_mean(agent, agent_ids)
            raise s.error(user, f"unknown agent '{agent}'{hint} (agents: {known})")
        if agent in agents.values():
            raise s.error(user, f"agent '{agent}' is mapped to two Slack users")
        agents[user] = agent
    return agents


def _card_retry_minutes(s: Section) -> tuple[float, ...]:
    key = "card_retry_minutes"
    if key not in s.data:
        return DEFAULT_CARD_RETRY_MINUTES
    value = s.data[key]
    if not isinstance(value, list):
        raise s.error(key, f"expected a list of minutes, got {type_name(value)}")
    if len(value) > MAX_CARD_RETRIES:
        raise s.error(key, f"at most {MAX_CARD_RETRIES} retries, got {len(value)}")
    waits: list[float] = []
    for i, wait in enumerate(value, start=1):
        if isinstance(wait, bool) or not isinstance(wait, int | float):
            raise s.error(f"{key}[{i}]", f"expected a number of minutes, got {type_name(wait)}")
        if not 0 < wait <= 1440:
            raise s.error(f"{key}[{i}]", f"must be more than 0 and at most 1440, got {wait}")
        waits.append(float(wait))
    return tuple(waits)


def _note_prefixes(s: Section) -> tuple[str, ...]:
    if "note_prefix" not in s.data:
        return DEFAULT_NOTE_PREFIXES
    value = s.data["note_prefix"]
    if isinstance(value, str):
        return (s.string("note_prefix"),)
    if isinstance(value, list):
        return s.strings("note_prefix", empty=False)
    raise s.error("note_prefix", f"expected a string or a list of strings, got {type_name(value)}")
