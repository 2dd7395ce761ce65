"""Measure a matcher on labelled cases (JSON lines), for tuning and for CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.errors import KbError
from kb.matcher import Matcher
from kb.model import KnowledgeBase


@dataclass(frozen=True)
class Case:
    """A customer text and the entry that should answer it (None: the bot should not)."""

    text: str
    expected: str | None


def load_cases(path: Path, kb: KnowledgeBase | None = None) -> list[Case]:
    """Read ``{"text": ..., "expected": "<entry id>" | null}`` per line; blank lines skipped.

    A line that is not such an object raises KbError(path, "line N", reason); with ``kb``,
    an ``expected`` id the KB does not have is an error too.
    """
    file = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KbError(file, "file", f"cannot read: {e}") from e
    cases: list[Case] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        place = f"line {n}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise KbError(file, place, f"not JSON: {e.msg} (column {e.colno})") from e
        if not isinstance(raw, dict):
            raise KbError(file, place, "must be a JSON object")
        unknown = sorted(set(raw) - {"text", "expected"})
        if unknown:
            raise KbError(file, place, f"unknown key '{unknown[0]}' (known: text, expected)")
        text, expected = raw.get("text"), raw.get("expected", ...)
        if not isinstance(text, str) or not text.strip():
            raise KbError(file, place, "'text' must be a non-empty string")
        if expected is ...:
            raise KbError(file, place, "missing 'expected' (an entry id, or null)")
        if expected is not None and not isinstance(expected, str):
            raise KbError(file, place, "'expected' must be an entry id string or null")
        if expected is not None and kb is not None and kb.get(expected) is None:
            raise KbError(file, place, f"unknown entry id '{expected}'")
        cases.append(Case(text, expected))
    return cases


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def evaluate(matcher: Matcher, cases: Sequence[Case]) -> dict[str, float | int]:
    """Match every case and report (shares are 0..1; a share over nothing is 0.0):

    - ``cases``: number of cases; ``null_cases``: those with ``expected`` null; in-scope
      cases are the others;
    - ``answered``: cases (of any kind) whose outcome is "answer";
    - ``coverage``: in-scope cases answered directly / in-scope cases (right or wrong);
    - ``precision``: answered cases whose entry is the expected one / ``answered``
      (an answer to a null case is a wrong answer);
    - ``top1``: in-scope cases whose best-ranked entry (whatever the outcome) is the
      expected one / in-scope cases;
    - ``suggestion_hit_rate``: in-scope cases with outcome "suggest" whose suggestions
      include the expected entry / in-scope cases with outcome "suggest";
    - ``null_rejection``: null cases NOT answered directly ("suggest" and "none" count as
      rejected) / ``null_cases``.
    """
    in_scope = answered_in_scope = answered = right = top1 = 0
    suggested = suggestion_hits = null_cases = null_rejected = 0
    for case in cases:
        decision = matcher.match(case.text)
        is_answer = decision.outcome == "answer"
        answered += is_answer
        right += is_answer and decision.entry_id == case.expected
        if case.expected is None:
            null_cases += 1
            null_rejected += not is_answer
            continue
        in_scope += 1
        answered_in_scope += is_answer
        best = decision.entry_id if is_answer else None
        if best is None and decision.suggestions:
            best = decision.suggestions[0].entry_id
        top1 += best == case.expected
        if decision.outcome == "suggest":
            suggested += 1
            suggestion_hits += any(s.entry_id == case.expected for s in decision.suggestions)
    return {
        "cases": len(cases),
        "coverage": _share(answered_in_scope, in_scope),
        "precision": _share(right, answered),
        "top1": _share(top1, in_scope),
        "suggestion_hit_rate": _share(suggestion_hits, suggested),
        "null_rejection": _share(null_rejected, null_cases),
        "answered": answered,
        "null_cases": null_cases,
    }
