"""The machine a run happened on, and the results as a Markdown table (README-ready)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _pct(value: object) -> str:
    return "–" if not isinstance(value, int | float) else f"{100 * value:.1f}%"


def _quality(name: str, suite: dict[str, Any]) -> list[str]:
    lines = [
        f"### Tier-0 quality: {name} ({suite['entries']} entries, {suite['phrasings']} phrasings)",
        "",
        "| method | queries | top-1 | coverage | precision | suggest hit | OOS not answered "
        "| P@30% | P@50% | P@65% | P@80% | P@100% |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("matcher", "Escala matcher (shipped thresholds)"),
        ("rapidfuzz_wratio", "rapidfuzz extractOne (WRatio)"),
        ("difflib", "difflib nearest neighbour"),
    ):
        row = suite[key]
        curve = row["precision_at_coverage"]
        lines.append(
            f"| {label} | {row['queries']} | {_pct(row['top1'])} | {_pct(row['coverage'])} "
            f"| {_pct(row['precision'])} | {_pct(row.get('suggestion_hit_rate'))} "
            f"| {_pct(row['oos_not_answered'])} | "
            + " | ".join(_pct(curve[k]) for k in ("0.3", "0.5", "0.65", "0.8", "1"))
            + " |"
        )
    notes = [suite[k]["note"] for k in ("difflib",) if "note" in suite[k]]
    lines += ["", f"Baselines answer every query; difflib: {'; '.join(notes)}.", ""]
    return lines


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "## Benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']} ({m['platform']}). "
        f"Mode: {'quick sample' if results.get('quick') else 'full'}.",
        "",
    ]
    for name, suite in results.get("kb-quality", {}).items():
        if "skipped" in suite:
            lines += [f"### Tier-0 quality: {name}", "", f"Skipped: {suite['skipped']}", ""]
        else:
            lines += _quality(name, suite)
    latency = results.get("kb-latency")
    if latency is not None:
        lines += ["### KB latency (one process, single-query `Matcher.match`)", ""]
        if "skipped" in latency:
            lines += [f"Skipped: {latency['skipped']}", ""]
        else:
            lines += [
                "| phrasings | entries | build | p50 | p99 | queries |",
                "|---|---|---|---|---|---|",
            ]
            for row in latency.values():
                lines.append(
                    f"| {row['phrasings']:,} | {row['entries']} | {row['build_seconds']:.1f} s "
                    f"| {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms | {row['queries']} |"
                )
            lines.append("")
    redis = results.get("redis-memory")
    if redis is not None:
        lines += ["### Redis memory", ""]
        if "skipped" in redis:
            lines += [f"Skipped: {redis['skipped']}", ""]
        else:
            lines += [
                f"Mean of {redis['conversations']} conversations driven through the engine "
                f"(a {len(redis['exchange'])}-message exchange with the bot), "
                "`MEMORY USAGE` on a private `redis-server`.",
                "",
                "| bytes / idle conversation | bytes / further message | bytes / ticket "
                "| 1M idle conversations (MEMORY USAGE) | 1M (used_memory growth) |",
                "|---|---|---|---|---|",
                f"| {redis['idle_conversation_bytes']:,.0f} "
                f"| {redis['bytes_per_extra_message']:,.0f} "
                f"| {redis['bytes_per_ticket']:,.0f} "
                f"| {redis['projected_1m_idle_gib']:.2f} GiB "
                f"| {redis['projected_1m_used_memory_gib']:.2f} GiB |",
                "",
            ]
    http = results.get("http-throughput")
    if http is not None:
        if "skipped" in http:
            lines += ["### End-to-end HTTP throughput", "", f"Skipped: {http['skipped']}", ""]
        else:
            from bench.e2e import markdown as e2e_markdown  # e2e imports machine() from here

            lines += [e2e_markdown(http, machine_line=False)]
    start_up = results.get("startup")
    if start_up is not None:
        from bench.startup import markdown as startup_markdown  # imports bench.e2e

        lines += [startup_markdown(start_up)]
    return "\n".join(lines)
