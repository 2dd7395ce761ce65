"""The decision's shortcuts (issue 18) decide exactly what the work they skip would:
a rule's keywords ruled out at once, the phrases scored in one call, the scores no
caller reads left out, the KB's wordless phrasings skipped, the postings gathered."""

from __future__ import annotations

import copy
import unicodedata
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
from kb.normalize import _GLUED, _NEGATED, _expand, expand_negations, fold, strip_accents
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


def array_path_only(matcher: Matcher) -> Matcher:
    """``matcher`` with :meth:`Matcher._covered_few` declined: every candidate is found
    by the array path, as before the plain-Python one."""
    twin = copy.copy(matcher)
    twin._covered_few = lambda query, at_least: None  # type: ignore[method-assign]
    return twin


@settings(max_examples=300, deadline=None)
@given(texts(), st.sampled_from([0.0, 50.0, 75.0, 90.0]))
def test_few_candidates_found_in_python_score_as_the_arrays_do(text: str, at_least: float) -> None:
    triage = shipped_triage()
    for matcher in (triage._human._matcher, triage._examples._matcher, shipped_matcher()):
        assert matcher is not None
        assert matcher.nearest(text, at_least) == array_path_only(matcher).nearest(text, at_least)
        query = dict.fromkeys(set(matcher.normalizer.tokens(text)), 1.0)
        few = matcher._covered_few(query, at_least)
        if few is None:
            continue  # more than SHORTLIST phrasings share a word: the arrays' case
        rows, covered, by_count = matcher._covered(query)
        reach = 100.0 * (FUZZY_WEIGHT + (1 - FUZZY_WEIGHT) * covered) >= at_least - 1.0
        if at_least > 0:
            rows, covered, by_count = rows[reach], covered[reach], by_count[reach]
        # the same floats, not only the same rounded scores
        assert [a.tolist() for a in few] == [rows.tolist(), covered.tolist(), by_count.tolist()]


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


#: Contractions with and without their apostrophe, near misses, and what a word may be
#: glued to: where the two patterns' matches start and end.
CONTRACTION_WORDS = (
    "don't WON’T cant Isnt wont shouldnt ain't n't nt NT ant atendimento não ca t _ é 2"
)
CONTRACTION_PARTS = st.sampled_from([*CONTRACTION_WORDS.split(" "), "'", "’", " ", ","])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(CONTRACTION_PARTS, st.text(max_size=3)), max_size=12))
def test_expanding_negations_after_a_quick_search_is_the_two_patterns(parts: list[str]) -> None:
    text = "".join(parts)
    assert expand_negations(text) == _GLUED.sub(_expand, _NEGATED.sub(_expand, text))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="aAeEçÇãÃéÉôÔ ?!.,'’-1ñÑßİſﬁ", max_size=20)))
def test_stripping_accents_skips_no_work_an_ascii_text_needs(text: str) -> None:
    strip_accents.cache_clear()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    assert strip_accents(text) == "".join(c for c in decomposed if not unicodedata.combining(c))
