"""Test doubles for the injected clock and id generator (:mod:`bot.clock`).

They live with the tests, not in ``bot/``: production code never needs a clock that
only moves when told to.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta


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
