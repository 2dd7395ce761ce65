"""``escala eval``: whole customer turns through the real engine, measured (issue 12).

``escala kb eval`` measures the matcher alone; this runs each case through the engine
that serves customers (commands, flows, small talk, the KB, triage and handoff) on
the memory store, and checks what the customer would have got.

Cases are JSON lines::

    {"text": "minha conta foi invadida", "expect": "handoff", "tier": "N3",
     "priority": "urgent", "private": false, "locale": "pt-BR", "split": "dev"}

- ``text`` (required): the customer's message; ``before`` (optional): earlier messages
  of the same conversation, sent first (their outcome is not checked);
- ``expect`` (required): ``answer`` (``entry``: the KB entry, optional), ``suggest``,
  ``handoff`` (``tier``, ``priority``, ``private``: each optional), ``smalltalk`` (a
  friendly word, no ticket), ``none`` (no answer, no ticket: "not understood", a
  request for more detail, a status or cancel command), or ``flow`` (``flow``: the
  flow that started);
- ``locale``: ``pt-BR`` (default) or ``en``; ``split``: ``dev`` (default) or
  ``holdout``, the cases never looked at while tuning; ``tags``: labels such as
  ``lowinfo`` (a message too short to mean anything: it must never get a KB answer).

Every case is a new conversation. What happened is read from the events of the last
message: a ticket opened is ``handoff``, else a KB answer ``answer``, a suggestion
``suggest``, small talk ``smalltalk``, a flow started ``flow``, anything else ``none``.

The report gives, per split and overall: precision and recall per outcome and per
handoff tier, and the figures the issue sets targets for: handoff tier accuracy,
private-flag recall, no ticket for small talk, no KB answer for low-information
messages, and KB answer precision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import build
from bot.clock import FakeClock, SequentialIds
from bot.content import Content
from bot.errors import ConfigError, ConfigErrors
from bot.models import LOCALES, EventKind, InboundMessage, OutboundMessage
from bot.settings import Settings
from bot.store import MemoryStore

OUTCOMES = ("answer", "suggest", "handoff", "smalltalk", "flow", "none")
SPLITS = ("dev", "holdout")
CASE_KEYS = frozenset(
    {"text", "expect", "entry", "tier", "priority", "private", "flow", "locale", "split",
     "before", "tags"}
)  # fmt: skip
CHANNEL = "console"

#: The issue's targets: (metric, minimum).
TARGETS = (
    ("handoff_tier_accuracy", 0.95),
    ("private_recall", 1.0),
    ("smalltalk_no_ticket", 0.98),
    ("lowinfo_not_answered", 0.98),
)


@dataclass(frozen=True)
class Case:
    text: str
    expect: str
    line: int
    entry: str | None = None
    tier: str | None = None
    priority: str | None = None
    private: bool | None = None
    flow: str | None = None
    locale: str = "pt-BR"
    split: str = "dev"
    before: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """What the engine did with a case's last message."""

    outcome: str
    entry: str | None = None
    tier: str | None = None
    priority: str | None = None
    private: bool = False
    flow: str | None = None
    replies: tuple[str, ...] = ()


def _fail(file: str, line: int, reason: str) -> ConfigError:
    return ConfigError(file, f"line {line}", reason)


def load_cases(path: Path) -> list[Case]:
    """Read the cases; every bad line is reported at once (``ConfigError.problems``)."""
    file = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(file, "", f"cannot read: {e}") from e
    cases: list[Case] = []
    errors: list[ConfigError] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cases.append(_case(file, n, line))
        except ConfigError as e:
            errors.append(e)
    if errors:
        raise ConfigErrors.of(errors)
    if not cases:
        raise ConfigError(file, "", "no cases")
    return cases


def _case(file: str, n: int, line: str) -> Case:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise _fail(file, n, f"not JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(raw, dict):
        raise _fail(file, n, "must be a JSON object")
    unknown = sorted(set(raw) - CASE_KEYS)
    if unknown:
        raise _fail(file, n, f"unknown key '{unknown[0]}' (known: {', '.join(sorted(CASE_KEYS))})")
    text, expect = raw.get("text"), raw.get("expect")
    if not isinstance(text, str) or not text.strip():
        raise _fail(file, n, "'text' must be a non-empty string")
    if expect not in OUTCOMES:
        raise _fail(file, n, f"'expect' must be one of {', '.join(OUTCOMES)}, got {expect!r}")
    for key in ("entry", "tier", "priority", "flow"):
        if key in raw and not isinstance(raw[key], str):
            raise _fail(file, n, f"'{key}' must be a string")
    if "private" in raw and not isinstance(raw["private"], bool):
        raise _fail(file, n, "'private' must be true or false")
    locale = raw.get("locale", "pt-BR")
    if locale not in LOCALES:
        raise _fail(file, n, f"'locale' must be one of {', '.join(LOCALES)}")
    split = raw.get("split", "dev")
    if split not in SPLITS:
        raise _fail(file, n, f"'split' must be one of {', '.join(SPLITS)}")
    lists = {}
    for key in ("before", "tags"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(file, n, f"'{key}' must be a list of strings")
        lists[key] = tuple(value)
    return Case(
        text=text,
        expect=expect,
        line=n,
        entry=raw.get("entry"),
        tier=raw.get("tier"),
        priority=raw.get("priority"),
        private=raw.get("private"),
        flow=raw.get("flow"),
        locale=locale,
        split=split,
        before=lists["before"],
        tags=lists["tags"],
    )


@dataclass
class _Silent:
    """The customer channel of the evaluation: keeps what was sent, delivers nothing."""

    sent: list[str] = field(default_factory=list)

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        self.sent.append(message.text)


async def run_cases(
    settings: Settings, cases: Sequence[Case], content: Content | None = None
) -> list[Result]:
    """Each case in a conversation of its own, through one engine on a memory store;
    on ``content`` (a studio draft or a live version) instead of the settings' files."""
    clock = FakeClock()
    escala = build(settings, store=MemoryStore(), clock=clock, ids=SequentialIds())
    if content is not None:
        escala.content.holder.swap(content)
    channel = _Silent()
    escala.outbox.register(CHANNEL, channel)
    results: list[Result] = []
    for index, case in enumerate(cases):
        address = f"eval-{index}"
        for n, text in enumerate((*case.before, case.text)):
            clock.advance(seconds=5)
            before_events = len(await escala.store.events())
            before_sent = len(channel.sent)
            await escala.engine.handle(
                InboundMessage(
                    channel=CHANNEL,
                    address=address,
                    text=text,
                    provider_message_id=f"{address}-{n}",
                    received_at=clock.now(),
                    locale=case.locale,
                )
            )
        events = (await escala.store.events())[before_events:]
        results.append(_result(events, tuple(channel.sent[before_sent:])))
    return results


def _result(events: Sequence[Any], replies: tuple[str, ...]) -> Result:
    kinds = {event.kind: event for event in events}
    if (opened := kinds.get(EventKind.HANDOFF)) is not None:
        data = opened.data
        return Result(
            "handoff",
            tier=data.get("tier"),
            priority=data.get("priority"),
            private=bool(data.get("private")),
            replies=replies,
        )
    if (answered := kinds.get(EventKind.KB_ANSWERED)) is not None:
        return Result("answer", entry=answered.data.get("entry"), replies=replies)
    if EventKind.KB_SUGGESTED in kinds:
        return Result("suggest", replies=replies)
    if EventKind.SMALLTALK in kinds:
        return Result("smalltalk", replies=replies)
    if (started := kinds.get(EventKind.FLOW_STARTED)) is not None:
        return Result("flow", flow=started.data.get("flow"), replies=replies)
    return Result("none", replies=replies)


def correct(case: Case, result: Result) -> bool:
    """Whether ``result`` is what ``case`` expects, every given detail included."""
    if result.outcome != case.expect:
        return False
    if case.expect == "answer" and case.entry is not None:
        return result.entry == case.entry
    if case.expect == "flow" and case.flow is not None:
        return result.flow == case.flow
    if case.expect == "handoff":
        return (
            (case.tier is None or result.tier == case.tier)
            and (case.priority is None or result.priority == case.priority)
            and (case.private is None or result.private == case.private)
        )
    return True


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _precision_recall(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in labels:
        expected = sum(1 for e, _ in pairs if e == label)
        got = sum(1 for _, g in pairs if g == label)
        both = sum(1 for e, g in pairs if e == label and g == label)
        if expected or got:
            out[label] = {
                "precision": _share(both, got),
                "recall": _share(both, expected),
                "expected": expected,
                "got": got,
            }
    return out


def measure(cases: Sequence[Case], results: Sequence[Result]) -> dict[str, Any]:
    """The report for one set of cases (see module doc); shares are 0..1, ``None`` over
    nothing."""
    pairs = list(zip(cases, results, strict=True))
    outcomes = [(c.expect, r.outcome) for c, r in pairs]
    tiers = [
        (
            c.tier if c.expect == "handoff" and c.tier else "-",
            r.tier if r.outcome == "handoff" and r.tier else "-",
        )
        for c, r in pairs
    ]
    tier_labels = sorted({t for pair in tiers for t in pair} - {"-"})
    tiered = [(c, r) for c, r in pairs if c.expect == "handoff" and c.tier]
    private = [(c, r) for c, r in pairs if c.expect == "handoff" and c.private]
    chatty = [(c, r) for c, r in pairs if c.expect == "smalltalk"]
    lowinfo = [(c, r) for c, r in pairs if "lowinfo" in c.tags]
    answered = [(c, r) for c, r in pairs if r.outcome == "answer"]
    return {
        "cases": len(pairs),
        "correct": _share(sum(correct(c, r) for c, r in pairs), len(pairs)),
        "outcomes": _precision_recall(outcomes, OUTCOMES),
        "tiers": _precision_recall(tiers, tier_labels),
        "handoff_tier_accuracy": _share(
            sum(r.outcome == "handoff" and r.tier == c.tier for c, r in tiered), len(tiered)
        ),
        "handoff_cases": len(tiered),
        "private_recall": _share(
            sum(r.outcome == "handoff" and r.private for _, r in private), len(private)
        ),
        "private_cases": len(private),
        "smalltalk_no_ticket": _share(sum(r.outcome != "handoff" for _, r in chatty), len(chatty)),
        "smalltalk_cases": len(chatty),
        "lowinfo_not_answered": _share(
            sum(r.outcome != "answer" for _, r in lowinfo), len(lowinfo)
        ),
        "lowinfo_cases": len(lowinfo),
        "answer_precision": _share(
            sum(
                c.expect == "answer" and (c.entry is None or c.entry == r.entry)
                for c, r in answered
            ),
            len(answered),
        ),
        "answers": len(answered),
    }


def report(cases: Sequence[Case], results: Sequence[Result]) -> dict[str, Any]:
    """Per split and overall, with the targets and, per case that failed, what happened."""
    out: dict[str, Any] = {}
    for split in (*SPLITS, "all"):
        chosen = [(c, r) for c, r in zip(cases, results, strict=True) if split in ("all", c.split)]
        if chosen:
            out[split] = measure([c for c, _ in chosen], [r for _, r in chosen])
    overall = out["all"]
    out["targets"] = {
        name: {"minimum": minimum, "measured": overall[name], "met": _met(overall[name], minimum)}
        for name, minimum in TARGETS
    }
    out["failures"] = [
        {
            "line": c.line,
            "split": c.split,
            "text": c.text,
            "expected": _describe_case(c),
            "got": _describe_result(r),
        }
        for c, r in zip(cases, results, strict=True)
        if not correct(c, r)
    ]
    return out


def _met(measured: float | None, minimum: float) -> bool:
    return measured is None or measured >= minimum


def _describe_case(c: Case) -> str:
    details = [c.entry, c.flow, c.tier, c.priority, "private" if c.private else None]
    return " ".join([c.expect, *(d for d in details if d)])


def _describe_result(r: Result) -> str:
    details = [r.entry, r.flow, r.tier, r.priority, "private" if r.private else None]
    return " ".join([r.outcome, *(d for d in details if d)])


def render(result: dict[str, Any], failures: bool = False) -> list[str]:
    """The report as text lines: one table per split, the targets, the failures."""
    lines: list[str] = []
    for split in (*SPLITS, "all"):
        part = result.get(split)
        if part is None:
            continue
        lines.append(f"== {split}: {part['cases']} cases, {_pct(part['correct'])} fully correct")
        lines.append(f"{'outcome':<12}{'precision':>10}{'recall':>8}{'expected':>10}{'got':>6}")
        for name, row in part["outcomes"].items():
            lines.append(
                f"{name:<12}{_pct(row['precision']):>10}{_pct(row['recall']):>8}"
                f"{row['expected']:>10}{row['got']:>6}"
            )
        for name, row in part["tiers"].items():
            lines.append(
                f"{'tier ' + name:<12}{_pct(row['precision']):>10}{_pct(row['recall']):>8}"
                f"{row['expected']:>10}{row['got']:>6}"
            )
        lines.append(
            f"handoff tier accuracy {_pct(part['handoff_tier_accuracy'])} ({part['handoff_cases']}), "
            f"private recall {_pct(part['private_recall'])} ({part['private_cases']}), "
            f"small talk without ticket {_pct(part['smalltalk_no_ticket'])} ({part['smalltalk_cases']}), "
            f"low-information not answered {_pct(part['lowinfo_not_answered'])} ({part['lowinfo_cases']}), "
            f"KB answer precision {_pct(part['answer_precision'])} ({part['answers']})"
        )
    lines.append("== targets (all cases)")
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "NOT MET"
        lines.append(
            f"{name}: {_pct(target['measured'])} (minimum {_pct(target['minimum'])}) {verdict}"
        )
    if failures:
        lines.append(f"== {len(result['failures'])} cases not as expected")
        for f in result["failures"]:
            lines.append(
                f"line {f['line']} [{f['split']}] {f['text']!r}: expected {f['expected']}, got {f['got']}"
            )
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
