"""Match a customer's text to knowledge base entries: answer, suggest, or neither.

Every phrasing of an entry (its questions and titles) is normalized once, when the
Matcher is built (see ``kb.normalize``). A text is scored against each phrasing by
``_phrasing_scores``, the one scoring function (0..100):

    score = FUZZY_WEIGHT * fuzzy + (1 - FUZZY_WEIGHT) * 100 * overlap

* ``fuzzy``: rapidfuzz ``token_set_ratio`` between the normalized strings (character
  level: it forgives typos the word-level repair missed and partial stems);
* ``overlap``: IDF-weighted word overlap, an F-measure of how much of the *text* the
  phrasing explains (weighted ``QUERY_BETA`` times more) and how much of the phrasing the
  text covers. IDF counts entries, not phrasings, so a word every entry uses ("conta",
  "account") weighs little and a word only one entry uses ("boleto") weighs a lot. A word
  the KB has never seen weighs the most: an off-topic text is mostly unexplained.

An entry's score is its best phrasing's. The decision (``decide``): "answer" when the best
entry reaches ``Thresholds.answer`` and beats the runner-up entry by ``Thresholds.margin``;
"suggest" when it reaches ``Thresholds.suggest`` (up to ``max_suggestions`` distinct entries
at or above it, best first); otherwise "none". Ties are broken by entry order in the KB,
so decisions are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from kb.model import KnowledgeBase
from kb.normalize import Normalizer

FUZZY_WEIGHT = 0.35
QUERY_BETA = 2.0
EXPLAIN_TOP = 5  # candidates kept in a decision for explainability

Outcome = Literal["answer", "suggest", "none"]


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on the 0..100 score scale (tuned on tests/data/kb_cases.jsonl)."""

    answer: float = 55.0
    suggest: float = 38.0
    margin: float = 8.0
    max_suggestions: int = 3


@dataclass(frozen=True)
class Scored:
    entry_id: str
    score: float


@dataclass(frozen=True)
class KbDecision:
    """What the matcher decided, with the top candidates to explain why."""

    outcome: Outcome
    entry_id: str | None
    score: float
    suggestions: tuple[Scored, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "entry_id": self.entry_id,
            "score": self.score,
            "suggestions": [{"entry_id": s.entry_id, "score": s.score} for s in self.suggestions],
        }


NONE = KbDecision("none", None, 0.0, ())


def decide(ranked: Sequence[Scored], thresholds: Thresholds) -> KbDecision:
    """The decision for entries ranked best first (one Scored per distinct entry)."""
    if not ranked or ranked[0].score <= 0.0:
        return NONE
    best = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    if best.score >= thresholds.answer and best.score - runner_up >= thresholds.margin:
        return KbDecision("answer", best.entry_id, best.score, tuple(ranked[:EXPLAIN_TOP]))
    if best.score >= thresholds.suggest:
        picks = tuple(s for s in ranked if s.score >= thresholds.suggest)
        return KbDecision("suggest", None, best.score, picks[: max(thresholds.max_suggestions, 1)])
    return KbDecision("none", None, best.score, tuple(ranked[:EXPLAIN_TOP]))


class Matcher:
    """Scores a text against every entry of a knowledge base; pure and synchronous."""

    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds = Thresholds()) -> None:
        self.kb = kb
        self.thresholds = thresholds
        phrasings = [
            (index, text)
            for index, entry in enumerate(kb.entries)
            for text in (*entry.questions, *entry.titles.values())
        ]
        self.normalizer = Normalizer((text for _, text in phrasings), kb.synonyms)
        self._ids = [entry.id for entry in kb.entries]
        owners: list[int] = []
        self._sets: list[frozenset[str]] = []
        self._choices: list[str] = []
        seen: set[tuple[int, frozenset[str]]] = set()
        for index, text in phrasings:
            tokens = self.normalizer.tokens(text, repair=False)
            if not tokens or (index, frozenset(tokens)) in seen:
                continue
            seen.add((index, frozenset(tokens)))
            owners.append(index)
            self._sets.append(frozenset(tokens))
            self._choices.append(" ".join(tokens))
        self._owners: npt.NDArray[np.intp] = np.array(owners, dtype=np.intp)
        entries_with: dict[str, set[int]] = {}
        for index, token_set in zip(owners, self._sets, strict=True):
            for token in token_set:
                entries_with.setdefault(token, set()).add(index)
        n = len(kb.entries)
        self._idf = {t: math.log((n + 1) / (len(e) + 1)) + 1.0 for t, e in entries_with.items()}
        self._unknown_idf = math.log(n + 1) + 1.0
        self._weights = np.array([sum(self._idf[t] for t in s) for s in self._sets])
        self._postings: dict[str, list[int]] = {}
        for row, token_set in enumerate(self._sets):
            for token in token_set:
                self._postings.setdefault(token, []).append(row)

    def idf(self, token: str) -> float:
        return self._idf.get(token, self._unknown_idf)

    def _phrasing_scores(self, tokens: tuple[str, ...]) -> npt.NDArray[np.float64]:
        """THE scoring function: one 0..100 score per phrasing (see the module docstring)."""
        query = " ".join(tokens)
        fuzzy = process.cdist(
            [query], self._choices, scorer=fuzz.token_set_ratio, dtype=np.float32
        )[0]
        shared = np.zeros(len(self._choices))
        distinct = set(tokens)
        for token in distinct:
            for row in self._postings.get(token, ()):
                shared[row] += self._idf[token]
        query_weight = sum(self.idf(t) for t in distinct)
        recall = shared / query_weight
        precision = shared / self._weights
        beta2 = QUERY_BETA**2
        denominator = beta2 * precision + recall
        overlap = np.divide(
            (1 + beta2) * precision * recall,
            denominator,
            out=np.zeros_like(shared),
            where=denominator > 0,
        )
        scores: npt.NDArray[np.float64] = (
            FUZZY_WEIGHT * fuzzy + (1 - FUZZY_WEIGHT) * 100.0 * overlap
        )
        return scores

    def rank(self, text: str) -> list[Scored]:
        """Every entry with its score, best first (ties: KB order)."""
        tokens = self.normalizer.tokens(text)
        if not tokens or not self._choices:
            return []
        per_phrasing = self._phrasing_scores(tokens)
        per_entry = np.zeros(len(self._ids))
        np.maximum.at(per_entry, self._owners, per_phrasing)
        order = sorted(range(len(self._ids)), key=lambda i: (-per_entry[i], i))
        return [Scored(self._ids[i], round(float(per_entry[i]), 2)) for i in order]

    def match(self, text: str) -> KbDecision:
        return decide(self.rank(text), self.thresholds)
