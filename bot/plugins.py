"""Channel plug-ins: how ``escala serve``, ``check`` and ``chat`` find channels.

A channel is a package that names a :class:`ChannelSpec` in the ``escala.channels``
entry-point group of its distribution (``pyproject.toml``)::

    [project.entry-points."escala.channels"]
    telegram = "channels.telegram.plugin:channel"

The core imports no channel: it reads that group, validates each configured
channel's table with :meth:`ChannelSpec.parse` (cheap: no SDK import, so ``escala
check`` and an SMS-only server never pay for aiogram or slack_bolt), and only then
asks the configured ones to :meth:`~ChannelSpec.build` their :class:`Plugin`, which is
where heavy client libraries are imported. A third-party package adds a channel the
same way, without touching Escala.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, TextIO, runtime_checkable

from aiohttp import web

from bot.edge import Edge
from bot.errors import ConfigError, ConfigErrors
from bot.settings import Settings

#: The entry-point group channels register in.
GROUP = "escala.channels"


class Plugin(Protocol):
    """A channel (or agent workspace) mounted on the server."""

    name: str

    def routes(self) -> Sequence[web.RouteDef]:
        """The webhook routes it serves."""
        ...

    async def start(self) -> None:
        """Called once the server is up: start polling, register webhooks ..."""
        ...

    async def stop(self) -> None:
        """Called after in-flight requests finished: flush outbound, close clients."""
        ...


@runtime_checkable
class MountsApp(Protocol):
    """A plug-in that serves a whole sub-application (web pages with their own
    middlewares: sessions, CSRF, security headers) under a path prefix."""

    def subapps(self) -> Sequence[tuple[str, web.Application]]:
        """``(prefix, application)`` pairs mounted with ``add_subapp``."""
        ...


class ChannelConfig(Protocol):
    """A channel's validated settings; a disabled channel is validated, not started."""

    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True)
class ParseContext:
    """What a channel's :meth:`ChannelSpec.parse` may need besides its own table."""

    file: str
    settings: Settings
    default_locale: str
    #: ``[server] public_base_url``: the URL providers call (Twilio signs it).
    public_base_url: str | None


@runtime_checkable
class ChannelSpec(Protocol):
    """What an ``escala.channels`` entry point names."""

    #: The entry point's name, e.g. ``telegram``.
    name: str
    #: Where its settings live: ``channels.<name>`` (the convention) or a top-level
    #: table (``slack``); ``None`` for a channel with no settings (the terminal).
    section: str | None

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> ChannelConfig:
        """Validate the channel's table; raise :class:`~bot.errors.ConfigError` naming
        the file, key and reason. Must not import the channel's SDK."""
        ...

    def build(self, config: Any, edge: Edge) -> Plugin:
        """The running channel for a config :meth:`parse` returned (inside the event
        loop). Heavy imports belong here."""
        ...


class Terminal(Protocol):
    async def run(self, lines: AsyncIterator[str]) -> None:
        """Read the customer's (and agents') lines until they run out or say /quit."""
        ...


@runtime_checkable
class TerminalSpec(Protocol):
    """A channel ``escala chat`` can run in a terminal (the ``console`` entry point):
    customer channel and agent workspace in one."""

    name: str

    def terminal(
        self,
        edge: Edge,
        out: TextIO,
        *,
        locale: str,
        agent_id: str,
        echo: bool,
        locale_known: bool = True,
    ) -> Terminal:
        """``locale_known``: False when the customer's language was not given (their
        words then set it, as on SMS: ``InboundMessage.locale_known``)."""
        ...


@functools.cache
def discover() -> Mapping[str, object]:
    """Every installed channel, by name (entry points are read once per process)."""
    found: dict[str, object] = {}
    for point in entry_points(group=GROUP):
        spec = point.load()
        if not isinstance(spec, ChannelSpec | TerminalSpec):
            raise TypeError(f"entry point {point.name} = {point.value} is not a channel spec")
        found[point.name] = spec
    return found


def channel_specs() -> list[ChannelSpec]:
    return [spec for spec in discover().values() if isinstance(spec, ChannelSpec)]


def terminal(name: str = "console") -> TerminalSpec:
    """The terminal channel ``escala chat`` runs."""
    spec = discover().get(name)
    if not isinstance(spec, TerminalSpec):
        raise LookupError(f"no terminal channel '{name}' installed (entry points: {GROUP})")
    return spec


#: Top-level tables a plug-in may own: ``[slack]`` (Slack workspace), ``[web]`` (web
#: console and, later, the admin studio). Each is a raw table on :class:`Settings`.
TOP_LEVEL_SECTIONS = ("slack", "web")


def section_table(settings: Settings, section: str) -> Mapping[str, Any] | None:
    """The raw table at ``section`` (``channels.<name>``, ``slack`` or ``web``), None
    if absent."""
    head, _, rest = section.partition(".")
    if head == "channels" and rest:
        return settings.channels.get(rest)
    if head in TOP_LEVEL_SECTIONS and not rest:
        table: Mapping[str, Any] = getattr(settings, head)
        return table or None
    known = ", ".join(TOP_LEVEL_SECTIONS)
    raise ValueError(f"a channel's section is channels.<name> or one of {known}, not {section!r}")


def configured(
    settings: Settings, context: ParseContext
) -> list[tuple[ChannelSpec, ChannelConfig]]:
    """Every enabled channel the settings configure, validated; all errors at once."""
    errors: list[ConfigError] = []
    by_section = {spec.section: spec for spec in channel_specs() if spec.section is not None}
    for name in settings.channels:
        if f"channels.{name}" not in by_section:
            known = ", ".join(sorted(s.removeprefix("channels.") for s in by_section if s))
            errors.append(
                ConfigError(context.file, f"channels.{name}", f"unknown channel (known: {known})")
            )
    result: list[tuple[ChannelSpec, ChannelConfig]] = []
    # The config file's order, then top-level tables ([slack]): workspaces start last.
    order = [f"channels.{name}" for name in settings.channels]
    order += sorted(section for section in by_section if not section.startswith("channels."))
    for section in order:
        spec = by_section.get(section)
        table = section_table(settings, section) if spec is not None else None
        if spec is None or table is None:
            continue
        try:
            config = spec.parse(table, context)
        except ConfigErrors as e:
            errors.extend(e.errors)
            continue
        except ConfigError as e:
            errors.append(e)
            continue
        if config.enabled:
            result.append((spec, config))
    if errors:
        raise ConfigErrors.of(errors)
    return result
