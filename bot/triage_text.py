"""How routing rules read the customer's text: keywords and examples (issue 12).

Customers do not write the rule's words: "minha conta foi invadida" for "conta
invadida", "invadiram" for "invasão", "alguém entrou na minha conta sem permissão" for
none of them. Two text conditions tolerate that:

- ``keywords``: a word matches a word of the text with the same stem (``kb.normalize``:
  "invadida" ~ "invadiram", "hacked" ~ "hacking") or, from 5 letters, the same first
  letter and rapidfuzz ``ratio >= 85`` (typos; "error" never matches "terror"). A
  phrase matches a run of words of about its length with ``ratio >= 90``, or when each
  of its meaningful words matches a distinct word of the text within a window of the
  phrase's length plus ``WINDOW_SLACK`` (inserted words: "conta *foi* invadida"), in
  any order ("dados vazaram") unless the phrase has a small word inside it ("fora *do*
  ar" is an expression: its words must keep their order). Words under 5 letters match
  exactly or by stem.
- ``examples``: customer phrasings, matched with the knowledge base's own machinery
  (:meth:`kb.matcher.Matcher.nearest`: normalization, typo repair, stems, IDF weights,
  rapidfuzz). The condition holds when the text *contains* one of the rule's examples
  closely enough: its containment score reaches the rule's ``example_threshold``. The
  reason shown to agents names the nearest example and the score.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from kb.matcher import Matcher, Nearest, Thresholds
from kb.model import KbEntry, KnowledgeBase
from kb.normalize import STOP_WORDS, fold, stem

WORD_FUZZY_MIN_LETTERS = 5
WORD_CUTOFF = 85.0
PHRASE_CUTOFF = 90.0
#: Extra words a phrase's window may hold ("minha conta *foi* invadida").
WINDOW_SLACK = 2
#: Containment score (0..100) from which a rule's examples match, unless the rule says.
EXAMPLE_THRESHOLD = 75.0
#: Stop words of examples: who and how much carry the situation there ("alguém entrou
#: na minha conta", "nada funciona", "falar com alguém"), so they are kept.
KEPT_IN_EXAMPLES = (
    "alguem ninguem someone anyone nobody everyone everybody todos todo tudo nada nothing "
    "everything outro other"
)
EXAMPLE_STOP_WORDS = STOP_WORDS - frozenset(KEPT_IN_EXAMPLES.split())
#: Longest customer text triage reads; the engine already bounds messages.
MAX_TEXT = 4000


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class TextForms:
    """The customer's text in the forms the conditions compare against."""

    raw: str
    bare: str  # lowercase, accents stripped, punctuation kept (for regexes)
    folded: str
    words: tuple[str, ...]
    stems: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> TextForms:
        text = text[:MAX_TEXT]
        folded = fold(text)
        words = tuple(folded.split())
        return cls(text, strip_accents(text), folded, words, tuple(stem(w) for w in words))


def _word_hit(word: str, word_stem: str, candidate: str, candidate_stem: str) -> bool:
    if word == candidate:
        return True
    if len(word) >= 4 and len(candidate) >= 4 and word_stem == candidate_stem:
        return True
    return (
        sum(c.isalpha() for c in word) >= WORD_FUZZY_MIN_LETTERS
        and candidate[:1] == word[:1]
        and fuzz.ratio(word, candidate) >= WORD_CUTOFF
    )


@dataclass(frozen=True)
class Keyword:
    text: str  # as the admin wrote it, for explanations
    words: tuple[str, ...]  # folded

    def find(self, text: TextForms) -> str | None:
        """The words of ``text`` this keyword matches, or ``None``."""
        stems = tuple(stem(w) for w in self.words)
        if len(self.words) == 1:
            for candidate, candidate_stem in zip(text.words, text.stems, strict=True):
                if _word_hit(self.words[0], stems[0], candidate, candidate_stem):
                    return candidate
            return None
        phrase = " ".join(self.words)
        if fuzz.partial_ratio(phrase, text.folded) >= PHRASE_CUTOFF:
            n = len(self.words)
            for size in (n, n - 1, n + 1):
                for i in range(len(text.words) - size + 1):
                    window = " ".join(text.words[i : i + size])
                    if fuzz.ratio(phrase, window) >= PHRASE_CUTOFF:
                        return window
        return self._in_window(text, stems)

    def _in_window(self, text: TextForms, stems: tuple[str, ...]) -> str | None:
        """Each meaningful word of the phrase matched by a distinct word of the text, all
        within one window (see module doc); the window's words, or ``None``."""
        meaningful = [
            (w, s) for w, s in zip(self.words, stems, strict=True) if w not in STOP_WORDS
        ] or list(zip(self.words, stems, strict=True))
        ordered = len(meaningful) < len(self.words)  # a small word inside: an expression
        size = len(self.words) + WINDOW_SLACK
        for start in range(len(text.words)):
            window = range(start, min(start + size, len(text.words)))
            used: list[int] = []
            for word, word_stem in meaningful:
                low = used[-1] + 1 if ordered and used else start
                hit = next(
                    (
                        i
                        for i in window
                        if i >= low
                        and i not in used
                        and _word_hit(word, word_stem, text.words[i], text.stems[i])
                    ),
                    None,
                )
                if hit is None:
                    break
                used.append(hit)
            else:
                if start in used:  # the window starts on a match: report it once
                    return " ".join(text.words[min(used) : max(used) + 1])
        return None


@dataclass(frozen=True)
class ExampleHit:
    rule: str
    example: str
    score: float

    def explain(self) -> str:
        return f"example '{self.example}' (score {self.score:.0f})"


class Examples:
    """Every rule's ``examples`` in one index, so a text is scored against all of them
    once per decision (:meth:`kb.matcher.Matcher.nearest`)."""

    def __init__(self, examples: Mapping[str, Sequence[str]]) -> None:
        entries = tuple(
            KbEntry(id=name, category="routing", questions=tuple(texts), answers={}, titles={})
            for name, texts in examples.items()
            if texts
        )
        self._matcher = (
            Matcher(
                KnowledgeBase(entries), Thresholds(), votes=False, stop_words=EXAMPLE_STOP_WORDS
            )
            if entries
            else None
        )

    def nearest(self, text: str) -> dict[str, Nearest]:
        """Per rule with examples, its example nearest to ``text`` (rules with no shared
        word are absent)."""
        if self._matcher is None:
            return {}
        return {found.entry_id: found for found in self._matcher.nearest(text[:MAX_TEXT])}
