"""Text normalization shared by the KB phrasings and the customer's text.

The pipeline, in order (``Normalizer.tokens``):

1. ``fold``: lowercase, strip accents (NFKD), punctuation to spaces, collapse whitespace;
2. typo repair: a word the KB has never seen is replaced by the closest known word when
   they are very close (same first letter, one edit or transposition, two for long words)
   so "senah",
   "pasword", "etrega" become "senha", "password", "entrega";
3. synonyms: the longest variant (one or more words, compared by stem) becomes its
   canonical word(s), so "nota fiscal" and "NF-e" both become "invoice";
4. stop words dropped (pt-BR and en), but never negations ("não", "not", "no", "sem")
   nor the domain words the KB relies on; a KB with many phrasings per entry passes no
   stop words at all (see ``kb.matcher``: its IDF weighs them from data, and "why",
   "can", "still" often carry the intent);
5. a light pt/en suffix-stripping stemmer.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping

from rapidfuzz import process
from rapidfuzz.distance import OSA

TYPO_MIN_LENGTH = 4
TYPO_LONG_WORD = 8  # from this length on, two edits are forgiven; below it, one

_NON_WORD = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=1024)  # one message is read by the KB, triage, flows...
def strip_accents(text: str) -> str:
    """Lowercase, accents stripped, punctuation kept (routing regexes read this form)."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered  # NFKD leaves ASCII as it is, and no ASCII character combines
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1024)
def fold(text: str) -> str:
    """Lowercase, accents stripped, anything but letters and digits turned to one space."""
    return _NON_WORD.sub(" ", strip_accents(text)).strip()


_NEGATED = re.compile(r"\b(\w+?)n['’]t\b", re.IGNORECASE)
_IRREGULAR = {"wo": "will", "ca": "can", "ai": "is", "sha": "shall"}
#: The same, typed without the apostrophe ("doesnt", "cant", "wont").
_GLUED = re.compile(
    r"\b(do|does|did|is|are|was|were|ca|wo|have|has|had|should|could|would)nt\b", re.IGNORECASE
)


#: What a match of ``_GLUED`` holds: searched for first, as most texts hold none and the
#: search costs a tenth of the pattern's scan (issue 18: the patterns were ~5 µs of a
#: short message, ~20 µs of a long one, and every normalizer reads the message).
_GLUED_END = re.compile(r"nt\b", re.IGNORECASE)


def _expand(found: re.Match[str]) -> str:
    head = found.group(1)
    return f"{_IRREGULAR.get(head.lower(), head)} not"


def expand_negations(text: str) -> str:
    """English contractions keep their negation: "won't" is "will not", "doesn't" is
    "does not" (folding alone would leave "won" and a lone "t", and lose the "not")."""
    if "'" in text or "’" in text:  # a match of _NEGATED holds one
        text = _NEGATED.sub(_expand, text)
    if _GLUED_END.search(text) is not None:
        text = _GLUED.sub(_expand, text)
    return text


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Brazilian chat abbreviations (WhatsApp, Telegram), folded, and the words they stand
#: for: "n chega o codigo" is "nao chega o codigo" (a negation the matcher keeps), "q"
#: and "vc" are stop words like "que" and "voce". Only abbreviations no English or
#: Portuguese word is spelt as ("to" is English, "ta" is a stop word either way), nor an
#: English one is ("td" is a bank in CLINC150, "mt", "nd" and "cel" are abbreviations
#: there too): in BANKING77 train and CLINC150 train / val only five texts hold one of
#: these ("n" four times, "q" once), and a KB's phrasings are read the same way.
CHAT_ABBREVIATIONS = {
    "n": "nao",
    "q": "que",
    "pq": "porque",
    "tb": "tambem",
    "tbm": "tambem",
    "qnd": "quando",
    "qdo": "quando",
    "mto": "muito",
    "msg": "mensagem",
    "msgs": "mensagens",
    "hj": "hoje",
    "ngm": "ninguem",
    "qnto": "quanto",
    "qto": "quanto",
    "qnts": "quantos",
    "qts": "quantos",
    "dps": "depois",
    "agr": "agora",
    "pf": "por favor",
    "pfv": "por favor",
    "pfvr": "por favor",
    "obg": "obrigado",
}


def expand_chat(words: list[str]) -> list[str]:
    """``words`` (folded) with chat abbreviations spelt out (:data:`CHAT_ABBREVIATIONS`)."""
    out: list[str] = []
    for w in words:
        full = CHAT_ABBREVIATIONS.get(w)
        if full is None:
            out.append(w)
        else:
            out.extend(full.split())
    return out


# Folded forms. Kept out on purpose: negations (nao, not, no, nem, nunca, never, sem,
# without), "onde/where/quando/when" (they tell hours from locations) and every domain word.
PT_STOP_WORDS = _words(
    """
    a o as os um uma uns umas de do da dos das d em no na nos nas num numa nuns numas
    ao aos pelo pela pelos pelas por para pra pro pras pros per com e ou mas porem
    que qual quais quem cujo cuja como se ja ate entao tambem so apenas ainda mais menos
    muito muita muitos muitas pouco pouca este esta estes estas esse essa esses essas
    aquele aquela aqueles aquelas isto isso aquilo aqui ali la eu tu ele ela nos vos
    eles elas voce voces vc vcs me te lhe lhes nos vos meu minha meus minhas teu tua
    seu sua seus suas nosso nossa nossos nossas dele dela deles delas mim ti si
    ser sou es e somos sao era eram foi fui foram sera estar estou esta estamos estao
    estava estive esteve ter tenho tem temos tinha tive teve haver ha houve fazer faco
    faz fez fiz ir vou vai vamos quero queria quer gostaria gostava preciso precisa
    precisaria posso pode podem poderia podia consigo consegue conseguir saber sei
    sabe favor porfavor obrigado obrigada valeu oi ola bom dia boa tarde noite
    tudo bem alguem algum alguma alguns algumas todo toda todos todas outro outra
    outros outras mesmo mesma sobre entre depois antes agora hoje ai entao tipo
    ne hein pois assim acho achar
    """
)

EN_STOP_WORDS = _words(
    """
    a an the of to in on at by for from with about into over under as and or but if
    then so than too very just also only even still yet again is am are was were be
    been being do does did doing done have has had having i me my mine myself you your
    yours yourself he him his she her hers it its we us our ours they them their theirs
    this that these those there here what which who whom whose how why can could would
    should shall will may might must want wanted wants need needs needed like would
    please pls plz thanks thank thx hello hi hey dear guys ok okay some any all each
    every other another such same own get got getting let lets make made tell
    know help im ive id youre dont doesnt didnt isnt arent cant wont s t d ll m re ve
    one much many more most less few way something anything someone anyone
    """
)

# Never stop words, whatever the lists above say: they carry the meaning of a question.
KEPT_WORDS = _words("nao not no nem nunca never sem without onde where quando when")

STOP_WORDS = (PT_STOP_WORDS | EN_STOP_WORDS) - KEPT_WORDS

# Order matters: longest first within each list.
_PLURALS = (
    ("coes", "cao"),
    ("oes", "ao"),
    ("aes", "ao"),
    ("ies", "y"),
    ("ais", "al"),
    ("eis", "el"),
    ("ns", "m"),
)
_SUFFIXES = (
    "amentos",
    "imentos",
    "amento",
    "imento",
    "mente",
    "acoes",
    "acao",
    "ation",
    "ations",
    "aram",
    "eram",
    "iram",
    "ando",
    "endo",
    "indo",
    "ados",
    "adas",
    "idos",
    "idas",
    "ado",
    "ada",
    "ido",
    "ida",
    "ing",
    "ed",
    "ar",
    "ly",
    # pt-BR past tense, as customers tell what happened: "invadiram", "entrou", "paguei";
    # and the imperfect, how it was going: "faltava", "funcionava", "travavam"
    "avam",
    "ava",
    "ou",
    "ei",
    "eu",
    "iu",
)
_FINAL_VOWELS = ("a", "e", "o", "y")
_MIN_STEM = 3


@functools.lru_cache(maxsize=1 << 16)  # pure, and words repeat: a vocabulary's worth
def stem(word: str) -> str:
    """A light pt/en stemmer: plural, then one derivational/verbal suffix, then a final vowel.

    Not linguistics, just consistency: "entrega", "entregar", "entregas" share "entreg";
    "cancel", "cancelar", "cancelled", "cancelling" share "cancel".
    """
    if len(word) <= _MIN_STEM or word.isdigit():
        return word
    w = word
    for suffix, replacement in _PLURALS:
        if w.endswith(suffix) and len(w) - len(suffix) >= _MIN_STEM - 1:
            w = w[: -len(suffix)] + replacement
            break
    else:
        if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) >= 4:
            w = w[:-1]
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if w.endswith(suffix) and len(w) - len(suffix) >= _MIN_STEM:
            w = w[: -len(suffix)]
            if suffix == "ei" and w.endswith(("gu", "qu")):
                w = w[:-2] + (
                    "g" if w.endswith("gu") else "c"
                )  # "paguei" -> "pag", "fiquei" -> "fic"
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
                w = w[:-1]  # "cancell" -> "cancel", "shipp" -> "ship"
            break
    if len(w) > 4 and w.endswith(_FINAL_VOWELS):
        w = w[:-1]
    return w


def synonym_key(word: str) -> str:
    """Synonyms match by stem, but a stop word only as itself ("and" is not "andamento")."""
    return f"={word}" if word in STOP_WORDS else stem(word)


class Normalizer:
    """Turns text into the stems the matcher compares; built once per knowledge base.

    ``vocabulary``: the folded words of the KB's phrasings (the typo repair targets).
    ``synonyms``: folded variant (one or more words) -> canonical word(s).
    ``stop_words``: folded words dropped from the tokens (default: ``STOP_WORDS``).
    ``real_words``: texts whose words are real words, never repaired, but no repair
    target either (triage examples pass the KB's text: without it "mandaram", not in
    any example, was repaired to the example's "mudaram").
    """

    def __init__(
        self,
        vocabulary: Iterable[str],
        synonyms: Mapping[str, str],
        stop_words: frozenset[str] = STOP_WORDS,
        real_words: Iterable[str] = (),
    ) -> None:
        self._stop_words = stop_words
        real = frozenset(w for text in real_words for w in fold(text).split())
        self._real = real
        self._real_stems = frozenset(stem(w) for w in real)
        self._synonyms: dict[tuple[str, ...], tuple[str, ...]] = {}
        known: set[str] = set()
        for variant, canonical in synonyms.items():
            words = tuple(fold(variant).split())
            if words:
                self._synonyms[tuple(synonym_key(w) for w in words)] = tuple(
                    fold(canonical).split()
                )
                known.update(words)
            known.update(fold(canonical).split())
        self._longest = max((len(k) for k in self._synonyms), default=1)
        #: The keys variants start with: a word that starts none is kept as it is.
        self._starts = frozenset(k[0] for k in self._synonyms)
        known.update(w for text in vocabulary for w in fold(text).split())
        self._known = frozenset(known)
        self._known_stems = frozenset(stem(w) for w in known)
        # Typo targets by first letter: a repair only looks at words with the same initial,
        # so it stays cheap on a KB with a large vocabulary (issue 6: 100k phrasings).
        self._targets: dict[str, list[str]] = {}
        for w in sorted(self._known):
            if w not in STOP_WORDS and w.isalpha():
                self._targets.setdefault(w[0], []).append(w)

    def repair(self, word: str) -> str:
        """The known word closest to an unknown ``word``, or ``word`` when none is close."""
        if word in self._known or word in STOP_WORDS or len(word) < TYPO_MIN_LENGTH:
            return word
        if word in self._real:
            return word
        word_stem = stem(word)
        if not word.isalpha() or word_stem in self._known_stems or word_stem in self._real_stems:
            return word  # a known word in another form ("cadastrado"), not a typo
        edits = 2 if len(word) >= TYPO_LONG_WORD else 1
        candidates = [t for t in self._targets.get(word[0], ()) if abs(len(t) - len(word)) <= edits]
        best = process.extractOne(word, candidates, scorer=OSA.distance, score_cutoff=edits)
        return word if best is None else best[0]

    def _apply_synonyms(self, words: list[str]) -> list[str]:
        if not self._synonyms:
            return words  # triage's examples have none (issue 18: a tenth of a tokens call)
        stems = [synonym_key(w) for w in words]
        out: list[str] = []
        i = 0
        starts = self._starts
        while i < len(words):
            if stems[i] not in starts:
                out.append(words[i])
                i += 1
                continue
            for size in range(min(self._longest, len(words) - i), 0, -1):
                canonical = self._synonyms.get(tuple(stems[i : i + size]))
                if canonical is not None:
                    out.extend(canonical)
                    i += size
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def tokens(self, text: str, *, repair: bool = True) -> tuple[str, ...]:
        """The stems of ``text``'s meaningful words, in order (may repeat)."""
        words = expand_chat(fold(expand_negations(text)).split())
        if repair:
            words = [self.repair(w) for w in words]
        words = self._apply_synonyms(words)
        return tuple(stem(w) for w in words if w not in self._stop_words)
