"""Which of the languages Escala speaks a customer's message is written in, when the
channel cannot say (SMS and WhatsApp carry no language; Telegram sends the app's).

A message names its language through its small words: "qual o horário de vocês" holds
"qual", "o" and "voces", which English never writes; "I can't log in to my account"
holds "i", "can", "in", "to" and "my", which Portuguese never writes. The markers are
the stop-word lists of :mod:`kb.normalize`, less the words both languages write ("a",
"me", "so", "no", "ok"...) or that a folded English text yields in Portuguese form ("e"
from "e-mail"), plus the negations and question words each keeps.

A guess needs :data:`MIN_MARKERS` markers of one language and at least
:data:`DOMINANCE` times as many as of the other: "ok", "boleto", "2" or "oi, my boleto"
say nothing, and the conversation keeps the language it had. Measured: no Portuguese
message of the repository's labelled turn cases is taken for English
(``tests/unit/test_language.py``), nor any English text of BANKING77 and CLINC150 train
for Portuguese (README, "SMS and WhatsApp").
"""

from __future__ import annotations

from kb.normalize import EN_STOP_WORDS, PT_STOP_WORDS, fold


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Written in both languages, or what folding makes of the other's words.
_SHARED = _words("a e d s t m me se so no na pro per ate ha ai la es ok okay ne tipo")
_PT_MARKERS = (PT_STOP_WORDS - EN_STOP_WORDS - _SHARED) | _words(
    "o nao nunca nem sem onde quando porque oque pq"
)
_EN_MARKERS = (EN_STOP_WORDS - PT_STOP_WORDS - _SHARED) | _words(
    "i not never without where when because"
)
#: Markers a guess needs at least.
MIN_MARKERS = 2
#: How many times more markers of one language than of the other a guess needs.
DOMINANCE = 3


#: Greetings, thanks and goodbyes only one language writes: on a first message they
#: count too (:func:`guess_locale`).
_PT_COURTESY = _words("oi ola obrigado obrigada valeu vlw tchau sim bom boa dia tarde noite")
_EN_COURTESY = _words("hi hello hey thanks thank please bye goodbye yes sorry morning")


def guess_locale(text: str, *, first: bool = False) -> str | None:
    """``"pt-BR"`` or ``"en"`` when ``text`` clearly says which; ``None`` otherwise.

    ``first``: the customer's first message, with no language to keep, where the
    default language is only a guess too: then one marker or word of courtesy of one
    language, and none of the other, is enough ("the app keeps crashing", "thanks,
    bye")."""
    words = fold(text).split()
    portuguese = sum(w in _PT_MARKERS for w in words)
    english = sum(w in _EN_MARKERS for w in words)
    if portuguese >= MIN_MARKERS and portuguese >= DOMINANCE * english:
        return "pt-BR"
    if english >= MIN_MARKERS and english >= DOMINANCE * portuguese:
        return "en"
    if not first:
        return None
    portuguese += sum(w in _PT_COURTESY for w in words)
    english += sum(w in _EN_COURTESY for w in words)
    if portuguese and not english:
        return "pt-BR"
    if english and not portuguese:
        return "en"
    return None
