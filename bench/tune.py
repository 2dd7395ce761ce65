"""Re-run the lexical matcher's tuning from the repository: train/validation splits only.

The knobs of a voting KB (``kb/matcher.py``: ``VOTE_NEIGHBOURS``, ``VOTE_TEMPERATURE``,
``CENTROID_WEIGHT``, ``BASE_EXPONENT``) were chosen by this kind of cross-validation
(commits ``b6a63f9`` and ``672a00f``; README, "Answer quality"). This script makes it
repeatable (issue 18, part 8):

* **BANKING77**: 5-fold cross-validation on ``train.csv`` (each fold's KB is built from
  the other four folds; a seeded shuffle, so the folds are the same on every run).
  ``test.csv`` is never read.
* **CLINC150**: the KB from ``train``, evaluated on ``val`` + ``oos_val``. ``test`` and
  ``oos_test`` are never used.

For each point of a grid over the four knobs it reports, per data set: top-1 accuracy,
coverage (in-scope answered directly) and precision under the shipped thresholds, the
out-of-scope share left unanswered (CLINC150), and precision at 65% coverage (P@65, the
most confident 65% of in-scope queries). Points are ranked by mean P@65, then mean
coverage; the shipped setting is marked. A second table sweeps the *answer threshold*
at the shipped knobs (coverage / precision / OOS unanswered), which is how the shipped
thresholds (answer 55, suggest 38, margin 8) can be re-checked.

The index does not depend on the knobs, so each fold's matcher is built once and each
query's phrasing scores computed once; only the entry scores are recomputed per point
(the knobs are module constants, set for the duration of the evaluation and restored).

``python -m bench.tune [--quick] [--datasets DIR] [--output FILE]``; the fusion of a
semantic matcher has its own tuning (not here).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import kb.matcher as lexical
from bench.datasets import ENV_VAR, DatasetMissing, build_kb, default_datasets_dir
from bench.progress import Progress
from bench.quality import Row, summarize
from kb.lowinfo import is_low_information
from kb.matcher import Matcher, Scored, Thresholds, decide

REPO_ROOT = Path(__file__).resolve().parent.parent
FOLDS = 5
SEED = 6
KNOBS = ("VOTE_NEIGHBOURS", "VOTE_TEMPERATURE", "CENTROID_WEIGHT", "BASE_EXPONENT")
#: Around the shipped values: each knob one step lower and higher.
GRID: dict[str, tuple[float, ...]] = {
    "VOTE_NEIGHBOURS": (10, 20, 30),
    "VOTE_TEMPERATURE": (4.0, 8.0, 12.0),
    "CENTROID_WEIGHT": (0.2, 0.4, 0.6),
    "BASE_EXPONENT": (0.4, 0.6, 0.8),
}
QUICK_GRID: dict[str, tuple[float, ...]] = {
    "VOTE_NEIGHBOURS": (10, 20),
    "VOTE_TEMPERATURE": (8.0,),
    "CENTROID_WEIGHT": (0.4,),
    "BASE_EXPONENT": (0.6,),
}
ANSWER_THRESHOLDS = (45.0, 50.0, 55.0, 60.0, 65.0, 70.0)
QUICK_QUERIES = 150  # per data set, for a smoke run

Knobs = tuple[float, ...]


@dataclass
class Query:
    """One held-out query with what does not depend on the knobs, computed once."""

    expected: str | None
    tokens: tuple[str, ...]
    rows: npt.NDArray[np.intp]
    scores: npt.NDArray[np.float64]
    low_information: bool


@dataclass
class Split:
    """A matcher built on the training part and the queries held out from it."""

    matcher: Matcher
    queries: list[Query]


def shipped() -> Knobs:
    return tuple(float(getattr(lexical, name)) for name in KNOBS)


@contextmanager
def knobs_set(values: Knobs) -> Iterator[None]:
    """The matcher's module constants set to ``values`` for the block, then restored."""
    saved = {name: getattr(lexical, name) for name in KNOBS}
    try:
        for name, value in zip(KNOBS, values, strict=True):
            setattr(lexical, name, int(value) if name == "VOTE_NEIGHBOURS" else value)
        yield
    finally:
        for name, value in saved.items():
            setattr(lexical, name, value)


def _split(train: Sequence[tuple[str, str]], held_out: Sequence[tuple[str, str | None]]) -> Split:
    matcher = Matcher(build_kb(train))
    queries = []
    for text, expected in held_out:
        tokens = matcher.normalizer.tokens(text)
        if tokens:
            rows, scores = matcher._phrasing_scores(tokens)
        else:
            rows, scores = np.zeros(0, dtype=np.intp), np.zeros(0)
        queries.append(Query(expected, tokens, rows, scores, is_low_information(text)))
    return Split(matcher, queries)


def rank(matcher: Matcher, query: Query) -> list[Scored]:
    """:meth:`Matcher.rank` from the query's precomputed phrasing scores."""
    if not query.tokens:
        return []
    per_entry = matcher._entry_scores(query.tokens, query.rows, query.scores)
    ids = matcher._ids
    order = np.lexsort((np.arange(len(ids)), -per_entry))
    return [Scored(ids[i], round(float(per_entry[i]), 2)) for i in order]


def rows_for(splits: Sequence[Split], thresholds: Thresholds) -> list[Row]:
    rows: list[Row] = []
    for split in splits:
        for query in split.queries:
            if query.low_information:
                rows.append((query.expected, None, 0.0, False))
                continue
            decision = decide(rank(split.matcher, query), thresholds)
            best = decision.entry_id
            if best is None and decision.suggestions:
                best = decision.suggestions[0].entry_id
            rows.append((query.expected, best, decision.score, decision.outcome == "answer"))
    return rows


def banking77_folds(root: Path, limit: int | None) -> list[Split]:
    """5-fold cross-validation on BANKING77's training split (test.csv is not read)."""
    import csv

    path = root / "banking77" / "train.csv"
    if not path.is_file():
        raise DatasetMissing(f"{path} not found (set --datasets DIR or ${ENV_VAR})")
    with path.open(encoding="utf-8", newline="") as f:
        labelled = [(row["text"], row["category"]) for row in csv.DictReader(f)]
    random.Random(SEED).shuffle(labelled)
    folds = [labelled[i::FOLDS] for i in range(FOLDS)]
    splits = []
    for k in range(1 if limit else FOLDS):
        train = [pair for i, fold in enumerate(folds) if i != k for pair in fold]
        held_out: list[tuple[str, str | None]] = list(folds[k][:limit] if limit else folds[k])
        splits.append(_split(train, held_out))
    return splits


def clinc150_val(root: Path, limit: int | None) -> list[Split]:
    """CLINC150's KB from ``train``, held out ``val`` + ``oos_val`` (no test split)."""
    path = root / "clinc150" / "data_full.json"
    if not path.is_file():
        raise DatasetMissing(f"{path} not found (set --datasets DIR or ${ENV_VAR})")
    raw = json.loads(path.read_text(encoding="utf-8"))
    train = [(str(t), str(i)) for t, i in raw["train"]]
    held_out: list[tuple[str, str | None]] = [(str(t), str(i)) for t, i in raw["val"]]
    held_out += [(str(t), None) for t, _ in raw["oos_val"]]
    if limit:
        held_out = random.Random(SEED).sample(held_out, min(limit, len(held_out)))
    return [_split(train, held_out)]


def _figures(rows: Sequence[Row]) -> dict[str, Any]:
    summary = summarize(rows)
    curve = summary["precision_at_coverage"]
    assert isinstance(curve, dict)
    return {
        "top1": summary["top1"],
        "coverage": summary["coverage"],
        "precision": summary["precision"],
        "oos_not_answered": summary["oos_not_answered"],
        "p_at_65": curve["0.65"],
    }


def run(*, root: Path, quick: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    progress = progress or Progress(quiet=True)
    limit = QUICK_QUERIES if quick else None
    grid = QUICK_GRID if quick else GRID
    thresholds = Thresholds()
    started = time.perf_counter()
    suites = {"banking77": banking77_folds(root, limit), "clinc150": clinc150_val(root, limit)}
    progress.say(f"[tune] matchers built in {time.perf_counter() - started:.1f}s")
    points = list(itertools.product(*(grid[name] for name in KNOBS)))
    if shipped() not in points:
        points.append(shipped())
    results = []
    for values in progress.track(points, "tune grid", len(points)):
        with knobs_set(values):
            per_suite = {name: _figures(rows_for(s, thresholds)) for name, s in suites.items()}
        results.append({"knobs": dict(zip(KNOBS, values, strict=True)), **per_suite})

    def mean(point: dict[str, Any], key: str) -> float:
        return sum(float(point[name][key]) for name in suites) / len(suites)

    results.sort(key=lambda p: (-mean(p, "p_at_65"), -mean(p, "coverage")))
    sweep = []
    with knobs_set(shipped()):
        for answer in ANSWER_THRESHOLDS:
            cut = replace(thresholds, answer=answer, suggest=min(thresholds.suggest, answer))
            sweep.append(
                {"answer": answer, **{n: _figures(rows_for(s, cut)) for n, s in suites.items()}}
            )
    return {
        "quick": quick,
        "folds": 1 if quick else FOLDS,
        "queries": {name: sum(len(s.queries) for s in splits) for name, splits in suites.items()},
        "shipped": dict(zip(KNOBS, shipped(), strict=True)),
        "thresholds": {
            "answer": thresholds.answer,
            "suggest": thresholds.suggest,
            "margin": thresholds.margin,
        },
        "grid": results,
        "answer_sweep": sweep,
        "seconds": time.perf_counter() - started,
    }


def _pct(value: object) -> str:
    return "—" if value is None else f"{100 * float(str(value)):.1f}"


def markdown(result: dict[str, Any], top: int = 10) -> str:
    names = list(result["queries"])
    lines = [
        f"### Lexical matcher tuning ({result['folds']}-fold CV on BANKING77 train, "
        f"CLINC150 val + oos_val; queries {result['queries']})",
        "",
        "| rank | neighbours | temperature | centroid | exponent | "
        + " | ".join(f"{n} top-1 / cov / prec / P@65" for n in names)
        + " | |",
        "|---:|---:|---:|---:|---:|" + "---|" * len(names) + "---|",
    ]
    shipped_knobs = result["shipped"]
    for i, point in enumerate(result["grid"]):
        is_shipped = point["knobs"] == shipped_knobs
        if i >= top and not is_shipped:
            continue
        k = point["knobs"]
        cells = [
            f"{_pct(point[n]['top1'])} / {_pct(point[n]['coverage'])} / "
            f"{_pct(point[n]['precision'])} / {_pct(point[n]['p_at_65'])}"
            for n in names
        ]
        lines.append(
            f"| {i + 1} | {k['VOTE_NEIGHBOURS']:g} | {k['VOTE_TEMPERATURE']:g} "
            f"| {k['CENTROID_WEIGHT']:g} | {k['BASE_EXPONENT']:g} | "
            + " | ".join(cells)
            + (" | **shipped** |" if is_shipped else " | |")
        )
    lines += [
        "",
        "Answer threshold at the shipped knobs (suggest and margin as shipped):",
        "",
        "| answer ≥ | " + " | ".join(f"{n} cov / prec / OOS unanswered" for n in names) + " |",
        "|---:|" + "---|" * len(names),
    ]
    for row in result["answer_sweep"]:
        cells = [
            f"{_pct(row[n]['coverage'])} / {_pct(row[n]['precision'])} / "
            f"{_pct(row[n]['oos_not_answered'])}"
            for n in names
        ]
        lines.append(f"| {row['answer']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 fold, 150 queries, 2 points")
    parser.add_argument("--datasets", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--quiet", action="store_true")
    options = parser.parse_args(argv)
    root = options.datasets or default_datasets_dir(REPO_ROOT)
    try:
        result = run(root=root, quick=options.quick, progress=Progress(quiet=options.quiet))
    except DatasetMissing as e:
        print(f"bench.tune: {e}", file=sys.stderr)
        return 2
    if options.output is not None:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
