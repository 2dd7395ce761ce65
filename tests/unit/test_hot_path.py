"""The decision's shortcuts (issue 18) decide exactly what the work they skip would:
a rule's keywords ruled out at once, the phrases scored in one call, the scores no
caller reads left out, the KB's wordless phrasings skipped, the postings gathered."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.hours import BusinessHours
from bot.settings import PACKAGED_ROUTING, default_settings
from bot.triage import Triage, load_triage
from bot.triage_text import TextForms
from kb.loader import default_kb_path, load_kb
from kb.matcher import FUZZY_WEIGHT, Matcher, decide, decision_reads
from kb.normalize import fold
from kb.vectors import SparseIndex, Vector


@cache
def shipped_triage() -> Triage:
    return load_triage(PACKAGED_ROUTING, default_settings().tiers, BusinessHours())


@cache
def shipped_matcher() -> Matcher:
    return Matcher(load_kb([default_kb_path()]))


@cache
def words() -> list[str]:
    """The rules' keyword words, the KB's words, typos of some, and small words."""
    keyword_words = sorted(
        {w for rule in shipped_triage().rules for k in rule.when.keywords for w in k.words}
    )
    kb = shipped_matcher().kb
    kb_words = sorted(
        {w for e in kb.entries for q in (*e.questions, *e.titles.values()) for w in fold(q).split()}
    )
    typos = [w[:-2] + w[-1] + w[-2] for w in keyword_words if len(w) >= 5]
    return [*keyword_words, *kb_words[::3], *typos, "o", "a", "de", "meu", "nao", "e", "ja"]


@cache
def phrases() -> list[str]:
    """The rules' keyword phrases and the KB's questions, folded."""
    keywords = [k.phrase for r in shipped_triage().rules for k in r.when.keywords]
    kb = shipped_matcher().kb
    return [*keywords, *(fold(q) for e in kb.entries for q in e.questions)]


def typo(word: str, at: int) -> str:
    """``word`` with two letters swapped (from ``at``), or as it is when too short."""
    i = at % max(len(word) - 1, 1)
    return word if len(word) < 3 else word[:i] + word[i + 1] + word[i] + word[i + 2 :]


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Words around, now and then, a keyword phrase or a KB question, some of its words
    with a typo or left out: texts near what the shortcuts must not get wrong."""
    text = draw(st.lists(st.sampled_from(words()), min_size=0, max_size=10))
    if draw(st.booleans()):
        phrase = draw(st.sampled_from(phrases())).split()
        kept = [
            typo(w, draw(st.integers(0, 20))) if draw(st.integers(0, 4)) == 0 else w
            for w in phrase
            if draw(st.integers(0, 5)) > 0
        ]
        at = draw(st.integers(0, len(text)))
        text[at:at] = kept
    return " ".join(text)


@settings(max_examples=500, deadline=None)
@given(texts())
def test_a_rule_whose_keywords_are_ruled_out_has_none_that_matches(text: str) -> None:
    triage = shipped_triage()
    indexed = TextForms.of(text, triage._vocabulary)
    plain = TextForms.of(text)  # each keyword asked on its own, as before
    for rule in triage.rules:
        found = [k.find(plain) for k in rule.when.keywords]
        assert [k.find(indexed) for k in rule.when.keywords] == found, rule.name
        if not rule.when._keywords_may_hit(indexed):
            assert found == [None] * len(found), rule.name


@settings(max_examples=200, deadline=None)
@given(texts(), st.sampled_from([50.0, 75.0, 90.0]))
def test_nearest_keeps_every_score_the_caller_reads(text: str, at_least: float) -> None:
    matcher = shipped_triage()._examples._matcher
    assert matcher is not None
    every = {n.entry_id: n for n in matcher.nearest(text) if n.score >= at_least}
    read = {n.entry_id: n for n in matcher.nearest(text, at_least) if n.score >= at_least}
    assert read == every


@settings(max_examples=500, deadline=None)
@given(texts(), st.sampled_from([2, 5, 8, 12]))
def test_skipping_wordless_phrasings_keeps_the_best_entries_read(text: str, reads: int) -> None:
    matcher = shipped_matcher()
    assert not matcher.votes
    every = matcher.per_entry(text)
    best = matcher._best_entries(text, reads)
    if every is None:
        assert best is None
        return
    assert best is not None
    assert matcher.ranked(best, reads) == matcher.ranked(every, reads)
    reads = decision_reads(matcher.thresholds)
    assert matcher.decision(text) == decide(matcher.ranked(every, reads), matcher.thresholds)


FEATURES = st.sampled_from([f"f{i}" for i in range(40)])
WEIGHTS = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_subnormal=False)


@given(
    st.lists(st.dictionaries(FEATURES, WEIGHTS, max_size=12), max_size=12),
    st.dictionaries(st.one_of(FEATURES, st.just("unknown")), WEIGHTS, min_size=9, max_size=30),
)
def test_a_many_feature_dot_product_is_the_postings_sum(rows: list[Vector], query: Vector) -> None:
    got = SparseIndex(iter(rows)).dot(query)  # more than 8 features: the gathered path
    want = [0.0] * len(rows)
    for feature, q in query.items():
        if q:
            for row, vector in enumerate(rows):
                if vector.get(feature, 0.0):
                    want[row] += vector[feature] * q
    assert got.dtype == np.float64
    assert got.tolist() == want


@settings(max_examples=300, deadline=None)
@given(texts())
def test_a_phrasing_sharing_no_word_scores_at_most_the_fuzzy_weight(text: str) -> None:
    matcher = shipped_matcher()
    tokens = matcher.normalizer.tokens(text)
    if not tokens:
        return
    rows, overlap = matcher._shortlist(tokens)
    scores = matcher._scores(tokens, rows, overlap)
    wordless = overlap[rows] == 0
    assert (scores[wordless] <= 100.0 * FUZZY_WEIGHT + 1e-3).all()
