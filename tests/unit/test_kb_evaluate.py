"""Evaluation: the labelled cases file, exact metrics on a tiny set, and the quality bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import KbError
from kb.evaluate import Case, evaluate, load_cases
from kb.loader import default_kb_path, load_kb
from kb.matcher import Matcher
from kb.model import KbEntry, KnowledgeBase
from kb.normalize import fold

CASES = Path(__file__).parent.parent / "data" / "kb_cases.jsonl"


def entry(entry_id: str, *questions: str) -> KbEntry:
    return KbEntry(
        id=entry_id,
        category="test",
        questions=questions,
        answers={"pt-BR": "resposta", "en": "answer"},
        titles={},
    )


def tiny_matcher() -> Matcher:
    return Matcher(
        KnowledgeBase(
            (
                entry("opening_hours", "when are you open", "horário de atendimento"),
                entry("cancel_order", "cancel order", "cancelar pedido"),
                entry("cancel_subscription", "cancel subscription", "cancelar assinatura"),
                entry("boleto", "pay with boleto", "pagar boleto"),
            ),
            {"cancelar": "cancel", "pedido": "order", "assinatura": "subscription"},
        )
    )


def test_metrics_on_a_hand_built_set_are_exact() -> None:
    matcher = tiny_matcher()
    cases = [
        Case("when are you open?", "opening_hours"),  # answered, right
        Case("boleto", "opening_hours"),  # answered, wrong
        Case("cancelar", "cancel_order"),  # suggest, expected among suggestions, top1
        Case("???", "cancel_order"),  # none, no candidates
        Case("qual a capital da França?", None),  # null, rejected
        Case("pagar boleto", None),  # null, answered: not rejected
    ]
    outcomes = [(matcher.match(c.text).outcome, matcher.match(c.text).entry_id) for c in cases]
    assert outcomes == [
        ("answer", "opening_hours"),
        ("answer", "boleto"),
        ("suggest", None),
        ("none", None),
        ("none", None),
        ("answer", "boleto"),
    ]
    assert evaluate(matcher, cases) == {
        "cases": 6,
        "coverage": 2 / 4,
        "precision": 1 / 3,
        "top1": 2 / 4,
        "suggestion_hit_rate": 1.0,
        "null_rejection": 1 / 2,
        "answered": 3,
        "null_cases": 2,
    }


def test_empty_denominators_are_zero() -> None:
    assert evaluate(tiny_matcher(), []) == {
        "cases": 0,
        "coverage": 0.0,
        "precision": 0.0,
        "top1": 0.0,
        "suggestion_hit_rate": 0.0,
        "null_rejection": 0.0,
        "answered": 0,
        "null_cases": 0,
    }


def test_held_out_cases_meet_the_quality_bar() -> None:
    kb = load_kb([default_kb_path()])
    cases = load_cases(CASES, kb)
    metrics = evaluate(Matcher(kb), cases)
    assert metrics["cases"] >= 60
    assert metrics["null_cases"] >= 15
    assert metrics["coverage"] >= 0.6, metrics
    assert metrics["precision"] >= 0.9, metrics
    assert metrics["null_rejection"] >= 0.8, metrics
    assert metrics["top1"] >= 0.8, metrics


def test_held_out_cases_are_not_copies_of_kb_questions() -> None:
    kb = load_kb([default_kb_path()])
    known = {fold(q) for e in kb.entries for q in (*e.questions, *e.titles.values(), *e.messages)}
    copies = [c.text for c in load_cases(CASES) if fold(c.text) in known]
    assert copies == []
    ids = {c.expected for c in load_cases(CASES)}
    assert len(ids) >= 30, "cases cover most entries"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "oi", "expected": "x"', "not JSON"),
        ('["oi", null]', "must be a JSON object"),
        ('{"text": "", "expected": null}', "'text' must be a non-empty string"),
        ('{"text": "oi"}', "missing 'expected'"),
        ('{"text": "oi", "expected": 3}', "'expected' must be an entry id string or null"),
        ('{"text": "oi", "expected": null, "lang": "pt"}', "unknown key 'lang'"),
        ('{"text": "oi", "expected": "no_such_entry"}', "unknown entry id 'no_such_entry'"),
    ],
)
def test_bad_case_lines_are_named(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "qual o horário?", "expected": "opening_hours"}\n\n' + line + "\n")
    with pytest.raises(KbError) as caught:
        load_cases(path, load_kb([default_kb_path()]))
    assert (caught.value.file, caught.value.place) == (str(path), "line 3")
    assert caught.value.reason.startswith(reason)


def test_unknown_ids_are_fine_without_a_kb(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": "oi", "expected": "whatever"}\n{"text": "tchau", "expected": null}\n')
    assert load_cases(path) == [Case("oi", "whatever"), Case("tchau", None)]
