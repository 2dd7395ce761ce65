"""The sparse index behind the matcher (kb/vectors.py): CSR columns built from a stream of
rows (issue 18, part 7) give the very floats a per-feature list of postings gave."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kb.vectors import SparseIndex, Vector

FEATURES = st.sampled_from(["pas", "ass", "ssw", " pa", "boleto", "senha", "pix", "x"])
WEIGHTS = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_subnormal=False)
ROWS = st.lists(st.dictionaries(FEATURES, WEIGHTS, max_size=6), max_size=12)


def postings_dot(rows: list[Vector], query: Vector) -> list[float]:
    """The dot product summed the way the index must: query features in order, each
    feature's rows ascending, zero weights never stored."""
    out = [0.0] * len(rows)
    for feature, q in query.items():
        if not q:
            continue
        for row, vector in enumerate(rows):
            weight = vector.get(feature, 0.0)
            if weight:
                out[row] += weight * q
    return out


@given(ROWS, st.dictionaries(FEATURES, WEIGHTS, max_size=5))
def test_dot_is_exactly_the_postings_sum(rows: list[Vector], query: Vector) -> None:
    index = SparseIndex(iter(rows))  # a one-pass stream is enough
    got = index.dot(query)
    assert got.dtype == np.float64
    assert got.tolist() == postings_dot(rows, query)


@given(ROWS)
def test_frequency_and_membership_count_rows_with_a_nonzero_weight(rows: list[Vector]) -> None:
    index = SparseIndex(rows)
    assert index.size == len(rows)
    for feature in ["pas", "ass", "ssw", " pa", "boleto", "senha", "pix", "x", "never"]:
        holding = sum(1 for vector in rows if vector.get(feature, 0.0))
        assert index.frequency(feature) == holding
        assert (feature in index) == (holding > 0)


def test_an_empty_index_answers_zeros() -> None:
    index = SparseIndex([])
    assert index.size == 0
    assert index.dot({"pix": 1.0}).tolist() == []
    assert index.frequency("pix") == 0
    rows_without_features = SparseIndex([{}, {"pix": 0.0}])
    assert rows_without_features.dot({"pix": 2.0}).tolist() == [0.0, 0.0]
