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
from collections.abc import Iterable, Mapping, Sequence

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


class SparseIndex:
    """Rows of sparse vectors; ``dot(query)`` is the query's dot product with every row."""

    def __init__(self, rows: Sequence[Vector]) -> None:
        self.size = len(rows)
        columns: dict[str, tuple[list[int], list[float]]] = {}
        for row, vector in enumerate(rows):
            for feature, weight in vector.items():
                if weight:
                    ids, weights = columns.setdefault(feature, ([], []))
                    ids.append(row)
                    weights.append(weight)
        self._rows: dict[str, npt.NDArray[np.intp]] = {}
        self._weights: dict[str, npt.NDArray[np.float64]] = {}
        for feature, (ids, weights) in columns.items():
            self._rows[feature] = np.array(ids, dtype=np.intp)
            self._weights[feature] = np.array(weights, dtype=np.float64)

    def __contains__(self, feature: str) -> bool:
        return feature in self._rows

    def frequency(self, feature: str) -> int:
        """How many rows hold ``feature``."""
        rows = self._rows.get(feature)
        return 0 if rows is None else len(rows)

    def dot(self, query: Vector) -> npt.NDArray[np.float64]:
        """One float per row: sum over shared features of row weight times query weight."""
        rows: list[npt.NDArray[np.intp]] = []
        weights: list[npt.NDArray[np.float64]] = []
        for feature, weight in query.items():
            found = self._rows.get(feature)
            if found is not None and weight:
                rows.append(found)
                weights.append(self._weights[feature] * weight)
        if not rows:
            return np.zeros(self.size)
        out: npt.NDArray[np.float64] = np.asarray(
            np.bincount(np.concatenate(rows), weights=np.concatenate(weights), minlength=self.size),
            dtype=np.float64,
        )
        return out


def tfidf(counts: Mapping[str, int], idf: Mapping[str, float], unknown: float) -> dict[str, float]:
    """Sublinear TF times IDF, L2-normalized (cosine = dot product of two such vectors)."""
    vector = {f: (1.0 + math.log(c)) * idf.get(f, unknown) for f, c in counts.items()}
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {f: w / norm for f, w in vector.items()} if norm else {}
