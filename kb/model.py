"""The knowledge base as data: entries with phrasings and localized answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FALLBACK_LOCALE = "en"


def language(locale: str) -> str:
    """The language of a locale: "pt" for "pt-BR"."""
    return locale.split("-", 1)[0].lower()


def _localized_key(texts: Mapping[str, str], locale: str) -> str | None:
    """The key of the text for ``locale``, else its language ("pt" for "pt-PT"), else
    "en", else any; ``None`` when there is no text."""
    if locale in texts:
        return locale
    for key in texts:
        if language(key) == language(locale):
            return key
    if FALLBACK_LOCALE in texts:
        return FALLBACK_LOCALE
    return next(iter(texts), None)


def _localized(texts: Mapping[str, str], locale: str) -> str:
    key = _localized_key(texts, locale)
    return "" if key is None else texts[key]


@dataclass(frozen=True)
class KbEntry:
    """One answerable intent: example phrasings, answers per locale, button titles.

    ``messages``: reviewed customer messages labelled with this entry, matched on
    meaning only (:func:`kb.fused.phrasings`; ``kb.loader`` says why)."""

    id: str
    category: str
    questions: tuple[str, ...]
    answers: Mapping[str, str]
    titles: Mapping[str, str]
    tier_hint: str | None = None
    tags: tuple[str, ...] = ()
    flow: str | None = None
    messages: tuple[str, ...] = ()

    def answer(self, locale: str) -> str:
        return _localized(self.answers, locale)

    def answer_locale(self, locale: str) -> str | None:
        """The locale of the answer :meth:`answer` gives for ``locale``: another
        language when the entry has no answer in the customer's (issue 19)."""
        return _localized_key(self.answers, locale)

    def title(self, locale: str) -> str:
        if not self.titles:
            return self.questions[0] if self.questions else self.id
        return _localized(self.titles, locale)


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries (ids unique) and the synonyms table (folded variant -> canonical)."""

    entries: tuple[KbEntry, ...]
    synonyms: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> KbEntry | None:
        by_id: dict[str, KbEntry] = self.__dict__["_by_id"]
        return by_id.get(entry_id)
