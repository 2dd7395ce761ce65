"""Business hours: when humans are at their desks.

Triage rules can depend on them (``business_hours = false``: only while closed), and
promises counted on the ``business`` calendar run only while open: the handoff message
tells the customer when the clock on their ticket starts and when it is due.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.models import Calendar

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

    # -- calendar time (issue 13) -------------------------------------------------------

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _interval(self, day: date) -> tuple[datetime, datetime] | None:
        """The open interval of a local ``day`` (aware datetimes), None when closed."""
        if day in self.holidays or day.weekday() not in self.days:
            return None
        zone = self._zone()
        return datetime.combine(day, self.start, zone), datetime.combine(day, self.end, zone)

    def _intervals_from(self, when: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals ending after ``when``, in order (from its local day on)."""
        day = when.astimezone(self._zone()).date()
        for offset in range(MAX_CLOSED_DAYS):
            interval = self._interval(day + timedelta(days=offset))
            if interval is not None and interval[1] > when:
                yield interval
        raise ValueError(f"business hours never open within {MAX_CLOSED_DAYS} days of {when}")

    def opens(self, when: datetime) -> datetime:
        """``when`` itself while open, else the next opening."""
        start, _ = next(self._intervals_from(when))
        return max(start, when)

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment ``minutes`` of open time after ``start``: a promise of 15
        business minutes made on Friday at 19:55 (closing at 20:00) is due on Monday
        at 08:10."""
        remaining = timedelta(minutes=minutes)
        for open_at, close_at in self._intervals_from(start):
            begin = max(open_at, start)
            if begin + remaining <= close_at:
                return begin + remaining
            remaining -= close_at - begin
        raise AssertionError("unreachable: _intervals_from raises first")

    def open_time(self, start: datetime, end: datetime) -> timedelta:
        """How much open time lies between ``start`` and ``end`` (for durations)."""
        total = timedelta()
        if end <= start:
            return total
        for open_at, close_at in self._intervals_from(start):
            if open_at >= end:
                break
            total += min(close_at, end) - max(open_at, start)
        return total


#: A calendar open on no day for this long is a configuration nobody means.
MAX_CLOSED_DAYS = 400


class AlwaysOpen:
    """The ``24x7`` calendar: every minute counts."""

    def is_open(self, when: datetime) -> bool:
        return True

    def opens(self, when: datetime) -> datetime:
        return when

    def add(self, start: datetime, minutes: float) -> datetime:
        return start + timedelta(minutes=minutes)

    def open_time(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta())


class WorkingTime(Protocol):
    """What a promise's calendar answers (:class:`BusinessHours` or :class:`AlwaysOpen`)."""

    def is_open(self, when: datetime) -> bool: ...

    def opens(self, when: datetime) -> datetime: ...

    def add(self, start: datetime, minutes: float) -> datetime: ...

    def open_time(self, start: datetime, end: datetime) -> timedelta: ...


def working_time(calendar: Calendar, hours: BusinessHours) -> WorkingTime:
    return hours if calendar is Calendar.BUSINESS else AlwaysOpen()
