"""Support KPIs per tier, computed from the event log alone.

Events are the record of every state change, so any report can be rebuilt from
them at any time: nothing here reads tickets or conversations.

Definitions (a ticket's *tier* for response and breach figures is the tier it was
opened in; for resolution figures the tier it was resolved in):

* **deflection**: share of conversations that got a KB answer and never a ticket.
* **first response time**: ticket opened → first agent reply (median, in minutes).
* **SLA breach**: first response later than the tier's promise, or none yet and
  the promise already past.
* **resolution time**: ticket opened → resolved (median, in minutes).
* **first-contact resolution**: resolved tickets that were never escalated, per tier.
* **escalation rate**: tickets escalated at least once, over tickets opened.
* **CSAT**: mean score (1–5) and how many answered.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.models import Event, EventKind, Tier


@dataclass
class TierKpis:
    tier: str
    opened: int = 0
    resolved: int = 0
    first_contact_resolved: int = 0
    escalated_away: int = 0
    sla_breaches: int = 0
    first_response_minutes: list[float] = field(default_factory=list)
    resolution_minutes: list[float] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)

    @property
    def median_first_response(self) -> float | None:
        return (
            statistics.median(self.first_response_minutes) if self.first_response_minutes else None
        )

    @property
    def median_resolution(self) -> float | None:
        return statistics.median(self.resolution_minutes) if self.resolution_minutes else None

    @property
    def csat_mean(self) -> float | None:
        return statistics.fmean(self.csat) if self.csat else None


@dataclass(frozen=True)
class Report:
    conversations: int
    deflected: int
    tickets: int
    escalated_tickets: int
    tiers: Sequence[TierKpis]

    @property
    def deflection_rate(self) -> float:
        return self.deflected / self.conversations if self.conversations else 0.0

    @property
    def escalation_rate(self) -> float:
        return self.escalated_tickets / self.tickets if self.tickets else 0.0


@dataclass
class _Ticket:
    opened_at: datetime
    tier: str
    first_reply_at: datetime | None = None
    escalated: bool = False


def compute(events: Iterable[Event], tiers: Sequence[Tier], now: datetime) -> Report:
    rows = {tier.name: TierKpis(tier.name) for tier in sorted(tiers, key=lambda t: t.level)}
    sla = {tier.name: tier.first_response_minutes for tier in tiers}

    def row(name: str) -> TierKpis:
        return rows.setdefault(name, TierKpis(name))

    answered: set[str] = set()
    handed_off: set[str] = set()
    conversations: set[str] = set()
    tickets: dict[str, _Ticket] = {}
    for event in sorted(events, key=lambda e: e.at):
        if event.conversation_id is not None:
            conversations.add(event.conversation_id)
        ticket = tickets.get(event.ticket_id) if event.ticket_id else None
        if event.kind == EventKind.KB_ANSWERED and event.conversation_id:
            answered.add(event.conversation_id)
        elif event.kind == EventKind.HANDOFF and event.ticket_id:
            tier = str(event.data.get("tier", "?"))
            tickets[event.ticket_id] = _Ticket(opened_at=event.at, tier=tier)
            if event.conversation_id:
                handed_off.add(event.conversation_id)
            row(tier).opened += 1
        elif ticket is None:
            continue
        elif event.kind == EventKind.AGENT_REPLY and ticket.first_reply_at is None:
            ticket.first_reply_at = event.at
            row(ticket.tier).first_response_minutes.append(_minutes(ticket.opened_at, event.at))
        elif event.kind == EventKind.ESCALATED:
            ticket.escalated = True
            row(str(event.data.get("from_tier", ticket.tier))).escalated_away += 1
        elif event.kind == EventKind.RESOLVED:
            resolved = row(str(event.data.get("tier", ticket.tier)))
            resolved.resolved += 1
            resolved.resolution_minutes.append(_minutes(ticket.opened_at, event.at))
            if not ticket.escalated:
                resolved.first_contact_resolved += 1
        elif event.kind == EventKind.CSAT_RECORDED:
            score = event.data.get("score")
            if isinstance(score, int):
                row(str(event.data.get("tier", ticket.tier))).csat.append(score)

    for ticket in tickets.values():
        promise = sla.get(ticket.tier)
        if promise is None:
            continue
        answered_at = ticket.first_reply_at or now
        if _minutes(ticket.opened_at, answered_at) > promise:
            row(ticket.tier).sla_breaches += 1

    return Report(
        conversations=len(conversations),
        deflected=len(answered - handed_off),
        tickets=len(tickets),
        escalated_tickets=sum(1 for t in tickets.values() if t.escalated),
        tiers=tuple(rows.values()),
    )


def render(report: Report) -> list[str]:
    """The report as text lines for a terminal or a Slack message."""
    lines = [
        f"conversations {report.conversations}, tier-0 deflection {report.deflection_rate:.0%}, "
        f"tickets {report.tickets}, escalation rate {report.escalation_rate:.0%}"
    ]
    for t in report.tiers:
        fcr = f"{t.first_contact_resolved}/{t.resolved}" if t.resolved else "-"
        lines.append(
            f"{t.tier}: opened {t.opened}, resolved {t.resolved}, first-contact {fcr}, "
            f"first response {_fmt(t.median_first_response)}, "
            f"resolution {_fmt(t.median_resolution)}, SLA breaches {t.sla_breaches}, "
            f"CSAT {_fmt_csat(t)}"
        )
    return lines


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def _fmt(minutes: float | None) -> str:
    return "-" if minutes is None else f"{minutes:.0f} min"


def _fmt_csat(t: TierKpis) -> str:
    return "-" if t.csat_mean is None else f"{t.csat_mean:.1f} ({len(t.csat)})"
