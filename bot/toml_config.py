"""The TOML toolkit every configuration file uses: read a file, validate a table.

Every failure is a :class:`~bot.errors.ConfigError` naming the file, the place
(``kb.answer_threshold``, ``tiers[2].first_response_minutes``; positions in lists
count from 1) and the reason. Used by
the settings file (:mod:`bot.settings`), routing rules (:mod:`bot.triage`) and each
channel's section (``channels/*/config.py``).
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, time
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

#: The shortest webhook secret accepted (issue 11: a 1-character secret is guessable).
MIN_WEBHOOK_SECRET = 16


def secret_from_env(file: str, place: str, env_name: str, *, min_length: int = 1) -> str:
    """The value of environment variable ``env_name``; never logged, never in an error.
    ``min_length``: a shared webhook secret must be at least this long."""
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise ConfigError(file, place, f"environment variable {env_name} is not set or empty")
    if len(value) < min_length:
        raise ConfigError(
            file,
            place,
            f"environment variable {env_name} holds {len(value)} characters; a webhook "
            f"secret needs at least {min_length} (e.g. openssl rand -hex 16)",
        )
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
        for i, item in enumerate(value, start=1):
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
        for i, item in enumerate(value, start=1):
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
