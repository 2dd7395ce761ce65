"""A KPI :class:`~bot.kpis.Report` as a table, CSV or JSON (``escala report``).

Table: minutes for people. CSV and JSON: seconds and fractions for machines (a
spreadsheet or a warehouse); the same figures, one row per tier and an ``all`` row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from bot.kpis import Report, TierKpis, median, p90

FORMATS = ("table", "csv", "json")

CSV_COLUMNS = (
    "tier",
    "opened",
    "escalated_in",
    "stays",
    "resolved",
    "first_contact_resolved",
    "first_contact_rate",
    "first_response_median_seconds",
    "first_response_p90_seconds",
    "resolution_median_seconds",
    "resolution_p90_seconds",
    "sla_breaches",
    "sla_breach_rate",
    "resolution_breaches",
    "escalations",
    "escalation_rate",
    "escalated_to",
    "csat_mean",
    "csat_count",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
)


def render(report: Report, fmt: str) -> str:
    if fmt == "table":
        return table(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _escalated_to(t: TierKpis) -> str:
    return ";".join(f"{tier}:{n}" for tier, n in sorted(t.escalated_out.items()))


def tier_json(t: TierKpis) -> dict[str, Any]:
    return {
        "tier": t.tier,
        "opened": t.opened,
        "escalated_in": t.escalated_in,
        "stays": t.stays,
        "resolved": t.resolved,
        "first_contact_resolved": t.first_contact_resolved,
        "first_contact_rate": _rate(t.first_contact_resolved, t.resolved),
        "first_response_median_seconds": _seconds(median(t.first_response_seconds)),
        "first_response_p90_seconds": _seconds(p90(t.first_response_seconds)),
        "first_responses": len(t.first_response_seconds),
        "resolution_median_seconds": _seconds(median(t.resolution_seconds)),
        "resolution_p90_seconds": _seconds(p90(t.resolution_seconds)),
        "sla_breaches": t.sla_breaches,
        "sla_breach_rate": _rate(t.sla_breaches, t.stays),
        "resolution_breaches": t.resolution_breaches,
        "escalations": t.escalations,
        "escalation_rate": _rate(t.escalations, t.stays),
        "escalated_to": dict(sorted(t.escalated_out.items())),
        "csat_mean": None if t.csat_mean is None else round(t.csat_mean, 2),
        "csat_count": len(t.csat),
        "csat_distribution": {str(k): v for k, v in t.csat_distribution.items()},
    }


def to_json(report: Report) -> dict[str, Any]:
    return {
        "period": {
            "from": report.start.isoformat() if report.start else None,
            "to": report.end.isoformat(),
        },
        "coverage": report.coverage,
        "conversations": report.conversations,
        "deflected": report.deflected,
        "deflection_rate": _rate(report.deflected, report.conversations),
        "tickets": report.tickets,
        "escalated_tickets": report.escalated_tickets,
        "escalation_rate": _rate(report.escalated_tickets, report.tickets),
        "busiest_hours": [{"hour": h, "messages": n} for h, n in report.busiest_hours()],
        "messages_by_hour": list(report.hourly),
        "tiers": [tier_json(t) for t in report.tiers],
        "overall": tier_json(report.overall),
    }


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in (*report.tiers, report.overall):
        data = tier_json(t)
        data["escalated_to"] = _escalated_to(t)
        data.update({f"csat_{k}": v for k, v in t.csat_distribution.items()})
        writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def table(report: Report) -> str:
    period_from = report.start.isoformat(timespec="minutes") if report.start else "the first event"
    lines = [f"Escala report: {period_from} to {report.end.isoformat(timespec='minutes')}"]
    if report.coverage:
        lines.append(f"NOTE: {report.coverage}")
    lines += [
        f"conversations {report.conversations}, solved by the bot "
        f"{_percent(report.deflected, report.conversations)}, tickets {report.tickets}, "
        f"escalated {_percent(report.escalated_tickets, report.tickets)}",
        "busiest hours: "
        + (", ".join(f"{h:02d}h ({n} messages)" for h, n in report.busiest_hours()) or "-"),
        "",
    ]
    header = (
        "tier", "opened", "escalated in", "resolved", "first contact", "first response p50",
        "p90", "resolution p50", "p90", "SLA breached", "escalated", "to", "CSAT", "1/2/3/4/5",
    )  # fmt: skip
    rows = [header]
    for t in (*report.tiers, report.overall):
        dist = "/".join(str(n) for n in t.csat_distribution.values())
        rows.append(
            (
                t.tier,
                str(t.opened),
                str(t.escalated_in),
                str(t.resolved),
                _percent(t.first_contact_resolved, t.resolved),
                _minutes(median(t.first_response_seconds)),
                _minutes(p90(t.first_response_seconds)),
                _minutes(median(t.resolution_seconds)),
                _minutes(p90(t.resolution_seconds)),
                _percent(t.sla_breaches, t.stays),
                _percent(t.escalations, t.stays),
                ", ".join(f"{to} {n}" for to, n in sorted(t.escalated_out.items())) or "-",
                "-" if t.csat_mean is None else f"{t.csat_mean:.1f} ({len(t.csat)})",
                dist,
            )
        )
    lines += _columns(rows)
    return "\n".join(lines) + "\n"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
