"""Sparse vectors over an inverted index: the candidate generator behind the matcher.

Each row (a phrasing) is a sparse vector of features (word stems, character n-grams)
with float weights. The index keeps, per feature, the rows holding it and their weights
(the columns of a CSR matrix, built by hand with numpy: no scipy). A query's dot product
with every row is one ``np.bincount`` over the postings of the query's features, so a
query costs the length of those postings, not the number of rows: at 100k phrasings a
query touches a few tens of thousands of postings and stays well under a millisecond or
two (issue 6, part 2).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

Vector = Mapping[str, float]

CHAR_NGRAM = 3  # character n-gram size: "pasword" and "password" share most trigrams


def char_ngrams(words: Iterable[str], n: int = CHAR_NGRAM) -> dict[str, int]:
    """Counts of the character n-grams of each word, padded so edges count (``" pa"``)."""
    counts: dict[str, int] = {}
    for word in words:
        padded = f" {word} "
        if len(padded) <= n:
            counts[padded] = counts.get(padded, 0) + 1
            continue
        for i in range(len(padded) - n + 1):
            gram = padded[i : i + n]
            counts[gram] = counts.get(gram, 0) + 1
    return counts


#: From this many query features on, :meth:`SparseIndex.dot` gathers the postings with
#: array operations (a fixed cost of a few µs) rather than a slice per feature.
_FEW_FEATURES = 8


class SparseIndex:
    """Rows of sparse vectors; ``dot(query)`` is the query's dot product with every row.

    Stored as CSR-like columns (issue 18, part 7): each feature has a number, and the
    postings of feature ``f`` are ``rows[start[f]:start[f + 1]]`` with their ``weights``,
    rows ascending. The build streams the rows (an iterable: the caller need not hold
    every row's dict at once) into flat typed arrays and sorts them by feature once, so
    at 100k phrasings it peaks near the size of what it keeps, instead of holding a
    Python list, int and float per posting (~550 MB for ~144 MB kept).
    """

    def __init__(self, rows: Iterable[Vector]) -> None:
        features: dict[str, int] = {}
        feature_of = array("i")  # per posting: its feature's number
        weight_of = array("d")  # per posting: its weight
        lengths = array("i")  # per row: how many postings it has
        for vector in rows:
            kept = [(feature, weight) for feature, weight in vector.items() if weight]
            feature_of.extend([features.setdefault(f, len(features)) for f, _ in kept])
            weight_of.extend([weight for _, weight in kept])
            lengths.append(len(kept))
        self.size = len(lengths)
        self._features = features
        by_feature = np.frombuffer(feature_of, dtype=np.int32)
        # A stable sort keeps each feature's rows in row order: the same postings, in the
        # same order, as a per-feature list built row by row (so ``dot`` sums identically).
        order = np.argsort(by_feature, kind="stable")
        counts = np.bincount(by_feature, minlength=len(features))
        del by_feature, feature_of
        self._start: npt.NDArray[np.intp] = np.zeros(len(features) + 1, dtype=np.intp)
        np.cumsum(counts, out=self._start[1:])
        row_of = np.repeat(
            np.arange(self.size, dtype=np.int32), np.frombuffer(lengths, dtype=np.int32)
        )
        self._rows: npt.NDArray[np.int32] = row_of[order]
        del row_of
        self._weights: npt.NDArray[np.float64] = np.frombuffer(weight_of, dtype=np.float64)[order]

    def __contains__(self, feature: str) -> bool:
        return feature in self._features

    def frequency(self, feature: str) -> int:
        """How many rows hold ``feature``."""
        f = self._features.get(feature)
        return 0 if f is None else int(self._start[f + 1] - self._start[f])

    def dot(self, query: Vector) -> npt.NDArray[np.float64]:
        """One float per row: sum over shared features of row weight times query weight."""
        if len(query) > _FEW_FEATURES:
            return self._dot_gathered(query)
        rows: list[npt.NDArray[np.int32]] = []
        weights: list[npt.NDArray[np.float64]] = []
        start = self._start
        for feature, weight in query.items():
            f = self._features.get(feature)
            if f is not None and weight:
                begin, end = start[f], start[f + 1]
                rows.append(self._rows[begin:end])
                weights.append(self._weights[begin:end] * weight)
        if not rows:
            return np.zeros(self.size)
        out: npt.NDArray[np.float64] = np.asarray(
            np.bincount(np.concatenate(rows), weights=np.concatenate(weights), minlength=self.size),
            dtype=np.float64,
        )
        return out

    def _dot_gathered(self, query: Vector) -> npt.NDArray[np.float64]:
        """:meth:`dot` for a query of many features (a text's character n-grams): the
        postings gathered with a few array operations instead of a slice per feature
        (issue 18). The same products, summed in the same order: the same floats."""
        features = self._features
        found: list[int] = []
        factors: list[float] = []
        for feature, weight in query.items():
            f = features.get(feature)
            if f is not None and weight:
                found.append(f)
                factors.append(weight)
        if not found:
            return np.zeros(self.size)
        ids = np.array(found, dtype=np.intp)
        begins = self._start[ids]
        lengths = self._start[ids + 1] - begins
        # Posting k of the gathered list is at begins[its feature] + its place in it.
        shift = begins - (np.cumsum(lengths) - lengths)
        at = np.arange(int(lengths.sum())) + np.repeat(shift, lengths)
        weights = self._weights[at] * np.repeat(np.array(factors, dtype=np.float64), lengths)
        out: npt.NDArray[np.float64] = np.asarray(
            np.bincount(self._rows[at], weights=weights, minlength=self.size), dtype=np.float64
        )
        return out


def tfidf(counts: Mapping[str, int], idf: Mapping[str, float], unknown: float) -> dict[str, float]:
    """Sublinear TF times IDF, L2-normalized (cosine = dot product of two such vectors)."""
    vector = {f: (1.0 + math.log(c)) * idf.get(f, unknown) for f, c in counts.items()}
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {f: w / norm for f, w in vector.items()} if norm else {}
