"""Reading the event stream: KPI reports over a period, one-off exports, and a
consumer-group reader for continuous export (issue 14).

The stream keeps at least the last ``[store] events_stream_cap`` events. Anything
that reads a period says so when the period starts before the oldest event kept and
older events were dropped (:func:`coverage`): figures are never silently partial.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot import kpis
from bot.hours import working_time
from bot.models import Event
from bot.settings import Settings
from bot.store.base import EventLog, StreamEntry, StreamInfo, position_key
from bot.store.codec import format_datetime

EXPORT_FORMATS = ("jsonl", "csv")
EXPORT_COLUMNS = ("position", "id", "kind", "at", "conversation_id", "ticket_id", "data")
PAGE = 1000


async def entries(
    log: EventLog, *, since: datetime | None = None, until: datetime | None = None
) -> AsyncIterator[StreamEntry]:
    """Every entry the stream keeps with ``since <= at < until``, in stream order."""
    after: str | None = None
    while page := await log.read_stream(after, PAGE):
        for entry in page:
            at = entry.event.at
            if (since is None or at >= since) and (until is None or at < until):
                yield entry
        after = page[-1].position


def coverage(info: StreamInfo, since: datetime | None) -> str | None:
    """What is missing from a period starting at ``since`` (None: from the start),
    or None when nothing is."""
    if info.trimmed == 0 or info.first is None:
        return None
    oldest = info.first.event.at
    if since is not None and since >= oldest:
        return None
    return (
        f"the event stream keeps events since {oldest.isoformat(timespec='seconds')} only: "
        f"{info.trimmed} older events were dropped by its cap ([store] events_stream_cap = "
        f"{info.cap}), so figures before then are missing"
    )


async def report(
    log: EventLog,
    settings: Settings,
    *,
    end: datetime,
    start: datetime | None = None,
    only_tier: str | None = None,
) -> kpis.Report:
    """The KPIs of ``[start, end)`` from the stream, saying when it cannot cover them."""
    info = await log.stream_info()
    events = [entry.event async for entry in entries(log, until=end)]
    computed = kpis.compute(
        events,
        settings.tiers,
        start=start,
        end=end,
        timezone=ZoneInfo(settings.business_hours.timezone),
        only_tier=only_tier,
        working={
            tier.name: working_time(tier.calendar, settings.business_hours)
            for tier in settings.tiers
        },
    )
    return replace(computed, coverage=coverage(info, start))


def event_row(entry: StreamEntry) -> dict[str, Any]:
    event = entry.event
    return {
        "position": entry.position,
        "id": event.id,
        "kind": str(event.kind),
        "at": format_datetime(event.at),
        "conversation_id": event.conversation_id,
        "ticket_id": event.ticket_id,
        "data": dict(event.data),
    }


class Writer:
    """Writes entries as JSON lines or CSV (a header first) to ``out``."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
        self._out = out
        self._fmt = fmt
        self._header = fmt == "csv"

    def write(self, batch: Sequence[StreamEntry]) -> None:
        if self._fmt == "jsonl":
            for entry in batch:
                self._out.write(json.dumps(event_row(entry), ensure_ascii=False) + "\n")
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            if self._header:
                writer.writerow(EXPORT_COLUMNS)
                self._header = False
            for entry in batch:
                row = event_row(entry)
                row["data"] = json.dumps(row["data"], ensure_ascii=False, sort_keys=True)
                writer.writerow(["" if row[c] is None else row[c] for c in EXPORT_COLUMNS])
            self._out.write(buffer.getvalue())
        self._out.flush()


async def export(
    log: EventLog,
    out: TextIO,
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[int, str | None]:
    """Write the kept events of ``[since, until)``; (how many, what is missing or None)."""
    info = await log.stream_info()
    writer = Writer(out, fmt)
    written = 0
    batch: list[StreamEntry] = []
    async for entry in entries(log, since=since, until=until):
        batch.append(entry)
        if len(batch) >= PAGE:
            writer.write(batch)
            written += len(batch)
            batch = []
    writer.write(batch)
    return written + len(batch), coverage(info, since)


async def follow(
    log: EventLog,
    out: TextIO,
    fmt: str,
    *,
    group: str,
    consumer: str,
    stop: asyncio.Event,
    warn: Callable[[str], None],
    block_seconds: float = 1.0,
) -> int:
    """Export continuously through consumer group ``group``: each event is written,
    then acknowledged, so a reader killed mid-way writes the unacknowledged ones again
    on restart (at least once; dedupe on ``id`` downstream). Runs until ``stop`` is set.
    ``warn`` is told first when events may have been dropped before the group read
    them. Returns how many were written."""
    await log.create_group(group)
    info = await log.stream_info()
    position = await log.group_position(group)
    first = info.first
    if (
        info.trimmed
        and first is not None
        and position is not None
        and position_key(position) < position_key(first.position)
    ):
        warn(
            f"group {group!r} was at {position}, before the oldest event kept "
            f"({first.position}, {first.event.at.isoformat(timespec='seconds')}): "
            f"events in between may have been dropped by the stream's cap "
            f"({info.cap}); read more often, or raise [store] events_stream_cap"
        )
    writer = Writer(out, fmt)
    written = 0
    while not stop.is_set():
        batch = await log.read_group(group, consumer, count=PAGE, block_seconds=block_seconds)
        if not batch:
            continue
        writer.write(batch)
        await log.ack(group, [entry.position for entry in batch])
        written += len(batch)
    return written


def event_of(row: dict[str, Any]) -> Event:
    """An exported JSON line back as an event (tests, and loaders written in Python)."""
    return Event(
        id=row["id"],
        kind=row["kind"],
        at=datetime.fromisoformat(row["at"]),
        conversation_id=row["conversation_id"],
        ticket_id=row["ticket_id"],
        data=row["data"],
    )
