"""Match a customer's text to knowledge base entries: answer, suggest, or neither.

Every phrasing of an entry (its questions and titles) is normalized once, when the
Matcher is built (see ``kb.normalize``). A text is scored in three steps.

1. **Candidates** (``kb.vectors``): two sparse indexes over the phrasings give, for every
   phrasing at once, the IDF word ``overlap`` below and the cosine of character-trigram
   TF-IDF vectors (typo tolerant: "pasword" shares most trigrams with "password"). Their
   mean picks the ``SHORTLIST`` best phrasings; the cost follows the postings touched,
   not the KB size, so 100k phrasings stay fast (issue 6).
2. **Phrasing score** (``_phrasing_scores``, the one scoring function, 0..100), for the
   shortlist only::

       score = FUZZY_WEIGHT * fuzzy + (1 - FUZZY_WEIGHT) * 100 * overlap

   * ``fuzzy``: rapidfuzz ``token_set_ratio`` between the normalized strings (character
     level: it forgives typos the word-level repair missed and partial stems);
   * ``overlap``: IDF-weighted word overlap, an F-measure of how much of the *text* the
     phrasing explains (weighted ``QUERY_BETA`` times more) and how much of the phrasing
     the text covers. IDF counts entries, not phrasings, so a word every entry uses
     ("conta", "account") weighs little and a word only one entry uses ("boleto") weighs a
     lot. A word the KB has never seen weighs the most: an off-topic text is mostly
     unexplained.
3. **Entry score** (``_entry_scores``): the entry's best phrasing score. When entries
   have many phrasings (median at least ``VOTE_MIN_PHRASINGS``: a real neighbourhood to
   vote in), it becomes a k-nearest-neighbour confidence on the same 0..100 scale::

       base = (1 - CENTROID_WEIGHT) * best + CENTROID_WEIGHT * 100 * centroid
       confidence = 100 * (base / 100) ** BASE_EXPONENT * share

   * ``share``: the entry's share of a soft vote among the ``VOTE_NEIGHBOURS`` best
     phrasings, each weighing ``exp((score - top) / VOTE_TEMPERATURE)``: near 1 when the
     close phrasings all belong to one entry, about 1/2 when two entries' are as close;
   * ``centroid``: cosine of the text's IDF word vector with the entry's word centroid
     (the sum of its phrasings' unit vectors): how well the entry *as a whole* covers
     the words, steadier than one lucky phrasing;
   * the exponent calibrates the scale: a middling base costs less than a split vote, so
     one set of thresholds means "plausible and unambiguous" for both kinds of KB and a
     large KB answers about two thirds of in-scope texts directly.

   With a handful or a few dozen phrasings per entry (the shipped KB: about 20, split
   between two languages) one extra near phrasing would decide the vote, so the score
   stays the best phrasing's and the margin rule judges ambiguity. The voting
   parameters were tuned on KBs of about 100 phrasings per entry (BANKING77 train
   folds, CLINC150 train); the bar was 10 until the shipped KB grew to a median of 19
   (2026-12-01), and voting then cost it answers on the pt-BR development cases
   (fused KB topic right 37/37 -> 32/37 on ``dev``), so it is 40 now, twice the
   neighbours that vote.

A voting KB also keeps its stop words (``kb.normalize``): IDF learnt from many phrasings
weighs "the" down by itself, and listed stop words ("why", "can", "still", "how") often
carry the intent. A small KB's IDF is too thin for that, so it drops them.

The voting parameters and the stop-word choice were tuned by 5-fold cross-validation on
BANKING77 ``train`` and on CLINC150 ``val`` + ``oos_val``, never on a test split. Against
the previous matcher (stop words dropped, best score times the share of a vote among all
100 shortlisted phrasings) they lift top-1 from 85.7% to 88.2% (BANKING77 folds) and
83.7% to 89.3% (CLINC150 val), and the precision of the 65% most confident answers from
96.5% to 98.4% and 94.6% to 98.4%.

The decision (``decide``): "answer" when the best entry reaches ``Thresholds.answer`` and
beats the runner-up entry by ``Thresholds.margin``; "suggest" when it reaches
``Thresholds.suggest`` (up to ``max_suggestions`` distinct entries at or above it, best
first); otherwise "none". Ties are broken by entry order in the KB, so decisions are
deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from kb.lowinfo import is_low_information
from kb.model import KnowledgeBase
from kb.normalize import STOP_WORDS, Normalizer, fold
from kb.vectors import SparseIndex, char_ngrams, tfidf

FUZZY_WEIGHT = 0.35
QUERY_BETA = 2.0
VOTE_TEMPERATURE = 8.0  # score points; a phrasing 8 points below the best votes 1/e as much
VOTE_MIN_PHRASINGS = 40  # median phrasings per entry from which entries vote
VOTE_NEIGHBOURS = 20  # the best-scored phrasings that vote
CENTROID_WEIGHT = 0.4  # share of the entry's word centroid cosine in a voting entry's base
BASE_EXPONENT = 0.6  # voting confidence = 100 * (base / 100) ** BASE_EXPONENT * vote share
SHORTLIST = 100  # phrasings re-scored with rapidfuzz after the sparse candidate step
EXPLAIN_TOP = 5  # candidates kept in a decision for explainability
#: Points the character-level score of :meth:`Matcher.nearest` may exceed the share of
#: the phrasing's words the text covers.
CONTAINMENT_SLACK = 10.0
#: How nearly (rapidfuzz ``partial_ratio``) a text must hold a phrasing of one
#: meaningful word, as written, for :meth:`Matcher.nearest` to count it at all.
THIN_CUTOFF = 90.0
#: Negation stems (``kb.normalize`` keeps them out of the stop words).
NEGATIONS = frozenset({"nao", "not", "no", "nem", "nunca", "never", "sem", "without"})

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


@dataclass(frozen=True)
class Nearest:
    """An entry, the phrasing of it a text comes closest to, and how close (0..100)."""

    entry_id: str
    phrasing: str
    score: float


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


def decision_reads(thresholds: Thresholds) -> int:
    """How many of the best-ranked entries :func:`decide` can read: the runner-up, the
    ``EXPLAIN_TOP`` explained and the suggestions (a prefix: ranked best first)."""
    return max(2, EXPLAIN_TOP, thresholds.max_suggestions)


def votes_for(kb: KnowledgeBase) -> bool:
    """Whether the KB's entries have enough phrasings (median at least
    ``VOTE_MIN_PHRASINGS``) for a neighbourhood vote (see module doc)."""
    return bool(
        kb.entries
        and np.median([len(e.questions) + len(e.titles) for e in kb.entries]) >= VOTE_MIN_PHRASINGS
    )


class Matcher:
    """Scores a text against every entry of a knowledge base; pure and synchronous."""

    #: What ``escala check`` says runs (:class:`kb.fused.FusedMatcher` says more).
    kind = "lexical"

    def __init__(
        self,
        kb: KnowledgeBase,
        thresholds: Thresholds = Thresholds(),
        *,
        votes: bool | None = None,
        stop_words: frozenset[str] | None = None,
        real_words: Iterable[str] = (),
    ) -> None:
        """``votes``: whether entries vote (see module doc); ``None`` decides from the
        KB's size. Triage examples pass ``False``: many short phrasings per rule, each a
        situation of its own, where stop words only blur containment. ``stop_words``:
        the words dropped when entries do not vote (default ``STOP_WORDS``);
        ``real_words``: texts whose words are never taken for typos
        (:class:`kb.normalize.Normalizer`)."""
        self.kb = kb
        self.thresholds = thresholds
        phrasings = [
            (index, text)
            for index, entry in enumerate(kb.entries)
            for text in (*entry.questions, *entry.titles.values())
        ]
        #: Whether entries have enough phrasings for a neighbourhood vote (see module doc).
        self.votes = votes_for(kb) if votes is None else votes
        # A voting KB keeps every word: its IDF, learnt from many phrasings, tells "the"
        # from "boleto", and hand-listed stop words ("why", "can", "still") often carry
        # the intent. A small KB's IDF is too thin for that, so it drops the stop words.
        self.normalizer = Normalizer(
            (text for _, text in phrasings),
            kb.synonyms,
            frozenset() if self.votes else (STOP_WORDS if stop_words is None else stop_words),
            real_words,
        )
        self._ids = [entry.id for entry in kb.entries]
        owners: list[int] = []
        tokens_of: list[tuple[str, ...]] = []
        self._sets: list[frozenset[str]] = []
        self._choices: list[str] = []
        self._texts: list[str] = []  # each row's phrasing as written, for explanations
        #: A row of one meaningful word is held as written (:meth:`nearest`), so every
        #: way its entry writes that word counts, not only the first ("vou processar"
        #: and "vou processar vocês" are one row).
        self._also_written: dict[int, list[str]] = {}
        seen: dict[tuple[int, frozenset[str]], int] = {}
        for index, text in phrasings:
            tokens = self.normalizer.tokens(text, repair=False)
            token_set = frozenset(tokens)  # one object, shared by `seen` and `_sets`
            if not tokens:
                continue
            row = seen.get((index, token_set))
            if row is not None:
                if len(token_set) < 2:
                    self._also_written.setdefault(row, []).append(text)
                continue
            seen[(index, token_set)] = len(self._texts)
            owners.append(index)
            tokens_of.append(tokens)
            self._sets.append(token_set)
            self._choices.append(" ".join(tokens))
            self._texts.append(text)
        # Build-only state goes before the indexes are built, so it is not part of the
        # build's peak (issue 18, part 7).
        del seen, phrasings
        self._owners: npt.NDArray[np.intp] = np.array(owners, dtype=np.intp)
        entries_with: dict[str, set[int]] = {}
        for index, token_set in zip(owners, self._sets, strict=True):
            for token in token_set:
                entries_with.setdefault(token, set()).add(index)
        n = len(kb.entries)
        self._idf = {t: math.log((n + 1) / (len(e) + 1)) + 1.0 for t, e in entries_with.items()}
        del entries_with, owners
        self._unknown_idf = math.log(n + 1) + 1.0
        self._weights = np.array([sum(self._idf[t] for t in s) for s in self._sets])
        # The indexes are fed row by row (generators): no list of per-row dicts is ever
        # held, so the build peaks near what it keeps (issue 18, part 7).
        self._words = SparseIndex({t: self._idf[t] for t in s} for s in self._sets)
        rows = len(tokens_of)
        in_rows: dict[str, int] = {}
        for tokens in tokens_of:  # the n-grams are counted twice rather than all held
            for gram in char_ngrams(tokens):
                in_rows[gram] = in_rows.get(gram, 0) + 1
        self._gram_idf = {g: math.log((rows + 1) / (k + 1)) + 1.0 for g, k in in_rows.items()}
        del in_rows
        self._unknown_gram_idf = math.log(rows + 1) + 1.0
        self._grams = SparseIndex(
            tfidf(char_ngrams(tokens), self._gram_idf, self._unknown_gram_idf)
            for tokens in tokens_of
        )
        self._centroids = SparseIndex(self._word_centroids(n) if self.votes else [])
        self._word_counts: SparseIndex | None = None
        self._sizes: npt.NDArray[np.float64] = np.zeros(0)
        #: Per word, the phrasings holding it, ascending (:meth:`_covered_few`).
        self._postings: dict[str, list[int]] | None = None
        self._row_weights: list[float] = []

    def _word_centroids(self, entries: int) -> list[dict[str, float]]:
        """Per entry: the sum of its phrasings' unit IDF word vectors, made a unit vector."""
        sums: list[dict[str, float]] = [{} for _ in range(entries)]
        for owner, token_set in zip(self._owners, self._sets, strict=True):
            norm = math.sqrt(sum(self._idf[t] ** 2 for t in token_set))
            centroid = sums[owner]
            for token in token_set:
                centroid[token] = centroid.get(token, 0.0) + self._idf[token] / norm
        out: list[dict[str, float]] = []
        for centroid in sums:
            norm = math.sqrt(sum(w * w for w in centroid.values())) or 1.0
            out.append({t: w / norm for t, w in centroid.items()})
        return out

    def _centroid_cosines(self, tokens: tuple[str, ...]) -> npt.NDArray[np.float64]:
        """Per entry: cosine of the text's IDF word vector with the entry's word centroid."""
        query = {t: self.idf(t) for t in set(tokens)}
        norm = math.sqrt(sum(w * w for w in query.values()))
        return self._centroids.dot({t: w / norm for t, w in query.items()})

    def idf(self, token: str) -> float:
        return self._idf.get(token, self._unknown_idf)

    def _overlap(self, tokens: tuple[str, ...]) -> npt.NDArray[np.float64]:
        """The IDF word-overlap F-measure of the text with every phrasing (0..1)."""
        distinct = set(tokens)
        shared = self._words.dot(dict.fromkeys(distinct, 1.0))
        query_weight = sum(self.idf(t) for t in distinct)
        recall = shared / query_weight
        precision = shared / self._weights
        beta2 = QUERY_BETA**2
        denominator = beta2 * precision + recall
        overlap: npt.NDArray[np.float64] = np.divide(
            (1 + beta2) * precision * recall,
            denominator,
            out=np.zeros_like(shared),
            where=denominator > 0,
        )
        return overlap

    def _phrasing_scores(
        self, tokens: tuple[str, ...]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """THE scoring function: the shortlisted phrasings and their 0..100 scores."""
        rows, overlap = self._shortlist(tokens)
        return rows, self._scores(tokens, rows, overlap)

    def _shortlist(
        self, tokens: tuple[str, ...]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The shortlisted phrasings (candidates step), and every phrasing's overlap."""
        overlap = self._overlap(tokens)
        grams = self._grams.dot(tfidf(char_ngrams(tokens), self._gram_idf, self._unknown_gram_idf))
        candidate = overlap + grams
        rows = np.flatnonzero(candidate > 0)
        if len(rows) > SHORTLIST:
            rows = rows[np.argpartition(-candidate[rows], SHORTLIST - 1)[:SHORTLIST]]
        return rows, overlap

    def _scores(
        self,
        tokens: tuple[str, ...],
        rows: npt.NDArray[np.intp],
        overlap: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """The 0..100 scores of ``rows`` (see the module doc), each on its own."""
        choices = self._choices
        fuzzy = process.cdist(
            [" ".join(tokens)],
            [choices[row] for row in rows.tolist()],
            scorer=fuzz.token_set_ratio,
            dtype=np.float32,
        )[0]
        scores: npt.NDArray[np.float64] = (
            FUZZY_WEIGHT * fuzzy + (1 - FUZZY_WEIGHT) * 100.0 * overlap[rows]
        )
        return scores

    def _best_entries(self, text: str, reads: int) -> npt.NDArray[np.float64] | None:
        """:meth:`entry_scores` for a KB that does not vote, exact for the ``reads``
        best entries only (:meth:`decision` reads no more; the others may score less).

        A shortlisted phrasing that shares no word with the text (only character
        trigrams) scores at most ``FUZZY_WEIGHT * 100``: those are scored only when
        fewer than ``reads`` entries already score more (issue 18: they are most of the
        shortlist for a short question, and rapidfuzz's share of the match)."""
        tokens = self.normalizer.tokens(text)
        if not tokens or not self._choices:
            return None
        rows, overlap = self._shortlist(tokens)
        shares = overlap[rows] > 0
        if shares.all() or not shares.any() or len(self._ids) < reads:
            return self._entry_scores(tokens, rows, self._scores(tokens, rows, overlap))
        first = rows[shares]
        best = self._entry_scores(tokens, first, self._scores(tokens, first, overlap))
        # a point of slack over the ceiling for float rounding
        if float(np.partition(best, -reads)[-reads]) > 100.0 * FUZZY_WEIGHT + 1.0:
            return best
        rest = rows[~shares]
        scored: npt.NDArray[np.float64] = np.maximum(
            best, self._entry_scores(tokens, rest, self._scores(tokens, rest, overlap))
        )
        return scored

    def _entry_scores(
        self,
        tokens: tuple[str, ...],
        rows: npt.NDArray[np.intp],
        scores: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Per entry: its best phrasing's score, or the voting confidence when the KB votes."""
        best = np.zeros(len(self._ids))
        if not len(rows):
            return best
        owners = self._owners[rows]
        np.maximum.at(best, owners, scores)
        if not self.votes:
            return best
        if len(rows) > VOTE_NEIGHBOURS:
            nearest = np.argpartition(-scores, VOTE_NEIGHBOURS - 1)[:VOTE_NEIGHBOURS]
            owners, scores = owners[nearest], scores[nearest]
        votes = np.bincount(
            owners,
            weights=np.exp((scores - scores.max()) / VOTE_TEMPERATURE),
            minlength=len(self._ids),
        )
        base = (1 - CENTROID_WEIGHT) * best + CENTROID_WEIGHT * 100.0 * self._centroid_cosines(
            tokens
        )
        confidence: npt.NDArray[np.float64] = (
            100.0 * (base / 100.0) ** BASE_EXPONENT * votes / votes.sum()
        )
        return confidence

    def entry_scores(self, text: str) -> npt.NDArray[np.float64] | None:
        """Per entry (KB order), its 0..100 score for ``text``; ``None`` when the text
        has no words the matcher reads. :mod:`kb.fused` fuses these with embeddings."""
        tokens = self.normalizer.tokens(text)
        if not tokens or not self._choices:
            return None
        return self._entry_scores(tokens, *self._phrasing_scores(tokens))

    def ranked(self, per_entry: npt.NDArray[np.float64], limit: int | None = None) -> list[Scored]:
        """Entries with their scores, best first (ties: KB order); the first ``limit``
        only, when given (a decision reads a few: building every entry's ``Scored`` was a
        tenth of a turn's CPU, issue 18)."""
        order = np.lexsort((np.arange(len(self._ids)), -per_entry))
        if limit is not None:
            order = order[:limit]
        return [Scored(self._ids[i], round(float(per_entry[i]), 2)) for i in order]

    def per_entry(self, text: str) -> npt.NDArray[np.float64] | None:
        """Per entry (KB order), the score :meth:`rank` orders; ``None``: no entry
        scores (:class:`kb.fused.FusedMatcher` fuses embeddings in here)."""
        return self.entry_scores(text)

    def rank(self, text: str) -> list[Scored]:
        """Every entry with its score, best first (ties: KB order)."""
        per_entry = self.per_entry(text)
        return [] if per_entry is None else self.ranked(per_entry)

    def match(self, text: str) -> KbDecision:
        """The decision for ``text``; a low-information text ("no", "?", "ok") is never
        answered nor offered choices, whatever it scores (``kb.lowinfo``, issue 12)."""
        if is_low_information(text):
            return KbDecision("none", None, 0.0, ())
        return self.decision(text)

    def decision(self, text: str) -> KbDecision:
        """The decision on the scores alone, after :meth:`match`'s low-information check
        (:class:`kb.fused.FusedMatcher` decides here with the words' answer too)."""
        reads = decision_reads(self.thresholds)
        # A KB that votes needs every phrasing's score for the vote; one that does not
        # reads its best few entries only (:class:`kb.fused.FusedMatcher` overrides
        # this method: it fuses every entry's score).
        per_entry = self.per_entry(text) if self.votes else self._best_entries(text, reads)
        if per_entry is None:
            return decide([], self.thresholds)
        return decide(self.ranked(per_entry, reads), self.thresholds)

    def _covered(
        self, query: dict[str, float]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The phrasings that share a word with ``query`` (its words, each weighing 1),
        ascending, with their ``covered`` and their plain share of words covered
        (:meth:`nearest`), for every phrasing at once."""
        shared = self._words.dot(query)
        by_weight = np.divide(
            shared, self._weights, out=np.zeros_like(shared), where=self._weights > 0
        )
        if self._word_counts is None:  # built on first use: answering never needs it
            self._word_counts = SparseIndex(dict.fromkeys(s, 1.0) for s in self._sets)
            self._sizes = np.array([len(s) for s in self._sets], dtype=np.float64)
        by_count = self._word_counts.dot(query) / np.maximum(self._sizes, 1.0)
        covered = (by_weight + by_count) / 2
        rows = np.flatnonzero(covered > 0)
        return rows, covered[rows], by_count[rows]

    def _covered_few(
        self, query: dict[str, float], at_least: float
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
        """:meth:`_covered` for a query whose words few phrasings hold, in plain Python
        over those phrasings only, keeping only those that can reach ``at_least``;
        ``None`` when more than ``SHORTLIST`` share a word (then :meth:`_covered`).

        For a small index (the requests for a human: 44 phrasings) the array
        operations' fixed costs were most of a call, and most calls keep nothing
        (issue 18). The same sums in the same order as :meth:`SparseIndex.dot` (each
        phrasing's shared weight adds the query's words in the query's order): the same
        floats. Dropping the phrasings that cannot reach ``at_least`` before the
        shortlist keeps the same ones, as no more than ``SHORTLIST`` are in play."""
        if self._postings is None:  # built on first use: answering never needs it
            postings: dict[str, list[int]] = {}
            for row, token_set in enumerate(self._sets):
                for token in token_set:
                    postings.setdefault(token, []).append(row)
            self._postings = postings
            self._row_weights = self._weights.tolist()
        postings = self._postings
        shared: dict[int, float] = {}
        counts: dict[int, int] = {}
        for token in query:
            holding = postings.get(token)
            if holding is None:
                continue
            weight = self._idf[token]  # the query weighs each word 1
            for row in holding:
                shared[row] = shared.get(row, 0.0) + weight
                counts[row] = counts.get(row, 0) + 1
        if len(shared) > SHORTLIST:
            return None
        weights, sets = self._row_weights, self._sets
        rows: list[int] = []
        covered: list[float] = []
        by_count: list[float] = []
        for row in sorted(shared):
            count = counts[row] / max(float(len(sets[row])), 1.0)
            share = (shared[row] / weights[row] + count) / 2
            if share > 0 and (
                at_least <= 0
                or 100.0 * (FUZZY_WEIGHT + (1 - FUZZY_WEIGHT) * share) >= at_least - 1.0
            ):
                rows.append(row)
                covered.append(share)
                by_count.append(count)
        return (
            np.array(rows, dtype=np.intp),
            np.array(covered, dtype=np.float64),
            np.array(by_count, dtype=np.float64),
        )

    def nearest(self, text: str, at_least: float = 0.0) -> list[Nearest]:
        """Per entry, the phrasing ``text`` *contains* best, best first (ties: KB order).
        ``at_least``: the caller reads no score below it, so the phrasings that cannot
        reach it are not scored (issue 18); an entry whose best is below it may then be
        missing, or come with a lower score.

        The containment score answers "does this message say one of these things?",
        where :meth:`rank` answers "is this message one of these questions?": the IDF
        overlap counts how much of the *phrasing* the text covers, so a long, rambling
        message that contains "invadiram minha conta" still scores high against it::

            score = FUZZY_WEIGHT * token_set_ratio + (1 - FUZZY_WEIGHT) * 100 * covered

        ``covered`` is the mean of the IDF-weighted and the plain share of the phrasing's
        words found in the text: in a short phrasing every word matters ("a integração
        *parou*"), so one rare word covered is not most of it. A phrasing with a negation
        ("não conecta", "will not install") is not contained in a text without one. A
        phrasing that comes down to one meaningful word ("vou processar vocês" is
        "processar") is too thin for that: any text with a word of the same stem would
        contain all of it ("o pedido está em processamento"), so it scores no more than
        how nearly the text holds it as written (rapidfuzz ``partial_ratio``), and
        nothing below ``THIN_CUTOFF`` ("vocês ligam para confirmar?" is not "liga pra
        mim").

        Same normalization, typo repair, IDF weights and rapidfuzz scorer as the
        answer score. Used by triage rules' ``examples`` (``bot.triage_examples``).
        """
        tokens = self.normalizer.tokens(text)
        if not tokens or not self._choices:
            return []
        distinct = set(tokens)
        if distinct.isdisjoint(self._idf):
            return []  # no word of any phrasing: nothing is covered (most texts, for a
            # small index like the requests for a human)
        query = dict.fromkeys(distinct, 1.0)
        found = self._covered_few(query, at_least)
        if found is None:
            rows, covered, by_count = self._covered(query)
        else:
            rows, covered, by_count = found
        if not len(rows):
            return []
        if len(rows) > SHORTLIST:
            top = np.argpartition(-covered, SHORTLIST - 1)[:SHORTLIST]
            rows, covered, by_count = rows[top], covered[top], by_count[top]
        if at_least > 0:
            # the score below is at most FUZZY_WEIGHT * 100 + (1 - FUZZY_WEIGHT) * 100 *
            # covered (a point of slack for float rounding)
            reach = 100.0 * (FUZZY_WEIGHT + (1 - FUZZY_WEIGHT) * covered) >= at_least - 1.0
            rows, covered, by_count = rows[reach], covered[reach], by_count[reach]
            if not len(rows):
                return []
        fuzzy = process.cdist(
            [" ".join(tokens)],
            [self._choices[row] for row in rows],
            scorer=fuzz.token_set_ratio,
            dtype=np.float32,
        )[0]
        # token_set_ratio is symmetric: a text that is a *part* of the phrasing ("troco
        # minha senha" of "alguém trocou minha senha") would score 100. Containment is
        # one-way, so the character-level score may not go much past the share of words
        # covered (it may forgive a typo the repair missed, never a missing word).
        ceiling = 100.0 * by_count + CONTAINMENT_SLACK
        fuzzy = np.minimum(fuzzy, ceiling)
        scores = FUZZY_WEIGHT * fuzzy + (1 - FUZZY_WEIGHT) * 100.0 * covered
        if not NEGATIONS & set(tokens):
            # "the app will not install" is a problem; "how do I install the app" is not
            negated = np.array([bool(NEGATIONS & self._sets[row]) for row in rows], dtype=bool)
            scores = np.where(negated, 0.0, scores)
        thin = [i for i, row in enumerate(rows) if len(self._sets[row]) < 2]
        written: dict[int, str] = {}  # a thin row's form the text holds best
        if thin:
            folded = fold(text)
            for i in thin:
                kept = int(rows[i])
                forms = (self._texts[kept], *self._also_written.get(kept, ()))
                held, form = max(
                    ((fuzz.partial_ratio(fold(f), folded), f) for f in forms),
                    key=lambda pair: pair[0],
                )
                written[kept] = form
                scores[i] = min(float(scores[i]), held) if held >= THIN_CUTOFF else 0.0
        best: dict[int, tuple[float, int]] = {}
        for row, score in zip(rows, scores, strict=True):
            owner = int(self._owners[row])
            if owner not in best or score > best[owner][0]:
                best[owner] = (float(score), int(row))
        ordered = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
        return [
            Nearest(self._ids[owner], written.get(row, self._texts[row]), round(score, 2))
            for owner, (score, row) in ordered
        ]
