"""Support KPIs per tier, computed from the event stream alone (issue 14).

Events are the record of every state change, so any report can be rebuilt from
them at any time: nothing here reads tickets or conversations. ``escala report``,
``/escala stats`` in Slack and ``/agent stats`` in ``escala chat`` all call
:func:`compute`; :mod:`bot.kpi_format` renders the result.

Attribution (issue 13, item 7): a ticket has one *first response*, its first agent
reply, counted on the tier where that reply happened; its *resolution* is counted
on the tier that resolved it; an *escalation* counts on the tier it left. A ticket
escalated N1 → N2 and answered and resolved in N2 gives N1 one ticket opened and
one escalation (to N2), and N2 one escalation in, the first response and the
resolution.

Definitions (durations are measured by ``elapsed``: wall-clock seconds unless the
caller passes a business-hours measure):

* **deflection**: conversations that got a KB answer and no ticket, over
  conversations active in the period.
* **first response time**: ticket opened → first agent reply (median, p90).
* **resolution time**: ticket opened → resolved (median, p90).
* **SLA breach rate**: over each *stay* of a ticket in a tier's queue (opened there
  or escalated in; a release keeps the stay and its age): breached when no agent
  replied within the tier's ``first_response_minutes`` of entering it, counted in
  the tier's calendar when ``working`` is given (late reply, none before it left, or
  none by the end of the period), or when a first-response ``ticket.sla_breached``
  event was recorded for it. Resolution-promise breaches are counted apart.
* **first-contact resolution**: resolved tickets never escalated, over resolved.
* **escalation rate**: per tier, escalations out over stays in the tier; overall,
  tickets escalated at least once over tickets opened.
* **CSAT**: mean score (1–5), how many answered and the distribution, on the tier
  that resolved the ticket.
* **busiest hours**: customer messages per hour of the day, in the desk's time zone.

A fact counts in the period its event happened in (a reply in the period counts
even when the ticket was opened before it); a stay's breach counts in the period
the stay began.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from bot.hours import WorkingTime
from bot.models import Event, EventKind, Promise, Tier

#: Seconds between two moments, as the report counts them.
Elapsed = Callable[[datetime, datetime], float]


def wall_clock(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank (a value that occurred, never interpolated)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


@dataclass
class TierKpis:
    """One tier's figures (or every tier's, for the ``all`` row)."""

    tier: str
    opened: int = 0
    escalated_in: int = 0
    #: Escalations out of this tier, by the tier they went to.
    escalated_out: Counter[str] = field(default_factory=Counter)
    stays: int = 0
    sla_breaches: int = 0
    #: ``ticket.sla_breached`` events for the resolution promise (issue 13).
    resolution_breaches: int = 0
    resolved: int = 0
    first_contact_resolved: int = 0
    first_response_seconds: list[float] = field(default_factory=list)
    resolution_seconds: list[float] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)

    @property
    def escalations(self) -> int:
        return sum(self.escalated_out.values())

    @property
    def escalation_rate(self) -> float | None:
        return self.escalations / self.stays if self.stays else None

    @property
    def sla_breach_rate(self) -> float | None:
        return self.sla_breaches / self.stays if self.stays else None

    @property
    def first_contact_rate(self) -> float | None:
        return self.first_contact_resolved / self.resolved if self.resolved else None

    @property
    def csat_mean(self) -> float | None:
        return statistics.fmean(self.csat) if self.csat else None

    @property
    def csat_distribution(self) -> dict[int, int]:
        counts = Counter(self.csat)
        return {score: counts.get(score, 0) for score in range(1, 6)}

    def add(self, other: TierKpis) -> None:
        self.opened += other.opened
        self.escalated_in += other.escalated_in
        self.escalated_out.update(other.escalated_out)
        self.stays += other.stays
        self.sla_breaches += other.sla_breaches
        self.resolution_breaches += other.resolution_breaches
        self.resolved += other.resolved
        self.first_contact_resolved += other.first_contact_resolved
        self.first_response_seconds += other.first_response_seconds
        self.resolution_seconds += other.resolution_seconds
        self.csat += other.csat


@dataclass(frozen=True)
class Report:
    start: datetime | None
    end: datetime
    conversations: int
    deflected: int
    tickets: int
    escalated_tickets: int
    tiers: tuple[TierKpis, ...]
    #: Every tier together (whatever ``tiers`` was filtered to).
    overall: TierKpis
    #: Customer messages per hour of the day (0–23), in the report's time zone.
    hourly: tuple[int, ...]
    #: Said when the period asked for starts before the oldest event the stream keeps.
    coverage: str | None = None

    @property
    def deflection_rate(self) -> float:
        return self.deflected / self.conversations if self.conversations else 0.0

    @property
    def escalation_rate(self) -> float:
        return self.escalated_tickets / self.tickets if self.tickets else 0.0

    def busiest_hours(self, top: int = 3) -> list[tuple[int, int]]:
        """``(hour, messages)``, most messages first (earlier hour on a tie), none empty."""
        ranked = sorted(
            ((h, n) for h, n in enumerate(self.hourly) if n), key=lambda x: (-x[1], x[0])
        )
        return ranked[:top]


@dataclass
class _Stay:
    tier: str
    entered_at: datetime
    counted: bool
    replied: bool = False
    breached: bool = False


@dataclass
class _Ticket:
    opened_at: datetime
    stay: _Stay
    first_reply_at: datetime | None = None
    escalated: bool = False
    stays: list[_Stay] = field(default_factory=list)


def compute(
    events: Iterable[Event],
    tiers: Sequence[Tier],
    *,
    end: datetime,
    start: datetime | None = None,
    timezone: tzinfo | None = None,
    elapsed: Elapsed = wall_clock,
    only_tier: str | None = None,
    working: Mapping[str, WorkingTime] | None = None,
) -> Report:
    """The KPIs of what happened in ``[start, end)`` (``start`` None: since the first event).

    ``events`` may reach back before ``start`` (a ticket opened earlier and answered
    in the period); events at or after ``end`` are ignored. ``only_tier`` keeps that
    tier's row only (``overall`` still covers every tier). ``working``: each tier's
    calendar (:func:`bot.hours.working_time`), so a stay is late only by the open time
    it waited; without it, wall-clock time."""
    rows = {tier.name: TierKpis(tier.name) for tier in sorted(tiers, key=lambda t: t.level)}
    promise = {tier.name: tier.first_response_minutes * 60 for tier in tiers}

    def row(name: str) -> TierKpis:
        return rows.setdefault(name, TierKpis(name))

    def inside(at: datetime) -> bool:
        return (start is None or at >= start) and at < end

    def late(stay: _Stay, at: datetime) -> bool:
        limit = promise.get(stay.tier)
        if limit is None:
            return False
        calendar = working.get(stay.tier) if working else None
        if calendar is not None:
            return calendar.open_time(stay.entered_at, at).total_seconds() > limit
        return elapsed(stay.entered_at, at) > limit

    def close(stay: _Stay, at: datetime) -> None:
        """The stay ends (escalated away, resolved, or the period ended) unanswered?"""
        if not stay.replied and not stay.breached and late(stay, at):
            breach(stay)

    def breach(stay: _Stay) -> None:
        stay.breached = True
        if stay.counted:
            row(stay.tier).sla_breaches += 1

    def enter(tier: str, at: datetime) -> _Stay:
        stay = _Stay(tier, at, counted=inside(at))
        if stay.counted:
            row(tier).stays += 1
        return stay

    answered: set[str] = set()
    handed_off: set[str] = set()
    conversations: set[str] = set()
    tickets: dict[str, _Ticket] = {}
    counted_tickets: set[str] = set()
    escalated_tickets: set[str] = set()
    hourly = [0] * 24
    for event in sorted(events, key=lambda e: e.at):
        if event.at >= end:
            break
        now_inside = inside(event.at)
        if now_inside and event.conversation_id is not None:
            conversations.add(event.conversation_id)
        if event.kind == EventKind.MESSAGE_IN:
            if now_inside:
                hourly[event.at.astimezone(timezone).hour if timezone else event.at.hour] += 1
            continue
        if event.kind == EventKind.KB_ANSWERED:
            if now_inside and event.conversation_id:
                answered.add(event.conversation_id)
            continue
        if event.kind == EventKind.HANDOFF and event.ticket_id:
            tier = str(event.data.get("tier", "?"))
            stay = enter(tier, event.at)
            tickets[event.ticket_id] = _Ticket(opened_at=event.at, stay=stay, stays=[stay])
            if now_inside:
                counted_tickets.add(event.ticket_id)
                row(tier).opened += 1
                if event.conversation_id:
                    handed_off.add(event.conversation_id)
            continue
        ticket = tickets.get(event.ticket_id) if event.ticket_id else None
        if ticket is None:
            continue
        stay = ticket.stay
        if event.kind == EventKind.AGENT_REPLY:
            if not stay.replied:
                if not stay.breached and late(stay, event.at):
                    breach(stay)
                stay.replied = True
            if ticket.first_reply_at is None:
                ticket.first_reply_at = event.at
                if now_inside:
                    row(stay.tier).first_response_seconds.append(
                        elapsed(ticket.opened_at, event.at)
                    )
        elif event.kind == EventKind.ESCALATED:
            to_tier = str(event.data.get("to_tier", "?"))
            close(stay, event.at)
            ticket.escalated = True
            if now_inside:
                escalated_tickets.add(event.ticket_id or "")
                row(stay.tier).escalated_out[to_tier] += 1
                row(to_tier).escalated_in += 1
            ticket.stay = enter(to_tier, event.at)
            ticket.stays.append(ticket.stay)
        elif event.kind == EventKind.SLA_BREACHED:
            tier = str(event.data.get("tier", stay.tier))
            if event.data.get("promise", Promise.FIRST_RESPONSE) != Promise.FIRST_RESPONSE:
                if now_inside:  # a resolution promise broken (issue 13)
                    row(tier).resolution_breaches += 1
                continue
            for candidate in reversed(ticket.stays):
                if candidate.tier == tier:
                    if not candidate.breached:
                        breach(candidate)
                    break
        elif event.kind == EventKind.RESOLVED:
            close(stay, event.at)
            if now_inside:
                resolved = row(stay.tier)
                resolved.resolved += 1
                resolved.resolution_seconds.append(elapsed(ticket.opened_at, event.at))
                if not ticket.escalated:
                    resolved.first_contact_resolved += 1
        elif event.kind == EventKind.CSAT_RECORDED:
            score = event.data.get("score")
            if now_inside and isinstance(score, int) and not isinstance(score, bool):
                row(stay.tier).csat.append(score)

    for ticket in tickets.values():
        close(ticket.stay, end)

    overall = TierKpis("all")
    for kpis in rows.values():
        overall.add(kpis)
    shown = tuple(r for r in rows.values() if only_tier is None or r.tier == only_tier)
    return Report(
        start=start,
        end=end,
        conversations=len(conversations),
        deflected=len(answered - handed_off),
        tickets=len(counted_tickets),
        escalated_tickets=len(escalated_tickets & counted_tickets),
        tiers=shown,
        overall=overall,
        hourly=tuple(hourly),
    )


def render(report: Report) -> list[str]:
    """The short summary for a chat: ``/agent stats`` and ``/escala stats``."""
    lines = [
        f"conversations {report.conversations}, tier-0 deflection {report.deflection_rate:.0%}, "
        f"tickets {report.tickets}, escalation rate {report.escalation_rate:.0%}"
    ]
    for t in report.tiers:
        fcr = f"{t.first_contact_resolved}/{t.resolved}" if t.resolved else "-"
        away = ", ".join(f"{n} to {to}" for to, n in sorted(t.escalated_out.items()))
        lines.append(
            f"{t.tier}: opened {t.opened}, escalated in {t.escalated_in}, "
            f"resolved {t.resolved}, first-contact {fcr}, "
            f"first response {minutes(median(t.first_response_seconds))}, "
            f"resolution {minutes(median(t.resolution_seconds))}, "
            f"SLA breaches {t.sla_breaches}/{t.stays}, "
            f"escalated {away or '0'}, CSAT {_csat(t)}"
        )
    busiest = ", ".join(f"{h:02d}h ({n})" for h, n in report.busiest_hours())
    if busiest:
        lines.append(f"busiest hours: {busiest}")
    if report.coverage:
        lines.append(report.coverage)
    return lines


def period_days(word: str) -> int | None:
    """``7d`` -> 7 (1 to 3660 days) for ``/agent stats 7d`` and ``/escala stats 30d``;
    None when ``word`` is not such a period."""
    if word.endswith("d") and word[:-1].isdigit() and 1 <= int(word[:-1]) <= 3660:
        return int(word[:-1])
    return None


def minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def _csat(t: TierKpis) -> str:
    return "-" if t.csat_mean is None else f"{t.csat_mean:.1f} ({len(t.csat)})"
