"""The lexical tuning script (bench/tune.py, issue 18 part 8) runs on a tiny synthetic
dataset, never reads a test split, and scores queries exactly as the matcher does."""

from __future__ import annotations

import json
from pathlib import Path

from bench import tune
from bench.datasets import build_kb
from kb.matcher import Matcher, Thresholds, decide
from tests.bench.test_bench_smoke import INTENTS, write_datasets

VOTING = {
    # 42 phrasings per intent: entries vote from a median of 40 (kb.matcher)
    intent: [f"{text} {n}" for n in range(14) for text in texts]
    for intent, texts in INTENTS.items()
}


def test_quick_tuning_reports_the_grid_and_the_threshold_sweep(tmp_path: Path) -> None:
    write_datasets(tmp_path)
    # BANKING77's test split is never read: an unreadable file proves it.
    (tmp_path / "banking77" / "test.csv").write_text("not,a\ncsv", encoding="utf-8")
    output = tmp_path / "tune.json"
    code = tune.main(["--quick", "--quiet", "--datasets", str(tmp_path), "--output", str(output)])
    assert code == 0
    result = json.loads(output.read_text(encoding="utf-8"))
    assert result["folds"] == 1
    assert result["queries"] == {"banking77": 2, "clinc150": 4}  # a fold of 9; val + oos_val
    shipped = result["shipped"]
    assert [p["knobs"] for p in result["grid"]].count(shipped) == 1
    assert len(result["grid"]) == 2  # the quick grid holds the shipped point
    for point in result["grid"]:
        assert 0.0 <= point["banking77"]["top1"] <= 1.0
        assert point["clinc150"]["oos_not_answered"] is not None
    assert [row["answer"] for row in result["answer_sweep"]] == list(tune.ANSWER_THRESHOLDS)


def test_missing_datasets_are_a_clear_error(tmp_path: Path) -> None:
    assert tune.main(["--quick", "--quiet", "--datasets", str(tmp_path)]) == 2


def test_precomputed_ranking_is_the_matcher_s_own() -> None:
    """The grid reuses each query's phrasing scores; at the shipped knobs its decisions
    must be exactly ``Matcher.match``'s, on a KB that votes."""
    train = [(text, intent) for intent, texts in VOTING.items() for text in texts]
    held_out: list[tuple[str, str | None]] = [
        ("when will my card arrive", "card_arrival"),
        ("euro exchange rate today", "exchange_rate"),
        ("somebody stole the card", "lost_card"),
        ("what is the weather in paris", None),
        ("ok", None),
    ]
    split = tune._split(train, held_out)
    matcher = Matcher(build_kb(train))
    assert matcher.votes
    with tune.knobs_set(tune.shipped()):
        rows = tune.rows_for([split], Thresholds())
    for (text, expected), row in zip(held_out, rows, strict=True):
        decision = matcher.match(text)
        best = decision.entry_id or (
            decision.suggestions[0].entry_id if decision.suggestions else None
        )
        assert row == (expected, best, decision.score, decision.outcome == "answer"), text
        if decision.outcome != "none":
            assert decide(matcher.rank(text), Thresholds()) == decision


def test_knobs_are_restored_after_an_evaluation() -> None:
    before = tune.shipped()
    with tune.knobs_set((5, 1.0, 0.9, 1.0)):
        assert tune.shipped() == (5.0, 1.0, 0.9, 1.0)
    assert tune.shipped() == before
