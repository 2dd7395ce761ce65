"""Structured logs (issue 14): ``[logging]`` format and levels, and a correlation id on
every line of a turn.

The correlation id is the conversation id (an opaque hash, never the address or
phone number) and, once known, the ticket number. :meth:`bot.edge.Edge.receive`
opens it for a customer message; the engine and the handoff add the ticket number.
A filter on the handler puts both on every record, from any logger, so a turn's
lines can be found together (``conversation_id`` and ``ticket`` fields in JSON,
``[cnv_... #1042]`` in text). Log lines never carry message text: Escala's own lines
log ids, kinds and reasons only, and phone numbers are masked where an adapter must
name an address.

```toml
[logging]
format = "json"                 # or "text" (the default)
level = "info"                  # the root level
levels = { "aiohttp.access" = "warning", "bot.engine" = "debug" }
```
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.models import EMPTY
from bot.toml_config import Section

LEVELS = ("debug", "info", "warning", "error", "critical")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(conversation_id)s #%(ticket)s]: %(message)s"

_CORRELATION: contextvars.ContextVar[tuple[str | None, int | None]] = contextvars.ContextVar(
    "escala_correlation", default=(None, None)
)


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"
    level: str = "info"
    #: Level per logger name (``aiohttp.access``, ``bot.engine`` ...).
    levels: Mapping[str, str] = field(default_factory=lambda: EMPTY)


def parse_logging(file: str, data: Mapping[str, Any]) -> LoggingConfig:
    s = Section(file, "logging", data)
    d = LoggingConfig()
    s.check_keys(("format", "level", "levels"))
    fmt = s.string("format", d.format)
    if fmt not in ("text", "json"):
        raise s.error("format", f"'{fmt}' is not one of text, json")
    level = s.string("level", d.level).lower()
    if level not in LEVELS:
        raise s.error("level", f"'{level}' is not one of {', '.join(LEVELS)}")
    levels: dict[str, str] = {}
    raw = s.table("levels").data
    for name, value in raw.items():
        if not isinstance(value, str) or value.lower() not in LEVELS:
            raise s.error(f"levels.{name}", f"{value!r} is not one of {', '.join(LEVELS)}")
        levels[name] = value.lower()
    return LoggingConfig(fmt, level, levels)


@contextlib.contextmanager
def conversation(conversation_id: str) -> Iterator[None]:
    """Lines logged within are about this conversation (no ticket yet)."""
    token = _CORRELATION.set((conversation_id, None))
    try:
        yield
    finally:
        _CORRELATION.reset(token)


def ticket(number: int) -> None:
    """The conversation being handled has ticket ``number`` (until the turn ends)."""
    conversation_id, _ = _CORRELATION.get()
    if conversation_id is not None:
        _CORRELATION.set((conversation_id, number))


class Correlation(logging.Filter):
    """Adds ``conversation_id`` and ``ticket`` to every record ("-" outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        conversation_id, number = _CORRELATION.get()
        record.conversation_id = conversation_id or "-"
        record.ticket = number if number is not None else "-"
        return True


def configure(config: LoggingConfig, stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger, replacing any; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(Correlation())
    if config.format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(conversation_id)s %(ticket)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    for name, level in config.levels.items():
        logging.getLogger(name).setLevel(level.upper())
    return handler
