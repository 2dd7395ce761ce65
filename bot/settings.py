"""One settings object, loaded from TOML and validated at start-up.

A wrong file stops the program with a ``ConfigError`` naming the file, the place
(``kb.answer_threshold``, ``tiers[2].first_response_minutes``; list indexes count from
0) and the reason. Nothing falls back silently: an unknown key is a typo, a wrong type
or value is refused, a missing path is an error. Relative paths resolve against the
directory of the settings file. ``config.example.toml`` documents every key with the
same values as ``default_settings()``.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flows
import kb
from bot.errors import ConfigError
from bot.hours import BusinessHours
from bot.models import EMPTY, LOCALES, Agent, Tier

__all__ = [
    "Agent",
    "BusinessHours",
    "EngineSettings",
    "FlowSettings",
    "KbSettings",
    "Section",
    "Settings",
    "StoreSettings",
    "Tier",
    "TriageSettings",
    "default_settings",
    "load_settings",
    "read_toml",
    "secret_from_env",
]

PACKAGED_KB = Path(kb.__file__).resolve().parent / "content"
PACKAGED_FLOWS = Path(flows.__file__).resolve().parent / "default"
PACKAGED_ROUTING = Path(flows.__file__).resolve().parent / "routing.toml"


@dataclass(frozen=True)
class EngineSettings:
    default_locale: str = "pt-BR"
    dedupe_ttl_seconds: int = 86400
    lock_ttl_seconds: float = 30.0
    card_context_messages: int = 10
    greeting_flow: str = "greeting"
    human_flow: str = "talk_to_human"
    status_flow: str = "ticket_status"
    after_answer_flow: str | None = "kb_feedback"
    csat_enabled: bool = True
    #: How often each process pops due timers (SLA alerts, Slack card retries).
    timer_sweep_seconds: float = 5.0


@dataclass(frozen=True)
class KbSettings:
    """``None`` thresholds mean "the matcher's own defaults"."""

    paths: tuple[Path, ...] = (PACKAGED_KB,)
    answer_threshold: float | None = None
    suggest_threshold: float | None = None
    margin: float | None = None
    max_suggestions: int = 3


@dataclass(frozen=True)
class FlowSettings:
    paths: tuple[Path, ...] = (PACKAGED_FLOWS,)


@dataclass(frozen=True)
class TriageSettings:
    rules: Path = PACKAGED_ROUTING


@dataclass(frozen=True)
class StoreSettings:
    """``url`` is the Redis URL itself, or ``url_env`` names the variable holding it
    (the URL may carry a password, so it is kept out of ``repr``).

    The bounds (issue 3) keep one conversation's size in Redis finite: the last
    ``transcript_hot_messages`` messages, then up to ``transcript_archive_messages``
    older ones (0: older ones are dropped), and the last ``conversation_events_cap``
    events per conversation and per ticket. The memory store keeps hot + archive.
    """

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = field(default=None, repr=False)
    url_env: str | None = None
    transcript_hot_messages: int = 500
    transcript_archive_messages: int = 5000
    conversation_events_cap: int = 2000

    def redis_url(self, file: str = "settings") -> str | None:
        """The URL to connect to: ``url``, or the value of ``url_env`` (read now)."""
        if self.url is not None:
            return self.url
        if self.url_env is not None:
            return secret_from_env(file, "store.url_env", self.url_env)
        return None


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("N1", 1, 15, "Frontline: registers, routes and solves on first contact"),
    Tier("N2", 2, 120, "Specialists: configuration, installation, advanced features"),
    Tier("N3", 3, 480, "Engineering: system failures, integrations, security incidents"),
)

DEFAULT_AGENTS: tuple[Agent, ...] = (
    Agent("ana", "Ana", ("N1",), 5, ("billing",)),
    Agent("bruno", "Bruno", ("N1", "N2"), 5, ("setup",)),
    Agent("carla", "Carla", ("N3",), 5, ("security", "integration")),
)


@dataclass(frozen=True)
class Settings:
    source: Path | None
    engine: EngineSettings
    kb: KbSettings
    flows: FlowSettings
    triage: TriageSettings
    tiers: tuple[Tier, ...]
    agents: tuple[Agent, ...]
    business_hours: BusinessHours
    store: StoreSettings
    channels: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    slack: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    #: The raw ``[server]`` table, validated by :func:`bot.server.parse_server`.
    server: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)

    def next_tier(self, name: str) -> Tier | None:
        """The tier one level up from ``name``; ``None`` at the top or for an unknown tier."""
        current = self.tier(name)
        if current is None:
            return None
        higher = [t for t in self.tiers if t.level > current.level]
        return min(higher, key=lambda t: t.level, default=None)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)


def default_settings() -> Settings:
    """The embedded defaults: packaged KB, flows and routing rules, memory store."""
    return Settings(
        source=None,
        engine=EngineSettings(),
        kb=KbSettings(),
        flows=FlowSettings(),
        triage=TriageSettings(),
        tiers=DEFAULT_TIERS,
        agents=DEFAULT_AGENTS,
        business_hours=BusinessHours(),
        store=StoreSettings(),
    )


def secret_from_env(file: str, place: str, env_name: str) -> str:
    """The value of environment variable ``env_name``; never logged, never in an error."""
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise ConfigError(file, place, f"environment variable {env_name} is not set or empty")
    return value


# --- reading TOML ----------------------------------------------------------------------


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table", date: "a date", time: "a time"}
    return names.get(type(value), type(value).__name__)


class _Required(enum.Enum):
    REQUIRED = 0


REQUIRED = _Required.REQUIRED


class Section:
    """One TOML table under validation: typed getters, and unknown keys refused."""

    def __init__(self, file: str, place: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.place = place
        self.data = data

    def at(self, key: str) -> str:
        return f"{self.place}.{key}" if self.place else key

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.at(key) if key else self.place, reason)

    def check_keys(self, allowed: Iterable[str], what: str = "key") -> None:
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown {what}{did_you_mean(key, allowed)}")

    def value(self, key: str, default: object, kinds: tuple[type, ...], what: str) -> Any:
        if key not in self.data:
            if default is REQUIRED:
                raise self.error(key, f"missing (expected {what})")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"expected {what}, got {type_name(value)}")
        if not isinstance(value, kinds):
            raise self.error(key, f"expected {what}, got {type_name(value)}")
        return value

    def string(self, key: str, default: str | _Required = REQUIRED) -> str:
        value: str = self.value(key, default, (str,), "a string")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def optional_string(self, key: str, default: str | None = None) -> str | None:
        """A string, or ``None`` when the value is ``""`` (how TOML says "off")."""
        value: str | None = self.value(key, default, (str,), "a string")
        return value or None

    def boolean(self, key: str, default: bool | _Required = REQUIRED) -> bool:
        value: bool = self.value(key, default, (bool,), "true or false")
        return value

    def integer(
        self, key: str, default: int | _Required = REQUIRED, *, minimum: int | None = None
    ) -> int:
        value: int = self.value(key, default, (int,), "an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def number(
        self,
        key: str,
        default: float | None,
        *,
        low: float | None = None,
        high: float | None = None,
        positive: bool = False,
    ) -> float | None:
        value: int | float | None = self.value(key, default, (int, float), "a number")
        if value is None:
            return None
        if positive and not value > 0:
            raise self.error(key, f"must be greater than 0, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error(key, f"must be between {low:g} and {high:g}, got {value}")
        return float(value)

    def strings(
        self, key: str, default: tuple[str, ...] | _Required = REQUIRED, *, empty: bool = True
    ) -> tuple[str, ...]:
        value: list[Any] | tuple[str, ...] = self.value(key, default, (list,), "a list of strings")
        if not empty and key in self.data and not value:
            raise self.error(key, "must not be an empty list")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {type_name(item)}")
            if not item.strip():
                raise self.error(f"{key}[{i}]", "must not be empty")
        return tuple(value)

    def table(self, key: str) -> Section:
        value: Mapping[str, Any] = self.value(key, {}, (dict,), "a table")
        return Section(self.file, self.at(key), value)

    def tables(self, key: str) -> list[Section] | None:
        """An array of tables (``[[tiers]]``), ``None`` when absent."""
        if key not in self.data:
            return None
        value: list[Any] = self.value(key, REQUIRED, (list,), f"[[{key}]] tables")
        sections = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{i}]", f"expected a table, got {type_name(item)}")
            sections.append(Section(self.file, f"{self.at(key)}[{i}]", item))
        return sections


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; every failure is a ``ConfigError`` naming the file (and line)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, expected a TOML file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(file, "", f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ConfigError(file, "", f"cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = _TOML_LINE.search(str(e))
        reason = _TOML_LINE.sub("", str(e)).strip()
        place = f"line {found.group(1)}, column {found.group(2)}" if found else ""
        raise ConfigError(file, place, f"TOML syntax error: {reason}") from None


# --- the settings file -------------------------------------------------------------------

SECTIONS = (
    "engine", "kb", "flows", "triage", "tiers", "agents",
    "business_hours", "store", "server", "channels", "slack",
)  # fmt: skip

_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def load_settings(path: Path | str | None) -> Settings:
    """The settings in ``path``; ``None`` gives ``default_settings()``."""
    if path is None:
        return default_settings()
    source = Path(path)
    root = Section(str(source), "", read_toml(source))
    root.check_keys(SECTIONS, "section")
    base = source.resolve().parent
    tiers = _tiers(root)
    return Settings(
        source=source,
        engine=_engine(root.table("engine")),
        kb=_kb(root.table("kb"), base),
        flows=_flows(root.table("flows"), base),
        triage=_triage(root.table("triage"), base),
        tiers=tiers,
        agents=_agents(root, tiers),
        business_hours=_business_hours(root.table("business_hours")),
        store=_store(root.table("store")),
        channels=_raw_tables(root.table("channels")),
        slack=MappingProxyType(dict(root.table("slack").data)),
        server=MappingProxyType(dict(root.table("server").data)),
    )


def _engine(s: Section) -> EngineSettings:
    d = EngineSettings()
    s.check_keys(d.__dataclass_fields__)
    locale = s.string("default_locale", d.default_locale)
    if locale not in LOCALES:
        raise s.error("default_locale", f"'{locale}' is not one of {', '.join(LOCALES)}")
    lock_ttl = s.number("lock_ttl_seconds", d.lock_ttl_seconds, positive=True)
    assert lock_ttl is not None
    # Under 0.1 s the sweep is a busy loop on the store; over 5 min an SLA alert is late.
    sweep = s.number("timer_sweep_seconds", d.timer_sweep_seconds, low=0.1, high=300)
    assert sweep is not None
    return EngineSettings(
        default_locale=locale,
        dedupe_ttl_seconds=s.integer("dedupe_ttl_seconds", d.dedupe_ttl_seconds, minimum=1),
        lock_ttl_seconds=lock_ttl,
        card_context_messages=s.integer(
            "card_context_messages", d.card_context_messages, minimum=0
        ),
        greeting_flow=s.string("greeting_flow", d.greeting_flow),
        human_flow=s.string("human_flow", d.human_flow),
        status_flow=s.string("status_flow", d.status_flow),
        after_answer_flow=s.optional_string("after_answer_flow", d.after_answer_flow),
        csat_enabled=s.boolean("csat_enabled", d.csat_enabled),
        timer_sweep_seconds=sweep,
    )


def _path(s: Section, key: str, raw: str, base: Path, kind: Literal["file", "any"]) -> Path:
    path = (base / raw).resolve()
    if not path.exists():
        raise s.error(key, f"'{raw}' does not exist (looked for {path})")
    if kind == "file" and not path.is_file():
        raise s.error(key, f"'{raw}' is not a file ({path})")
    return path


def _paths(s: Section, base: Path, default: tuple[Path, ...]) -> tuple[Path, ...]:
    if "paths" not in s.data:
        return default
    raw = s.strings("paths", empty=False)
    return tuple(_path(s, f"paths[{i}]", p, base, "any") for i, p in enumerate(raw))


def _kb(s: Section, base: Path) -> KbSettings:
    d = KbSettings()
    s.check_keys(d.__dataclass_fields__)
    answer = s.number("answer_threshold", None, low=0, high=100)
    suggest = s.number("suggest_threshold", None, low=0, high=100)
    if answer is not None and suggest is not None and suggest > answer:
        raise s.error(
            "suggest_threshold", f"must not exceed answer_threshold ({suggest:g} > {answer:g})"
        )
    return KbSettings(
        paths=_paths(s, base, d.paths),
        answer_threshold=answer,
        suggest_threshold=suggest,
        margin=s.number("margin", None, low=0, high=100),
        max_suggestions=s.integer("max_suggestions", d.max_suggestions, minimum=1),
    )


def _flows(s: Section, base: Path) -> FlowSettings:
    s.check_keys(("paths",))
    return FlowSettings(paths=_paths(s, base, FlowSettings().paths))


def _triage(s: Section, base: Path) -> TriageSettings:
    s.check_keys(("rules",))
    if "rules" not in s.data:
        return TriageSettings()
    return TriageSettings(rules=_path(s, "rules", s.string("rules"), base, "file"))


def _tiers(root: Section) -> tuple[Tier, ...]:
    sections = root.tables("tiers")
    if sections is None:
        return DEFAULT_TIERS
    if not sections:
        raise root.error("tiers", "at least one tier is needed")
    tiers: list[Tier] = []
    for s in sections:
        s.check_keys(("name", "level", "first_response_minutes", "description"))
        tier = Tier(
            name=s.string("name"),
            level=s.integer("level", minimum=1),
            first_response_minutes=s.integer("first_response_minutes", minimum=1),
            description=s.optional_string("description", "") or "",
        )
        if any(t.name == tier.name for t in tiers):
            raise s.error("name", f"duplicate tier '{tier.name}'")
        if tiers and tier.level <= tiers[-1].level:
            raise s.error(
                "level",
                f"levels must strictly increase: {tier.level} after {tiers[-1].level}"
                f" ('{tiers[-1].name}')",
            )
        tiers.append(tier)
    return tuple(tiers)


def _agents(root: Section, tiers: tuple[Tier, ...]) -> tuple[Agent, ...]:
    sections = root.tables("agents")
    if sections is None:
        return DEFAULT_AGENTS
    names = [t.name for t in tiers]
    agents: list[Agent] = []
    for s in sections:
        s.check_keys(("id", "name", "tiers", "max_concurrent", "skills"))
        agent_id = s.string("id")
        agent_tiers = s.strings("tiers", empty=False)
        for i, name in enumerate(agent_tiers):
            if name not in names:
                raise s.error(
                    f"tiers[{i}]",
                    f"unknown tier '{name}'{did_you_mean(name, names)} (tiers: {', '.join(names)})",
                )
        if any(a.id == agent_id for a in agents):
            raise s.error("id", f"duplicate agent '{agent_id}'")
        agents.append(
            Agent(
                id=agent_id,
                name=s.string("name", agent_id),
                tiers=agent_tiers,
                max_concurrent=s.integer("max_concurrent", 5, minimum=1),
                skills=s.strings("skills", ()),
            )
        )
    return tuple(agents)


def _clock(s: Section, key: str, default: time) -> time:
    if key not in s.data:
        return default
    value = s.data[key]
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not (found := _HH_MM.match(value)):
        raise s.error(key, f'expected a time like "08:00", got {value!r}')
    return time(int(found.group(1)), int(found.group(2)))


def _business_hours(s: Section) -> BusinessHours:
    d = BusinessHours()
    s.check_keys(d.__dataclass_fields__)
    timezone = s.string("timezone", d.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise s.error("timezone", f"unknown time zone '{timezone}'") from None
    days: list[Any] | tuple[int, ...] = s.value("days", d.days, (list,), "a list of days")
    for i, day in enumerate(days):
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise s.error(f"days[{i}]", f"expected a weekday 0 (Monday) to 6 (Sunday), got {day!r}")
    if len(set(days)) != len(days):
        raise s.error("days", "a day is listed twice")
    start, end = _clock(s, "start", d.start), _clock(s, "end", d.end)
    if not start < end:
        raise s.error("end", f"must be after start ({end:%H:%M} <= {start:%H:%M})")
    raw_holidays: list[Any] | tuple[date, ...] = s.value(
        "holidays", d.holidays, (list,), "a list of dates"
    )
    holidays: list[date] = []
    for i, item in enumerate(raw_holidays):
        try:
            holidays.append(item if isinstance(item, date) else date.fromisoformat(item))
        except (TypeError, ValueError):
            raise s.error(
                f"holidays[{i}]", f"expected a date like 2025-12-25, got {item!r}"
            ) from None
    return BusinessHours(timezone, tuple(days), start, end, tuple(holidays))


def _store(s: Section) -> StoreSettings:
    s.check_keys(
        (
            "backend",
            "url",
            "url_env",
            "transcript_hot_messages",
            "transcript_archive_messages",
            "conversation_events_cap",
        )
    )
    backend = s.string("backend", "memory")
    url = s.optional_string("url")
    url_env = s.optional_string("url_env")
    defaults = StoreSettings()
    hot = s.integer("transcript_hot_messages", defaults.transcript_hot_messages, minimum=1)
    archive = s.integer(
        "transcript_archive_messages", defaults.transcript_archive_messages, minimum=0
    )
    events = s.integer("conversation_events_cap", defaults.conversation_events_cap, minimum=1)
    bounds = StoreSettings(
        transcript_hot_messages=hot,
        transcript_archive_messages=archive,
        conversation_events_cap=events,
    )
    if backend == "memory":
        for key in ("url", "url_env"):
            if key in s.data:
                raise s.error(key, "set, but backend is 'memory' (set backend = \"redis\")")
        return bounds
    if backend != "redis":
        raise s.error("backend", f"'{backend}' is not one of memory, redis")
    if url is None and url_env is None:
        raise s.error("url", "backend 'redis' needs url or url_env")
    if url is not None and url_env is not None:
        raise s.error("url_env", "set either url or url_env, not both")
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise s.error("url", "expected a redis://, rediss:// or unix:// URL")
    if url_env is not None:
        secret_from_env(s.file, s.at("url_env"), url_env)  # fail at start-up, not later
    return StoreSettings("redis", url, url_env, hot, archive, events)


def _raw_tables(s: Section) -> Mapping[str, Any]:
    for key, value in s.data.items():
        if not isinstance(value, dict):
            raise s.error(key, f"expected a table [{s.at(key)}], got {type_name(value)}")
    return MappingProxyType(dict(s.data))
