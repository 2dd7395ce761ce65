"""Business hours: when humans are at their desks.

Triage rules can depend on them (``business_hours = false``: only while closed) and the
handoff message tells the customer when the clock on their ticket starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

#: Monday to Friday, as ``datetime.weekday()`` numbers them (Monday = 0).
WEEKDAYS: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class BusinessHours:
    """Open on ``days`` from ``start`` (inclusive) to ``end`` (exclusive), local to
    ``timezone``, except on ``holidays`` (local dates). ``start < end``: a shift that
    crosses midnight is not supported (the settings loader refuses it)."""

    timezone: str = "America/Sao_Paulo"
    days: tuple[int, ...] = WEEKDAYS
    start: time = time(8, 0)
    end: time = time(20, 0)
    holidays: tuple[date, ...] = ()

    def is_open(self, when: datetime) -> bool:
        """Whether ``when`` (an aware datetime, any zone) falls within business hours."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"business hours need an aware datetime, got {when!r}")
        local = when.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays or local.weekday() not in self.days:
            return False
        return self.start <= local.time().replace(tzinfo=None) < self.end
