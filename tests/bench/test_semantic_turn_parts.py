"""``bench.semantic``'s turns (issue 19) read every whole-turn case file and report the
held-out parts apart: the original cases, those added on 2026-11-30 and the five fresh
sets of 2026-12-01. Only reads the cases: nothing runs on them here."""

from __future__ import annotations

from collections import Counter

from bench import semantic
from bot.turn_eval import load_cases


def test_every_held_out_case_is_in_exactly_one_part() -> None:
    by_file = {
        path.name: [c for c in load_cases(path) if c.split == "holdout" and c.locale == "pt-BR"]
        for path in semantic.CASE_FILES
    }
    assert set(by_file) == {
        "turn_cases.jsonl",
        "turn_cases_ptbr_added.jsonl",
        "turn_cases_ptbr_fresh.jsonl",
        "turn_cases_ptbr_fresh2.jsonl",
        "turn_cases_ptbr_fresh3.jsonl",
        "turn_cases_ptbr_fresh4_a.jsonl",
        "turn_cases_ptbr_fresh4_b.jsonl",
        "turn_cases_ptbr_fresh4_c.jsonl",
        "turn_cases_ptbr_fresh5_a.jsonl",
        "turn_cases_ptbr_fresh5_b.jsonl",
        "turn_cases_ptbr_fresh5_c.jsonl",
    }
    parts = {name: Counter(semantic.part_of(c) for c in cases) for name, cases in by_file.items()}
    assert parts["turn_cases.jsonl"] == Counter(original=len(by_file["turn_cases.jsonl"]))
    assert parts["turn_cases_ptbr_added.jsonl"] == Counter(added=71)
    assert parts["turn_cases_ptbr_fresh.jsonl"] == Counter(fresh=160)
    assert parts["turn_cases_ptbr_fresh2.jsonl"] == Counter(fresh2=160)
    assert parts["turn_cases_ptbr_fresh3.jsonl"] == Counter(fresh3=160)
    for writer in "abc":
        assert parts[f"turn_cases_ptbr_fresh4_{writer}.jsonl"] == Counter(fresh4=110)
        assert parts[f"turn_cases_ptbr_fresh5_{writer}.jsonl"] == Counter(fresh5=110)
    assert [name for name, _ in semantic.PARTS] == [
        "original",
        "added",
        "fresh",
        "fresh2",
        "fresh3",
        "fresh4",
        "fresh5",
    ]
