"""Tune the fusion of lexical scores and embeddings (``kb.fused``) by cross-validation.

    python -m bench.semantic_tune [--datasets DIR] [--folds 5]

Training and validation data only, never a test split:

- voting KBs (:data:`kb.fused.VOTING`): 5-fold cross-validation on BANKING77 ``train``
  (each fold answered by a KB of the other four) and CLINC150 ``val`` + ``oos_val``
  against a KB of ``train``;
- the shipped KB (:data:`kb.fused.SMALL`): ``tests/data/kb_cases.jsonl``, the cases the
  lexical thresholds were tuned on.

Per query it keeps the lexical per-entry scores, the best cosine and the centroid
cosine per entry and the nearest phrasings, then replays the decision
(:func:`fused_scores`, exactly what :class:`kb.fused.FusedMatcher` scores) for every
point of a grid of :class:`kb.fused.Fusion` parameters.

- Voting KBs: for each point of :data:`GRID` and each answer threshold of
  :data:`ANSWERS`, top-1 and coverage (in-scope texts answered) summed over both
  datasets; it keeps the best among those that reach the aims on validation
  (:data:`AIM_PRECISION`: the targets 0.98 / 0.97 plus half a point, every BANKING77
  fold at the target itself, :data:`AIM_OOS` 4% of out-of-scope texts answered against
  the target's 5%, :data:`AIM_COVERAGE` 75%), then the lowest suggest threshold at
  which out-of-scope texts are offered choices no more often than by the lexical
  matcher. The chosen point becomes :data:`kb.fused.VOTING`, answer and suggest
  thresholds included.
- The small KB: the best accuracy at the lexical thresholds with no more wrong answers
  and no more out-of-scope suggestions than the lexical matcher; the shipped
  :data:`kb.fused.SMALL` stays unless a point does strictly better.

Embeddings are cached on disk (``kb.semantic``), so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.datasets import DatasetMissing, build_kb, default_datasets_dir
from kb.evaluate import load_cases
from kb.fused import SMALL, VOTING, Fusion, centroids, phrasings
from kb.loader import default_kb_path, load_kb
from kb.matcher import Matcher, Thresholds
from kb.model import KnowledgeBase
from kb.semantic import EmbeddingCache, Encoder, PhrasingVectors, default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
NEIGHBOURS = 20  # nearest phrasings kept per query: the most any grid point votes with
DEFAULT = Thresholds()
SEED = 19
#: Voting KBs: the fusion's parameters (kb.fused.Fusion), every combination tried.
GRID: dict[str, tuple[float, ...]] = {
    "lexical_weight": (0.5, 0.7, 1.0),
    "semantic_weight": (0.3, 0.4, 0.5, 0.6),
    "floor": (0.3, 0.35, 0.4),
    "ceiling": (0.7, 0.8),
    "temperature": (0.05, 0.1),
    "neighbours": (10, 20),
    "centroid": (0.0, 0.2, 0.4),
}
#: The small KB (no vote: temperature and neighbours play no part).
SMALL_GRID: dict[str, tuple[float, ...]] = {
    "lexical_weight": (0.4, 0.5, 0.6, 0.7, 0.8, 1.0),
    "semantic_weight": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "floor": (0.2, 0.3, 0.35, 0.4),
    "ceiling": (0.7, 0.8, 0.9),
    "centroid": (0.0, 0.2, 0.4),
}
#: The issue's targets (precision when answering, out-of-scope answered) ...
TARGET_PRECISION = {"banking77": 0.98, "clinc150": 0.97}
TARGET_OOS = 0.05
#: ... and what validation must show to choose an operating point: half a point of
#: precision and one of out-of-scope answers more than the targets (about two standard
#: errors of precision on ~2,500 answers: the BANKING77 folds' precision at one point
#: spreads over 0.3-0.6 points), every BANKING77 fold at the target itself, and at least
#: 75% of in-scope texts answered.
AIM_PRECISION = {"banking77": 0.985, "clinc150": 0.975}
AIM_OOS = 0.04
AIM_COVERAGE = 0.75
#: Answer thresholds tried for voting KBs (the fused scale runs higher than the lexical).
ANSWERS = tuple(float(a) for a in range(40, 96))


@dataclass
class Table:
    """Everything the decision needs, per query: lexical scores and cosines per entry,
    the nearest phrasings' cosines and owners, the expected entry (-1: out of scope)."""

    lexical: npt.NDArray[np.float64]  # (queries, entries)
    best: npt.NDArray[np.float64]  # (queries, entries)
    centroid: npt.NDArray[np.float64]  # (queries, entries): cosine with the entry's centroid
    near: npt.NDArray[np.float64]  # (queries, k)
    owners: npt.NDArray[np.intp]  # (queries, k)
    expected: npt.NDArray[np.intp]  # (queries,)
    votes: bool
    fold: npt.NDArray[np.intp]  # (queries,): the cross-validation fold of each query

    @staticmethod
    def concat(tables: Sequence[Table]) -> Table:
        def joined(name: str) -> Any:
            return np.concatenate([getattr(t, name) for t in tables])

        return Table(
            lexical=joined("lexical"),
            best=joined("best"),
            centroid=joined("centroid"),
            near=joined("near"),
            owners=joined("owners"),
            expected=joined("expected"),
            votes=tables[0].votes,
            fold=np.concatenate([np.full(len(t.expected), i) for i, t in enumerate(tables)]),
        )


def table(
    kb: KnowledgeBase,
    vectors: PhrasingVectors,
    queries: Sequence[str],
    query_vectors: npt.NDArray[np.float32],
    expected: Sequence[str | None],
) -> Table:
    matcher = Matcher(kb)
    ids = [e.id for e in kb.entries]
    index = {entry_id: i for i, entry_id in enumerate(ids)}
    n, entries = len(queries), len(ids)
    lexical = np.zeros((n, entries))
    for i, text in enumerate(queries):
        scores = matcher.entry_scores(text)
        if scores is not None:
            lexical[i] = scores
    sims = (query_vectors @ vectors.vectors.T).astype(np.float64)
    best = np.full((n, entries), -1.0)
    for e in range(entries):
        mask = vectors.owners == e
        if mask.any():
            best[:, e] = sims[:, mask].max(axis=1)
    centroid = (query_vectors @ centroids(vectors, entries).T).astype(np.float64)
    k = min(NEIGHBOURS, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(sims, top, axis=1)
    by_closeness = np.argsort(-near, axis=1, kind="stable")  # the first n are the n nearest
    near = np.take_along_axis(near, by_closeness, axis=1)
    owners = vectors.owners[np.take_along_axis(top, by_closeness, axis=1)]
    exp = np.array([index[e] if e is not None else -1 for e in expected], dtype=np.intp)
    return Table(lexical, best, centroid, near, owners, exp, matcher.votes, np.zeros(n, np.intp))


def fused_scores(t: Table, f: Fusion) -> npt.NDArray[np.float64]:
    """What :class:`kb.fused.FusedMatcher` scores, for every query of ``t`` at once."""
    near = np.clip((t.best - f.floor) / (f.ceiling - f.floor), 0.0, 1.0)
    if t.votes:
        k = min(f.neighbours, t.near.shape[1])
        close, owners = t.near[:, :k], t.owners[:, :k]
        weights = np.exp((close - close[:, :1]) / f.temperature)
        shares = np.zeros_like(near)
        rows = np.repeat(np.arange(len(close)), k)
        np.add.at(shares, (rows, owners.ravel()), weights.ravel())
        near = near * shares / shares.sum(axis=1, keepdims=True)
    if f.centroid:
        near = near + f.centroid * np.clip((t.centroid - f.floor) / (f.ceiling - f.floor), 0, 1)
    fused: npt.NDArray[np.float64] = np.minimum(
        100.0, f.lexical_weight * t.lexical + f.semantic_weight * 100.0 * near
    )
    return fused


@dataclass(frozen=True)
class Ranked:
    """Per query: the best entry, its score and its lead over the runner-up."""

    top: npt.NDArray[np.intp]
    first: npt.NDArray[np.float64]
    lead: npt.NDArray[np.float64]

    @staticmethod
    def of(scores: npt.NDArray[np.float64]) -> Ranked:
        order = np.argsort(-scores, axis=1, kind="stable")
        first = np.take_along_axis(scores, order[:, :1], axis=1)[:, 0]
        second = np.take_along_axis(scores, order[:, 1:2], axis=1)[:, 0]
        return Ranked(order[:, 0], first, first - second)


def replay(t: Table, f: Fusion, thresholds: Thresholds = DEFAULT) -> dict[str, float]:
    return decide_all(fused_scores(t, f), t.expected, thresholds, t.fold)


def decide_all(
    scores: npt.NDArray[np.float64],
    expected: npt.NDArray[np.intp],
    thresholds: Thresholds,
    fold: npt.NDArray[np.intp] | None = None,
) -> dict[str, float]:
    return measure(Ranked.of(scores), expected, thresholds, fold)


def measure(
    r: Ranked,
    expected: npt.NDArray[np.intp],
    thresholds: Thresholds,
    fold: npt.NDArray[np.intp] | None = None,
) -> dict[str, float]:
    answered = (r.first >= thresholds.answer) & (r.lead >= thresholds.margin)
    in_scope = expected >= 0
    right = r.top == expected
    n_in, n_oos = int(in_scope.sum()), int((~in_scope).sum())
    n_answered = int(answered.sum())
    folds = np.zeros(len(expected), np.intp) if fold is None else fold
    per_fold = [
        (answered & right & (folds == i)).sum() / max((answered & (folds == i)).sum(), 1)
        for i in np.unique(folds)
    ]
    return {
        "top1": float((right & in_scope).sum() / max(n_in, 1)),
        "coverage": float((answered & in_scope).sum() / max(n_in, 1)),
        "precision": float((answered & right).sum() / max(n_answered, 1)),
        "worst_fold_precision": float(min(per_fold)) if per_fold else 0.0,
        "best_fold_precision": float(max(per_fold)) if per_fold else 0.0,
        "oos_answered": float((answered & ~in_scope).sum() / n_oos) if n_oos else 0.0,
        "wrong_answers": float((answered & ~right).sum()),
        # out-of-scope texts offered choices or answered: the bot pretends to understand
        "oos_not_none": float(((r.first >= thresholds.suggest) & ~in_scope).sum()),
        "oos_offered": float(((r.first >= thresholds.suggest) & ~in_scope).sum() / n_oos)
        if n_oos
        else 0.0,
    }


def grid(space: dict[str, tuple[float, ...]] = GRID) -> list[Fusion]:
    keys = list(space)
    return [
        Fusion(**dict(zip(keys, values, strict=True)))  # type: ignore[arg-type]
        for values in itertools.product(*(space[k] for k in keys))
    ]


def banking_folds(
    root: Path, encoder: Encoder, cache: EmbeddingCache, folds: int, say: Any
) -> Table:
    import csv

    with (root / "banking77" / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = [(r["text"].strip(), r["category"]) for r in csv.DictReader(f) if r["text"].strip()]
    if not rows:
        raise DatasetMissing("banking77/train.csv is empty")
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    all_vectors = PhrasingVectors.build(list(enumerate(t for t, _ in rows)), encoder, cache)
    by_text = dict(zip(all_vectors.texts, all_vectors.vectors, strict=True))
    tables: list[Table] = []
    for fold in range(folds):
        held = set(order[fold::folds])
        train = [rows[i] for i in range(len(rows)) if i not in held]
        test = [rows[i] for i in sorted(held)]
        kb = build_kb(train)
        index = {e.id: i for i, e in enumerate(kb.entries)}
        vectors = PhrasingVectors(
            tuple(t for t, _ in train),
            np.array([index[label] for _, label in train], dtype=np.intp),
            np.stack([by_text[t] for t, _ in train]),
        )
        say(f"banking77 fold {fold + 1}/{folds}: {len(train)} phrasings, {len(test)} queries")
        tables.append(
            table(
                kb,
                vectors,
                [t for t, _ in test],
                np.stack([by_text[t] for t, _ in test]),
                [label for _, label in test],
            )
        )
    return Table.concat(tables)


def clinc_val(root: Path, encoder: Encoder, cache: EmbeddingCache, say: Any) -> Table:
    path = root / "clinc150" / "data_full.json"
    if not path.is_file():
        raise DatasetMissing(f"{path} not found")
    raw = json.loads(path.read_text(encoding="utf-8"))
    train = [(str(t).strip(), str(i)) for t, i in raw["train"] if str(t).strip()]
    kb = build_kb(train)
    vectors = PhrasingVectors.build(
        [(i, q) for i, e in enumerate(kb.entries) for q in e.questions], encoder, cache
    )
    cases = [(str(t), str(i)) for t, i in raw["val"]] + [(str(t), None) for t, _ in raw["oos_val"]]
    texts = [t for t, _ in cases]
    query_vectors = PhrasingVectors.build(list(enumerate(texts)), encoder, cache).vectors
    say(f"clinc150 val: {len(vectors.texts)} phrasings, {len(cases)} queries")
    return table(kb, vectors, texts, query_vectors, [e for _, e in cases])


def small_kb(encoder: Encoder, cache: EmbeddingCache) -> Table:
    kb = load_kb([default_kb_path()])
    cases = load_cases(ROOT / "tests" / "data" / "kb_cases.jsonl", kb)
    vectors = PhrasingVectors.build(phrasings(kb), encoder, cache)
    texts = [c.text for c in cases]
    query_vectors = encoder.embed(texts)
    return table(kb, vectors, texts, query_vectors, [c.expected for c in cases])


Choice = tuple[Fusion, dict[str, dict[str, float]]]


def choose_voting(tables: dict[str, Table]) -> Choice:
    """The fusion and answer threshold with the best top-1 + coverage (summed over the
    datasets) among those that reach the aims on validation (``AIM_*``), then the
    suggest threshold (:func:`choose_suggest`). With no point reaching them, the one
    closest to the aims, saying so."""
    best: tuple[float, Fusion, dict[str, dict[str, float]]] | None = None
    closest: tuple[float, Fusion, dict[str, dict[str, float]]] | None = None
    for f in grid():
        ranked = {name: Ranked.of(fused_scores(t, f)) for name, t in tables.items()}
        for answer in ANSWERS:
            point = replace(DEFAULT, answer=answer, suggest=min(DEFAULT.suggest, answer))
            results = {
                name: measure(r, tables[name].expected, point, tables[name].fold)
                for name, r in ranked.items()
            }
            objective = sum(r["top1"] + r["coverage"] for r in results.values())
            short = sum(
                max(0.0, AIM_PRECISION.get(n, 0.985) - r["precision"])
                + max(0.0, TARGET_PRECISION.get(n, 0.98) - r["worst_fold_precision"])
                + max(0.0, r["oos_answered"] - AIM_OOS)
                + max(0.0, AIM_COVERAGE - r["coverage"])
                for n, r in results.items()
            )
            candidate = (objective, replace(f, answer=answer), results)
            if short == 0.0 and (best is None or objective > best[0]):
                best = candidate
            if closest is None or objective - 10 * short > closest[0]:
                closest = (objective - 10 * short, candidate[1], results)
    chosen = best or closest
    assert chosen is not None
    fusion = chosen[1]
    if best is None:
        print("no point reaches the aims on validation: the closest is kept", file=sys.stderr)
    suggest = choose_suggest(tables, fusion)
    fusion = replace(fusion, suggest=suggest)
    results = {name: replay(t, fusion, fusion.thresholds()) for name, t in tables.items()}
    return fusion, results


def choose_suggest(tables: dict[str, Table], fusion: Fusion) -> float:
    """The lowest suggest threshold (from the lexical one up to the answer threshold)
    at which out-of-scope validation texts are offered choices no more often than by
    the lexical matcher at its own thresholds: fused scores run higher, and a bot that
    offers choices for "what's the weather" pretends to understand."""
    answer = fusion.answer if fusion.answer is not None else DEFAULT.answer
    with_oos = {n: t for n, t in tables.items() if (t.expected < 0).any()}
    if not with_oos:
        return DEFAULT.suggest
    lexical = {
        n: decide_all(t.lexical, t.expected, DEFAULT)["oos_offered"] for n, t in with_oos.items()
    }
    ranked = {n: Ranked.of(fused_scores(t, fusion)) for n, t in with_oos.items()}
    suggest = DEFAULT.suggest
    while suggest < answer:
        point = replace(DEFAULT, answer=answer, suggest=suggest)
        if all(
            measure(ranked[n], t.expected, point)["oos_offered"] <= lexical[n]
            for n, t in with_oos.items()
        ):
            break
        suggest += 1.0
    return min(suggest, answer)


def choose_small(t: Table) -> tuple[Fusion, dict[str, float], dict[str, float]]:
    """The best top-1 + coverage at the lexical thresholds with no more wrong answers
    and no more out-of-scope texts offered choices than the lexical matcher; the
    shipped :data:`kb.fused.SMALL` is kept unless a point does strictly better."""
    lexical = decide_all(t.lexical, t.expected, Thresholds())
    shipped = replay(t, SMALL)
    best: tuple[float, Fusion, dict[str, float]] = (
        shipped["top1"] + shipped["coverage"],
        SMALL,
        shipped,
    )
    for f in grid(SMALL_GRID):
        f = replace(f, temperature=SMALL.temperature)
        r = replay(t, f)
        if (
            r["wrong_answers"] > lexical["wrong_answers"]
            or r["oos_not_none"] > lexical["oos_not_none"]
        ):
            continue
        objective = r["top1"] + r["coverage"]
        if objective > best[0] + 1e-9:
            best = (objective, f, r)
    return best[1], best[2], lexical


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.semantic_tune", description=__doc__)
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(ROOT))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "semantic_tune.json"
    )
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    encoder = Encoder()
    cache = EmbeddingCache(default_cache_dir())
    out: dict[str, Any] = {}
    small = small_kb(encoder, cache)
    fusion, fused, lexical = choose_small(small)
    out["small"] = {"fusion": asdict(fusion), "fused": fused, "lexical": lexical}
    say(f"small KB: {fusion} fused {fused} lexical {lexical}")
    tables: dict[str, Table] = {}
    try:
        tables["banking77"] = banking_folds(args.datasets, encoder, cache, args.folds, say)
    except (DatasetMissing, FileNotFoundError) as e:
        say(f"banking77 skipped: {e}")
    try:
        tables["clinc150"] = clinc_val(args.datasets, encoder, cache, say)
    except (DatasetMissing, FileNotFoundError) as e:
        say(f"clinc150 skipped: {e}")
    if tables:
        voting, results = choose_voting(tables)
        lexical_only = {
            name: decide_all(t.lexical, t.expected, Thresholds(), t.fold)
            for name, t in tables.items()
        }
        shipped = {name: replay(t, VOTING, VOTING.thresholds()) for name, t in tables.items()}
        out["voting"] = {
            "fusion": asdict(voting),
            "fused": results,
            "shipped": {"fusion": asdict(VOTING), "fused": shipped},
            "lexical": lexical_only,
        }
        say(f"voting KBs: {voting} fused {results}")
        say(f"shipped ({VOTING}): {shipped}")
        say(f"lexical: {lexical_only}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    say(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def tune_turns(cosines: Sequence[float], slopes: Sequence[float]) -> list[dict[str, Any]]:
    """Sweep the example cosine mapping (``bot.triage_text``) on the ``dev`` split of the
    whole-turn cases (never ``holdout``): handoff tier accuracy and KB answers right."""
    import asyncio

    from bot import triage_text, turn_eval
    from bot.settings import default_settings

    cases = [
        c
        for c in turn_eval.load_cases(ROOT / "tests" / "data" / "turn_cases.jsonl")
        if c.split == "dev"
    ]
    rows: list[dict[str, Any]] = []
    for cosine, slope in itertools.product(cosines, slopes):
        triage_text.EXAMPLE_COSINE, triage_text.EXAMPLE_SLOPE = cosine, slope
        results = asyncio.run(turn_eval.run_cases(default_settings(), cases))
        measured = turn_eval.measure(cases, results)
        rows.append(
            {
                "cosine": cosine,
                "slope": slope,
                "correct": measured["correct"],
                "handoff_tier_accuracy": measured["handoff_tier_accuracy"],
                "answer_precision": measured["answer_precision"],
                "answers": measured["answers"],
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows
