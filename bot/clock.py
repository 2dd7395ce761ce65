"""Injected time and ids, so the engine is deterministic in tests."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class Ids(Protocol):
    def new(self, prefix: str) -> str:
        """A new unique id such as ``cnv_3f2a...``."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidIds:
    """Unique ids without a random draw each (issue 18: several per message): 64 random
    bits drawn once per process, then a counter. Unique across processes and restarts
    as a uuid4 is, for all practical purposes; ``evt_3f2a9c...-1a``."""

    def __init__(self) -> None:
        self._base = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{self._base}-{next(self._counter):x}"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # a Monday, 10:00 BRT

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


class SequentialIds:
    """Readable, repeatable ids for tests: ``cnv_1``, ``msg_2`` ..."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{next(self._counter)}"


def stable_id(prefix: str, channel: str, address: str) -> str:
    """A conversation/contact id derived from the channel address, so that two router
    processes receiving the first message of a customer agree on it without a race."""
    digest = hashlib.blake2b(f"{channel}\x00{address}".encode(), digest_size=10).hexdigest()
    return f"{prefix}_{digest}"
