"""The fusion tuning (bench/semantic_tune.py, issue 19): it replays exactly what the
fused matcher scores, and the operating point it picks reaches its aims on the data it
was tuned on. A stand-in model (tests/unit/test_semantic.py) keeps it fast and runs it
without the extra."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import semantic_tune as st
from kb.fused import VOTING, FusedMatcher
from kb.semantic import EmbeddingCache, Encoder
from tests.unit.test_semantic import WordModel, voting_kb


def test_the_replay_scores_as_the_fused_matcher(tmp_path: Path) -> None:
    kb = voting_kb()
    encoder = Encoder(WordModel())
    matcher = FusedMatcher(kb, encoder=encoder, cache=EmbeddingCache(tmp_path))
    queries = ["refund question", "delivery number 3", "refund delivery question 7", "hello"]
    t = st.table(
        kb, matcher.vectors, queries, encoder.embed(queries), ["refund", "delivery", None, None]
    )
    replayed = st.fused_scores(t, VOTING)
    for row, text in zip(replayed, queries, strict=True):
        by_id = {s.entry_id: s.score for s in matcher.rank(text)}
        assert [round(float(v), 2) for v in row] == [by_id[e.id] for e in kb.entries]


def synthetic(n: int, entries: int, oos: int, seed: int) -> st.Table:
    """Queries whose own entry is usually, not always, the nearest, and out-of-scope
    texts near nothing: enough structure for a threshold to trade coverage for precision."""
    rng = np.random.default_rng(seed)
    expected = np.concatenate([rng.integers(0, entries, n), np.full(oos, -1)]).astype(np.intp)
    best = rng.uniform(0.1, 0.55, (n + oos, entries))
    lexical = rng.uniform(0, 40, (n + oos, entries))
    for i, e in enumerate(expected[:n]):
        if rng.random() < 0.9:
            best[i, e] = rng.uniform(0.5, 0.95)
            lexical[i, e] = rng.uniform(30, 90)
    order = np.argsort(-best, axis=1)[:, : st.NEIGHBOURS]
    return st.Table(
        lexical=lexical,
        best=best,
        centroid=best - 0.05,
        near=np.take_along_axis(best, order, axis=1),
        owners=order.astype(np.intp),
        expected=expected,
        votes=True,
        fold=np.arange(n + oos) % 2,
    )


def test_the_chosen_point_reaches_the_aims_and_suggests_no_more_oos() -> None:
    tables = {"banking77": synthetic(600, 20, 0, 1), "clinc150": synthetic(600, 20, 200, 2)}
    fusion, results = st.choose_voting(tables)
    assert fusion.answer is not None and fusion.suggest is not None
    for name, r in results.items():
        assert r["precision"] >= st.AIM_PRECISION[name]
        assert r["worst_fold_precision"] >= st.TARGET_PRECISION[name]
        assert r["coverage"] >= st.AIM_COVERAGE
        assert r["oos_answered"] <= st.AIM_OOS
    clinc = tables["clinc150"]
    lexical = st.decide_all(clinc.lexical, clinc.expected, st.DEFAULT)["oos_offered"]
    assert results["clinc150"]["oos_offered"] <= lexical
    if fusion.suggest > st.DEFAULT.suggest:  # the lowest such threshold: one lower offers more
        lower = replace(fusion, suggest=fusion.suggest - 1)
        assert st.replay(clinc, lower, lower.thresholds())["oos_offered"] > lexical
