"""Settings: defaults, the documented example, and every way a file can be wrong."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.hours import BusinessHours
from bot.models import EMPTY
from bot.server import ServerConfig, parse_server
from bot.settings import PACKAGED_KB, PACKAGED_ROUTING, default_settings, load_settings
from bot.tiers import TierMap
from bot.toml_config import secret_from_env
from kb.matcher import Thresholds

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad_config"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def test_defaults_are_valid_and_complete() -> None:
    settings = default_settings()
    assert settings.source is None
    assert [t.name for t in settings.tiers] == ["N1", "N2", "N3"]
    assert [t.first_response_minutes for t in settings.tiers] == [15, 120, 480]
    assert [a.id for a in settings.agents] == ["ana", "bruno", "carla"]
    assert settings.kb.paths == (PACKAGED_KB,) and PACKAGED_KB.is_dir()
    assert settings.triage.rules == PACKAGED_ROUTING and PACKAGED_ROUTING.is_file()
    assert all(path.is_dir() for path in settings.flows.paths)
    assert settings.kb.answer_threshold is None, "None: the matcher's own defaults"
    assert settings.store.backend == "memory"
    assert settings.engine.default_locale == "pt-BR"


def test_load_none_is_the_defaults() -> None:
    assert load_settings(None) == default_settings()


def test_config_example_equals_the_defaults() -> None:
    """Guards drift between config.example.toml and the code's defaults."""
    example = ROOT / "config.example.toml"
    settings = load_settings(example)
    assert settings.source == example
    # [server] is kept raw here and validated by the server, which owns its defaults.
    assert parse_server(str(example), settings.server) == ServerConfig()
    assert replace(settings, source=None, server=EMPTY) == default_settings()


def test_config_example_shows_the_matchers_real_default_thresholds() -> None:
    """The commented [kb] thresholds are what an admin copies: they must be the defaults."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    shown = {
        key: float(value)
        for key, value in re.findall(
            r"^# (answer_threshold|suggest_threshold|margin) = ([\d.]+)", text, re.M
        )
    }
    defaults = Thresholds()
    assert shown == {
        "answer_threshold": defaults.answer,
        "suggest_threshold": defaults.suggest,
        "margin": defaults.margin,
    }


def test_tier_lookups() -> None:
    settings = default_settings()
    tiers = TierMap(settings.tiers)
    n1 = tiers.get("N1")
    assert n1 is not None and n1.level == 1
    assert tiers.get("N9") is None
    assert [tiers.next_tier(n) for n in ("N1", "N2", "N3", "N9")] == [
        tiers.get("N2"),
        tiers.get("N3"),
        None,
        None,
    ]
    agents = {agent.id: agent for agent in settings.agents}
    assert agents["bruno"].tiers == ("N1", "N2")


def test_a_full_config_with_n4_redis_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "rules.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("MY_REDIS", "redis://secret@localhost:6379/0")
    config = tmp_path / "escala.toml"
    config.write_text(
        """
[engine]
default_locale = "en"
after_answer_flow = ""
lock_ttl_seconds = 5
[kb]
paths = ["kb"]
answer_threshold = 85
suggest_threshold = 60.5
[triage]
rules = "rules.toml"
[[tiers]]
name = "N1"
level = 1
first_response_minutes = 10
[[tiers]]
name = "N4"
level = 4
first_response_minutes = 1440
[[agents]]
id = "zé"
tiers = ["N4"]
skills = ["security"]
[business_hours]
timezone = "Europe/Lisbon"
days = [5, 6]
start = 09:30:00
end = "17:00"
holidays = [2025-12-25, "2026-01-01"]
[store]
backend = "redis"
url_env = "MY_REDIS"
[channels.telegram]
token_env = "TELEGRAM_BOT_TOKEN"
[slack]
channel = "#support"
""",
        encoding="utf-8",
    )
    settings = load_settings(str(config))
    assert settings.engine.default_locale == "en"
    assert settings.engine.after_answer_flow is None
    assert settings.engine.lock_ttl_seconds == 5.0
    assert settings.kb.paths == ((tmp_path / "kb").resolve(),)
    assert settings.kb.answer_threshold == 85.0 and settings.kb.suggest_threshold == 60.5
    assert settings.triage.rules == (tmp_path / "rules.toml").resolve()
    tiers = TierMap(settings.tiers)
    assert tiers.next_tier("N1") == tiers.get("N4")
    agent = next(a for a in settings.agents if a.id == "zé")
    assert agent.name == "zé" and agent.max_concurrent == 5
    hours = settings.business_hours
    assert hours.days == (5, 6) and hours.start == time(9, 30) and hours.end == time(17)
    assert hours.holidays == (date(2025, 12, 25), date(2026, 1, 1))
    assert settings.store.redis_url() == "redis://secret@localhost:6379/0"
    assert "secret" not in repr(settings.store)
    assert settings.channels["telegram"] == {"token_env": "TELEGRAM_BOT_TOKEN"}
    assert settings.slack == {"channel": "#support"}


BAD_CASES = [
    ("syntax.toml", "line 2, column 24", "TOML syntax error"),
    ("unknown_key.toml", "kb.answer_treshold", "unknown key (did you mean 'answer_threshold'?)"),
    ("unknown_section.toml", "kbb", "unknown section (did you mean 'kb'?)"),
    ("wrong_type.toml", "engine.dedupe_ttl_seconds", "expected an integer, got a string"),
    ("wrong_type_bool.toml", "engine.csat_enabled", "expected true or false, got a string"),
    ("out_of_range.toml", "kb.answer_threshold", "must be between 0 and 100, got 120"),
    ("suggest_above_answer.toml", "kb.suggest_threshold", "must not exceed answer_threshold"),
    ("zero_ttl.toml", "engine.lock_ttl_seconds", "must be greater than 0"),
    ("sweep_too_fast.toml", "engine.timer_sweep_seconds", "must be between 0.1 and 300, got 0.01"),
    ("bad_locale.toml", "engine.default_locale", "'es' is not one of pt-BR, en"),
    ("unknown_tier_in_agent.toml", "agents[1].tiers[2]", "unknown tier 'N9'"),
    ("duplicate_agent.toml", "agents[2].id", "duplicate agent 'ana'"),
    ("tier_levels.toml", "tiers[3].level", "levels must strictly increase: 2 after 3"),
    ("tier_minutes.toml", "tiers[2].first_response_minutes", "must be at least 1, got 0"),
    ("duplicate_tier.toml", "tiers[2].name", "duplicate tier 'N1'"),
    ("missing_path.toml", "kb.paths[1]", "'does/not/exist' does not exist"),
    ("missing_rules.toml", "triage.rules", "'no_such_rules.toml' does not exist"),
    ("bad_timezone.toml", "business_hours.timezone", "unknown time zone 'America/Sao_Paul'"),
    ("bad_time.toml", "business_hours.start", "expected a time like \"08:00\", got '8h'"),
    ("end_before_start.toml", "business_hours.end", "must be after start"),
    ("bad_day.toml", "business_hours.days[3]", "expected a weekday 0 (Monday) to 6 (Sunday)"),
    ("redis_without_url.toml", "store.url", "backend 'redis' needs url or url_env"),
    ("memory_with_url.toml", "store.url", "backend is 'memory'"),
    ("unknown_backend.toml", "store.backend", "'postgres' is not one of memory, redis"),
    ("channel_not_table.toml", "channels.telegram", "expected a table"),
]


@pytest.mark.parametrize(("name", "place", "reason"), BAD_CASES)
def test_bad_config_names_file_place_and_reason(name: str, place: str, reason: str) -> None:
    path = BAD / name
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.file == str(path)
    assert caught.value.place == place
    assert reason in caught.value.reason


def test_every_bad_config_file_is_tested() -> None:
    assert sorted(p.name for p in BAD.glob("*.toml")) == sorted(
        [case[0] for case in BAD_CASES] + ["redis_env_unset.toml"]
    )


def test_redis_url_from_an_unset_variable_stops_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ESCALA_TEST_UNSET_REDIS_URL", raising=False)
    path = BAD / "redis_env_unset.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (caught.value.file, caught.value.place) == (str(path), "store.url_env")
    assert "ESCALA_TEST_UNSET_REDIS_URL is not set" in caught.value.reason


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing)
    assert caught.value.file == str(missing)
    assert caught.value.reason == "file not found"


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALA_TEST_TOKEN", "s3cr3t-value")
    assert secret_from_env("c.toml", "channels.telegram.token_env", "ESCALA_TEST_TOKEN") == (
        "s3cr3t-value"
    )
    monkeypatch.setenv("ESCALA_TEST_TOKEN", "  ")
    with pytest.raises(ConfigError) as caught:
        secret_from_env("c.toml", "channels.telegram.token_env", "ESCALA_TEST_TOKEN")
    assert caught.value.place == "channels.telegram.token_env"
    assert "ESCALA_TEST_TOKEN" in caught.value.reason
    monkeypatch.delenv("ESCALA_TEST_TOKEN")
    with pytest.raises(ConfigError, match="ESCALA_TEST_TOKEN is not set"):
        secret_from_env("c.toml", "slack.token_env", "ESCALA_TEST_TOKEN")


# --- business hours --------------------------------------------------------------------


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SAO_PAULO)


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        (local(2025, 3, 3, 8, 0), True),  # Monday, opening minute
        (local(2025, 3, 3, 19, 59), True),
        (local(2025, 3, 3, 20, 0), False),  # closed at `end`
        (local(2025, 3, 3, 7, 59), False),
        (local(2025, 3, 8, 10, 0), False),  # Saturday
        (datetime(2025, 3, 3, 22, 30, tzinfo=UTC), True),  # 19:30 in São Paulo
        (datetime(2025, 3, 3, 23, 30, tzinfo=UTC), False),  # 20:30 in São Paulo
        (local(2025, 12, 25, 10, 0), False),  # a holiday (Thursday)
    ],
)
def test_business_hours(when: datetime, is_open: bool) -> None:
    hours = BusinessHours(holidays=(date(2025, 12, 25),))
    assert hours.is_open(when) is is_open


def test_business_hours_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        BusinessHours().is_open(datetime(2025, 3, 3, 10, 0))
