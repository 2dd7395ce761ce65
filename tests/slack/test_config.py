"""The [slack] section: every mistake stops start-up naming the key and why."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ConfigError
from channels.slack.config import load_slack_config
from tests.slack.conftest import AGENTS, CHANNELS, SECRET, TOKEN, slack_settings


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")


def test_defaults() -> None:
    config = load_slack_config(slack_settings())
    assert config.mode == "http"
    assert config.bot_token == TOKEN and config.signing_secret == SECRET
    assert config.channels == CHANNELS and config.agents == AGENTS
    assert config.note_prefixes == ("//", "note:")
    assert config.card_retry_minutes == (1.0, 5.0, 15.0)
    assert config.connect_timeout_seconds == 30.0
    assert TOKEN not in repr(config) and SECRET not in repr(config)
    assert config.is_note("NOTE: x") and config.strip_note("  // hello ") == "hello"


def test_socket_mode_needs_app_token_not_signing_secret() -> None:
    config = load_slack_config(slack_settings(mode="socket"))
    assert config.app_token == "xapp-test" and config.signing_secret is None


def test_note_prefix_string_or_list() -> None:
    assert load_slack_config(slack_settings(note_prefix="!")).note_prefixes == ("!",)
    assert load_slack_config(slack_settings(note_prefix=["#n", "pvt"])).note_prefixes == (
        "#n",
        "pvt",
    )


@pytest.mark.parametrize(
    ("overrides", "place", "reason"),
    [
        ({"mdoe": "http"}, "slack.mdoe", "unknown key (did you mean 'mode'?)"),
        ({"mode": "webhook"}, "slack.mode", "'webhook' is not one of http, socket"),
        ({"channels": {"N1": "C111", "N2": "C222"}}, "slack.channels.N3", "has no Slack channel"),
        ({"channels": {**CHANNELS, "N9": "C999"}}, "slack.channels.N9", "unknown tier"),
        ({"channels": {**CHANNELS, "N1": "#support"}}, "slack.channels.N1", "channel id"),
        ({"channels": {**CHANNELS, "N1": 5}}, "slack.channels.N1", "expected a string"),
        ({"agents": {}}, "slack.agents", "at least one"),
        ({"agents": {"U0AAA": "anna"}}, "slack.agents.U0AAA", "did you mean 'ana'"),
        ({"agents": {"ana": "ana"}}, "slack.agents.ana", "Slack user id"),
        ({"agents": {"U0AAA": "ana", "U0XXX": "ana"}}, "slack.agents.U0XXX", "two Slack users"),
        ({"note_prefix": 3}, "slack.note_prefix", "a string or a list"),
        ({"note_prefix": ""}, "slack.note_prefix", "must not be empty"),
        ({"app_token_env": "X"}, "slack.app_token_env", "mode is 'http'"),
        ({"events_path": "slack"}, "slack.events_path", "must start with '/'"),
        ({"bot_token_env": "NOPE_UNSET"}, "slack.bot_token_env", "NOPE_UNSET is not set"),
        ({"card_retry_minutes": 5}, "slack.card_retry_minutes", "a list of minutes"),
        ({"card_retry_minutes": [1, 0]}, "slack.card_retry_minutes[2]", "more than 0"),
        ({"card_retry_minutes": [1, "5"]}, "slack.card_retry_minutes[2]", "number of minutes"),
        ({"card_retry_minutes": [1] * 11}, "slack.card_retry_minutes", "at most 10"),
        ({"connect_timeout_seconds": 0}, "slack.connect_timeout_seconds", "between 1 and 600"),
        ({"connect_timeout_seconds": "30"}, "slack.connect_timeout_seconds", "a number"),
    ],
)
def test_mistakes(overrides: dict[str, Any], place: str, reason: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_slack_config(slack_settings(**overrides))
    assert error.value.place == place
    assert reason in error.value.reason


def test_socket_mode_refuses_signing_secret() -> None:
    with pytest.raises(ConfigError) as error:
        load_slack_config(slack_settings(mode="socket", signing_secret_env="X"))
    assert error.value.place == "slack.signing_secret_env"
