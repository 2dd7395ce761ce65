"""One settings object, loaded from TOML and validated at start-up.

A wrong file stops the program with a ``ConfigError`` naming the file, the place
(``kb.answer_threshold``, ``tiers[2].first_response_minutes``; positions in lists
count from 1, as in every file Escala reads) and the reason. Nothing falls back silently: an unknown key is a typo, a wrong type
or value is refused, a missing path is an error. Relative paths resolve against the
directory of the settings file. ``config.example.toml`` documents every key with the
same values as ``default_settings()``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flows
import kb
from bot.errors import Problems
from bot.hours import BusinessHours
from bot.models import (
    BREACH_ORDER,
    EMPTY,
    LOCALES,
    Agent,
    BreachAction,
    Calendar,
    Role,
    SkillMatch,
    Tier,
)
from bot.toml_config import Section, did_you_mean, read_toml, secret_from_env, type_name
from kb import semantic as kb_semantic

if TYPE_CHECKING:
    from kb.matcher import Thresholds

__all__ = [
    "Agent",
    "BusinessHours",
    "EngineSettings",
    "FlowSettings",
    "KbSettings",
    "Settings",
    "StoreSettings",
    "Tier",
    "TriageSettings",
    "default_settings",
    "load_settings",
]

E = TypeVar("E", bound=enum.Enum)

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
    #: Mask payment card and CPF numbers in what customers send (:mod:`bot.masking`).
    mask_card_numbers: bool = True
    mask_cpf: bool = True
    #: How long a message waits for its conversation's lock before a quick 503 the
    #: provider retries (issue 11): far below any provider's webhook timeout.
    lock_wait_seconds: float = 5.0
    #: The durable outbox's delivery lease: a process killed with replies queued
    #: leaves them to another process after this long (issue 11).
    outbox_lease_seconds: float = 30.0


@dataclass(frozen=True)
class KbSettings:
    """``None`` thresholds mean "the matcher's own defaults"."""

    paths: tuple[Path, ...] = (PACKAGED_KB,)
    answer_threshold: float | None = None
    suggest_threshold: float | None = None
    margin: float | None = None
    max_suggestions: int = 3
    #: Fuse sentence embeddings with the lexical matcher (issue 19, ``kb.fused``):
    #: ``None`` means "when the ``semantic`` extra is installed".
    semantic: bool | None = None
    #: Where phrasing embeddings are cached (``None``: ``kb.semantic.default_cache_dir``).
    semantic_cache: Path | None = None

    @property
    def semantic_on(self) -> bool:
        """Whether the fused matcher runs (``semantic``, else whether the extra is there)."""
        return kb_semantic.available() if self.semantic is None else self.semantic


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
    #: Events the event stream keeps (at least; issue 14): reports and exports read it.
    events_stream_cap: int = 1_000_000
    #: The URL is a node of a Redis Cluster (``redis.asyncio.RedisCluster``).
    cluster: bool = False
    #: Retention: a conversation (with its contact's keys) idle this long expires
    #: (Redis; None: kept until erased).
    conversation_ttl_days: float | None = None
    #: Bytes of transcript kept per conversation, oldest dropped first (0: no cap).
    transcript_max_bytes: int = 1_048_576

    def redis_url(self, file: str = "settings") -> str | None:
        """The URL to connect to: ``url``, or the value of ``url_env`` (read now)."""
        if self.url is not None:
            return self.url
        if self.url_env is not None:
            return secret_from_env(file, "store.url_env", self.url_env)
        return None


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("N1", 1, 15, "Frontline: registers, routes and solves on first contact", 480),
    Tier("N2", 2, 120, "Specialists: configuration, installation, advanced features", 1440),
    Tier("N3", 3, 480, "Engineering: system failures, integrations, security incidents", 2880),
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
    #: The raw ``[metrics]`` and ``[logging]`` tables, validated by :mod:`bot.metrics`
    #: and :mod:`bot.logs` (issue 14).
    metrics: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    logging: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    #: The raw ``[web]`` table (web console), validated by its plug-in (``channels/web``).
    web: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


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


# --- the settings file -------------------------------------------------------------------

SECTIONS = (
    "engine", "kb", "flows", "triage", "tiers", "agents",
    "business_hours", "store", "server", "channels", "slack", "metrics", "logging", "web",
)  # fmt: skip

_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def thresholds(settings: Settings, defaults: Thresholds | None = None) -> Thresholds:
    """The matcher's thresholds: the values the config sets over ``defaults`` (``None``:
    the lexical matcher's; the fused matcher passes its own operating point,
    ``kb.fused.Fusion.thresholds``)."""
    # Imported here: the matcher brings numpy and rapidfuzz, which most commands that
    # read settings never need (issue 18: `escala kb ask` start-up).
    from kb.matcher import Thresholds

    if defaults is None:
        defaults = Thresholds()
    overrides = {
        "answer": settings.kb.answer_threshold,
        "suggest": settings.kb.suggest_threshold,
        "margin": settings.kb.margin,
        "max_suggestions": settings.kb.max_suggestions,
    }
    values = {f.name: getattr(defaults, f.name) for f in fields(Thresholds)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if settings.kb.suggest_threshold is None:
        # An answer threshold set below the default suggest one (the fused matcher's is
        # higher than the lexical's): suggesting starts where answering stops.
        values["suggest"] = min(values["suggest"], values["answer"])
    return Thresholds(**values)


def load_settings(path: Path | str | None) -> Settings:
    """The settings in ``path``; ``None`` gives ``default_settings()``."""
    if path is None:
        return default_settings()
    source = Path(path)
    root = Section(str(source), "", read_toml(source))
    root.check_keys(SECTIONS, "section")
    base = source.resolve().parent
    # Every section is checked, so a file with three mistakes shows all three at once.
    problems = Problems()
    parts: dict[str, Any] = {}
    readers: dict[str, Callable[[], Any]] = {
        "engine": lambda: _engine(root.table("engine")),
        "kb": lambda: _kb(root.table("kb"), base),
        "flows": lambda: _flows(root.table("flows"), base),
        "triage": lambda: _triage(root.table("triage"), base),
        "tiers": lambda: _tiers(root),
        "agents": lambda: _agents(root, parts["tiers"]),
        "business_hours": lambda: _business_hours(root.table("business_hours")),
        "store": lambda: _store(root.table("store")),
        "channels": lambda: _raw_tables(root.table("channels")),
        "slack": lambda: MappingProxyType(dict(root.table("slack").data)),
        "server": lambda: MappingProxyType(dict(root.table("server").data)),
        "metrics": lambda: MappingProxyType(dict(root.table("metrics").data)),
        "logging": lambda: MappingProxyType(dict(root.table("logging").data)),
        "web": lambda: MappingProxyType(dict(root.table("web").data)),
    }
    for name, read in readers.items():
        if name == "agents" and "tiers" not in parts:
            continue  # agents name tiers: checked once the tiers are right
        with problems.check():
            parts[name] = read()
    problems.raise_if_any()
    return Settings(source=source, **parts)


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
        mask_card_numbers=s.boolean("mask_card_numbers", d.mask_card_numbers),
        mask_cpf=s.boolean("mask_cpf", d.mask_cpf),
        lock_wait_seconds=_number(s, "lock_wait_seconds", d.lock_wait_seconds, 0.01, 60),
        outbox_lease_seconds=_number(s, "outbox_lease_seconds", d.outbox_lease_seconds, 0.5, 3600),
    )


def _number(s: Section, key: str, default: float, low: float, high: float) -> float:
    value = s.number(key, default, low=low, high=high)
    assert value is not None
    return value


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
    return tuple(_path(s, f"paths[{i}]", p, base, "any") for i, p in enumerate(raw, start=1))


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
        semantic=_semantic(s),
        semantic_cache=(
            _directory(s, "semantic_cache", base) if "semantic_cache" in s.data else None
        ),
    )


def _semantic(s: Section) -> bool | None:
    if "semantic" not in s.data:
        return None
    on = s.boolean("semantic")
    if on and not kb_semantic.available():
        raise s.error("semantic", f"true, but {kb_semantic.missing_reason()}")
    return on


def _directory(s: Section, key: str, base: Path) -> Path:
    raw = s.string(key)
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base / path
    if path.exists() and not path.is_dir():
        raise s.error(key, f"'{raw}' is not a directory ({path})")
    return path


def _flows(s: Section, base: Path) -> FlowSettings:
    s.check_keys(("paths",))
    return FlowSettings(paths=_paths(s, base, FlowSettings().paths))


def _triage(s: Section, base: Path) -> TriageSettings:
    s.check_keys(("rules",))
    if "rules" not in s.data:
        return TriageSettings()
    return TriageSettings(rules=_path(s, "rules", s.string("rules"), base, "file"))


TIER_KEYS = (
    "name", "level", "first_response_minutes", "resolution_minutes", "description",
    "calendar", "on_first_response_breach", "on_resolution_breach", "role",
    "assignment", "offer_seconds", "skill_match",
)  # fmt: skip


def choice(s: Section, key: str, kind: type[E], default: E) -> E:
    """An enum value given by its string (``calendar = "24x7"``)."""
    if key not in s.data:
        return default
    raw = s.string(key)
    values = [str(v.value) for v in kind]
    try:
        return kind(raw)
    except ValueError:
        raise s.error(
            key, f"'{raw}' is not one of {', '.join(values)}{did_you_mean(raw, values)}"
        ) from None


def breach_actions(s: Section, key: str) -> tuple[BreachAction, ...] | None:
    """A breach policy: a list of actions, run in :data:`BREACH_ORDER`; None if unset."""
    if key not in s.data:
        return None
    raw = s.strings(key)
    names = [a.value for a in BreachAction]
    for i, name in enumerate(raw, start=1):
        if name not in names:
            raise s.error(
                f"{key}[{i}]",
                f"'{name}' is not one of {', '.join(names)}{did_you_mean(name, names)}",
            )
    if len(set(raw)) != len(raw):
        raise s.error(key, "an action is listed twice")
    return tuple(a for a in BREACH_ORDER if a.value in raw)


def _or(
    value: tuple[BreachAction, ...] | None, default: tuple[BreachAction, ...]
) -> tuple[BreachAction, ...]:
    return default if value is None else value


def minutes(s: Section, key: str) -> int | None:
    return s.integer(key, minimum=1) if key in s.data else None


def _tiers(root: Section) -> tuple[Tier, ...]:
    sections = root.tables("tiers")
    if sections is None:
        return DEFAULT_TIERS
    if not sections:
        raise root.error("tiers", "at least one tier is needed")
    tiers: list[Tier] = []
    problems = Problems()  # every tier checked: all problems at once
    for s in sections:
        with problems.check():
            tiers.append(_tier(s, tiers))
    problems.raise_if_any()
    for s, tier in zip(sections, tiers, strict=True):
        for key in ("on_first_response_breach", "on_resolution_breach"):
            if BreachAction.ESCALATE in getattr(tier, key) and tier is tiers[-1]:
                raise s.error(key, f"escalate: {tier.name} is the last tier")
    return tuple(tiers)


def _tier(s: Section, tiers: list[Tier]) -> Tier:
    """One ``[[tiers]]`` table, checked against the tiers before it."""
    s.check_keys(TIER_KEYS)
    assignment = s.string("assignment", "pull")
    if assignment not in ("pull", "auto"):
        raise s.error("assignment", f"'{assignment}' is not one of pull, auto")
    d = Tier("", 0, 0)
    tier = Tier(
        name=s.string("name"),
        level=s.integer("level", minimum=1),
        first_response_minutes=s.integer("first_response_minutes", minimum=1),
        description=s.optional_string("description", "") or "",
        resolution_minutes=minutes(s, "resolution_minutes"),
        calendar=choice(s, "calendar", Calendar, d.calendar),
        on_first_response_breach=_or(
            breach_actions(s, "on_first_response_breach"), d.on_first_response_breach
        ),
        on_resolution_breach=_or(breach_actions(s, "on_resolution_breach"), d.on_resolution_breach),
        role=choice(s, "role", Role, d.role),
        auto_assign=assignment == "auto",
        offer_seconds=s.integer("offer_seconds", d.offer_seconds, minimum=5),
        skill_match=choice(s, "skill_match", SkillMatch, d.skill_match),
    )
    if any(t.name == tier.name for t in tiers):
        raise s.error("name", f"duplicate tier '{tier.name}'")
    if tiers and tier.level <= tiers[-1].level:
        raise s.error(
            "level",
            f"levels must strictly increase: {tier.level} after {tiers[-1].level}"
            f" ('{tiers[-1].name}')",
        )
    return tier


def _agents(root: Section, tiers: tuple[Tier, ...]) -> tuple[Agent, ...]:
    sections = root.tables("agents")
    if sections is None:
        return DEFAULT_AGENTS
    names = [t.name for t in tiers]
    agents: list[Agent] = []
    for s in sections:
        s.check_keys(("id", "name", "tiers", "max_concurrent", "skills", "role"))
        agent_id = s.string("id")
        agent_tiers = s.strings("tiers", empty=False)
        for i, name in enumerate(agent_tiers, start=1):
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
                role=choice(s, "role", Role, Role.RESOLVER),
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
    for i, day in enumerate(days, start=1):
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
    for i, item in enumerate(raw_holidays, start=1):
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
            "events_stream_cap",
            "cluster",
            "conversation_ttl_days",
            "transcript_max_bytes",
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
    stream_cap = s.integer("events_stream_cap", defaults.events_stream_cap, minimum=1000)
    ttl_days = s.number("conversation_ttl_days", None, low=0.01, high=36500)
    max_bytes = s.integer("transcript_max_bytes", defaults.transcript_max_bytes, minimum=0)
    bounds = StoreSettings(
        transcript_hot_messages=hot,
        transcript_archive_messages=archive,
        conversation_events_cap=events,
        events_stream_cap=stream_cap,
        conversation_ttl_days=ttl_days,
        transcript_max_bytes=max_bytes,
    )
    if backend == "memory":
        for key in ("url", "url_env", "cluster", "conversation_ttl_days"):
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
    cluster = s.boolean("cluster", False)
    if cluster and url is not None and url.startswith("unix://"):
        raise s.error("cluster", "a Redis Cluster is reached over TCP (redis:// or rediss://)")
    return replace(bounds, backend="redis", url=url, url_env=url_env, cluster=cluster)


def _raw_tables(s: Section) -> Mapping[str, Any]:
    for key, value in s.data.items():
        if not isinstance(value, dict):
            raise s.error(key, f"expected a table [{s.at(key)}], got {type_name(value)}")
    return MappingProxyType(dict(s.data))
