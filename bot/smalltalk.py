"""Small talk and closings: "obrigado", "valeu", "bye", "ok", "kkkk", "👍", "oi de novo".

Customers are polite. Before issue 12, "obrigado" then "valeu" were two messages the KB
could not answer, and the second opened a ticket. A message that is *only* small talk
(every word belongs to a small-talk phrase or is a harmless filler, or it is nothing but
emoji) gets a short friendly reply in the customer's language and never counts as a
failed attempt. "obrigado, mas meu pedido não chegou" is not small talk: it has a
problem in it.

Low-information messages ("sim", "não", "?", "hmm" out of context: ``kb.lowinfo``) are
not small talk, and are not answered from the KB either: the customer is asked to say
a little more (:func:`reply` with :attr:`Kind.CLARIFY`).
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Mapping

from flows.loader import FlowSet
from kb.normalize import fold


class Kind(enum.StrEnum):
    THANKS = "thanks"
    BYE = "bye"
    ACK = "ack"
    LAUGH = "laugh"
    GREETING_AGAIN = "greeting_again"
    HOW_ARE_YOU = "how_are_you"
    #: Not small talk: a low-information message, answered by asking for more.
    CLARIFY = "clarify"


def _phrases(kind: Kind, text: str) -> dict[tuple[str, ...], Kind]:
    return {tuple(p.split()): kind for p in text.split(",") if p.strip()}


#: Folded phrases, comma-separated, per kind.
PHRASES: Mapping[tuple[str, ...], Kind] = {
    **_phrases(
        Kind.THANKS,
        "obrigado, obrigada, obg, obgd, obrigadao, brigado, brigada, valeu, vlw, agradeco,"
        "muito obrigado, muito obrigada, thanks, thank you, thx, tks, ty, cheers,"
        "thanks a lot, thank you so much, much appreciated, appreciate it, grato, grata",
    ),
    **_phrases(
        Kind.BYE,
        "tchau, tchauzinho, xau, ate mais, ate logo, ate a proxima, falou, flw, adeus,"
        "bye, bye bye, goodbye, see you, see ya, later, cya, take care, boa noite pra voce,"
        "bom fim de semana, have a nice day, have a good day",
    ),
    **_phrases(
        Kind.ACK,
        "ok, okay, okey, oks, blz, beleza, certo, ta bom, ta bem, ta otimo, combinado,"
        "entendi, perfeito, show, top, massa, joia, fechou, otimo, legal, beleza entao,"
        "got it, great, perfect, cool, nice, awesome, alright, all right, sounds good,"
        "fine, understood, noted, no problem, sem problemas, tudo certo",
    ),
    **_phrases(
        Kind.LAUGH,
        "kkk, kkkk, kkkkk, kkkkkk, haha, hahaha, hahahaha, rs, rsrs, rsrsrs, lol, lmao,"
        "hehe, hehehe, huahua, huahuahua",
    ),
    **_phrases(
        Kind.GREETING_AGAIN,
        "oi de novo, ola de novo, oi novamente, ola novamente, voltei, to de volta,"
        "estou de volta, hi again, hello again, hey again, i m back, im back, its me again",
    ),
    **_phrases(
        Kind.HOW_ARE_YOU,
        "tudo bem, tudo bom, tudo certo com voce, como vai, como voce esta, e ai tudo bem,"
        "oi tudo bem, ola tudo bem, oi tudo bom, how are you, how are you doing,"
        "how s it going, hows it going, hi how are you, hello how are you",
    ),
}
_LONGEST = max(len(p) for p in PHRASES)
#: Words that may surround small talk without making it a request.
FILLERS = frozenset(
    [
        "ah",
        "ahh",
        "oh",
        "hm",
        "hmm",
        "muito",
        "mesmo",
        "demais",
        "pela",
        "pelo",
        "sua",
        "seu",
        "ajuda",
        "atendimento",
        "ai",
        "entao",
        "e",
        "and",
        "a",
        "lot",
        "so",
        "much",
        "very",
        "for",
        "the",
        "your",
        "you",
        "help",
        "again",
        "de",
        "novo",
        "pessoal",
        "gente",
        "moco",
        "moca",
        "amigo",
        "amiga",
        "querido",
        "querida",
        "viu",
        "ta",
        "bot",
        "robo",
        "assistente",
        "ne",
    ]
)
#: Laughter written long: "kkkkkkk", "hahahahaha", "rsrsrs".
_LAUGH_STEMS = ("kk", "haha", "hehe", "rsrs", "huahua")
_KIND_ORDER = (
    Kind.THANKS,
    Kind.BYE,
    Kind.GREETING_AGAIN,
    Kind.HOW_ARE_YOU,
    Kind.LAUGH,
    Kind.ACK,
)
#: Emoji read as words when a message is nothing but emoji.
EMOJI_KINDS = {"🙏": Kind.THANKS, "👋": Kind.BYE, "😂": Kind.LAUGH, "🤣": Kind.LAUGH}
#: Anger, sadness, disapproval: a message of emoji with one of these is no small talk
#: (an angry customer told "Combinado!" is angrier); it is asked what happened.
UPSET_EMOJI = frozenset("😡😠🤬😤👎😞😢😭💔😩😫🙁☹😒😣😖🤦😑😐🙄😕😟😥😰😱🤯")


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk", "Cf") or char in "\ufe0f\u200d"


def flow_trigger(flows: FlowSet, text: str) -> str | None:
    """The flow a message starts (:meth:`FlowSet.find_trigger`): its triggers may be
    followed by small talk ("bom dia, tudo bem?" is a greeting), unless the whole
    message is small talk, which is answered as such ("oi, tudo bem?")."""

    def courtesy(rest: str) -> bool:
        return classify(rest) is not None and classify(text) is None

    return flows.find_trigger(text, then=courtesy)


def classify(text: str) -> Kind | None:
    """The kind of small talk ``text`` is, or ``None`` when it says anything more."""
    folded = fold(text)
    if not folded:
        symbols = [c for c in text if not c.isspace()]
        if not symbols or not any(_is_emoji(c) for c in symbols):
            return None  # "????" or "..." is low information, not small talk
        if not all(_is_emoji(c) or unicodedata.category(c).startswith("P") for c in symbols):
            return None
        if any(c in UPSET_EMOJI for c in symbols):
            return None
        for emoji, kind in EMOJI_KINDS.items():
            if emoji in text:
                return kind
        return Kind.ACK
    words = folded.split()
    found: set[Kind] = set()
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            phrase = PHRASES.get(tuple(words[i : i + size]))
            if phrase is not None:
                found.add(phrase)
                i += size
                break
        else:
            word = words[i]
            if any(word.startswith(stem) and len(set(word)) <= 4 for stem in _LAUGH_STEMS):
                found.add(Kind.LAUGH)
            elif word not in FILLERS:
                return None
            i += 1
    return next((kind for kind in _KIND_ORDER if kind in found), None)


NEGATIVE = frozenset(
    [
        "nao",
        "n",
        "no",
        "nope",
        "nah",
        "none",
        "nenhuma",
        "nenhum",
        "nada",
        "neither",
        "nem",
        "negativo",
    ]
)
_NEGATIVE_FILLERS = frozenset(
    [
        "dessas",
        "desses",
        "destas",
        "destes",
        "disso",
        "of",
        "these",
        "them",
        "e",
        "obrigado",
        "thanks",
    ]
)


def is_negative(text: str) -> bool:
    """A plain "no" ("não", "nenhuma dessas", "nope"): the answer to offered choices."""
    words = fold(text).split()
    return (
        bool(words)
        and any(w in NEGATIVE for w in words)
        and all(w in NEGATIVE or w in _NEGATIVE_FILLERS for w in words)
    )


#: The choice ids of a yes-or-no question (the shipped flows' "did this help?").
YES, NO = "yes", "no"
#: Folded words that say yes to a yes-or-no question; a no is a :data:`NEGATIVE` one,
#: or English's longer ways ("not", "didn't").
AFFIRMATIVE = frozenset(
    [
        "sim",
        "s",
        "ss",
        "claro",
        "isso",
        "ajudou",
        "funcionou",
        "resolveu",
        "certo",
        "certeza",
        "yes",
        "y",
        "yep",
        "yeah",
        "yup",
        "sure",
        "helped",
        "worked",
        "did",
    ]
)
_NO_WORDS = NEGATIVE | {"not", "didn", "didnt"}
#: Words that may come with them ("sim, obrigado!", "não ajudou em nada", "it didn't help").
_YES_NO_FILLERS = frozenset(
    [
        "obrigado",
        "obrigada",
        "valeu",
        "vlw",
        "muito",
        "mesmo",
        "bastante",
        "demais",
        "em",
        "de",
        "com",
        "forma",
        "alguma",
        "deu",
        "pela",
        "pelo",
        "ajuda",
        "e",
        "foi",
        "tudo",
        "thanks",
        "thank",
        "you",
        "it",
        "t",
        "help",
        "work",
        "really",
        "much",
        "a",
        "lot",
        "so",
        "very",
        "at",
        "all",
    ]
)
_YES_EMOJI = frozenset("👍✅👌🙏😄😊🙂")
_NO_EMOJI = UPSET_EMOJI | {"❌"}


def yes_or_no(text: str) -> str | None:
    """``yes`` or ``no`` when ``text`` is only an everyday answer to a yes-or-no question
    ("s", "claro!", "sim, obrigado", "👍" / "não ajudou em nada", "nope", "👎"); a no
    wins ("não ajudou"); ``None`` when it says anything more ("sim, mas o outro pedido
    ...": probably the next question)."""
    words = fold(text).split()
    if not words:
        # skin tones (Sk), the emoji variation selector and joiners say nothing more
        marks = {
            c for c in text if not c.isspace() and unicodedata.category(c) not in ("Sk", "Cf")
        } - {"\ufe0f"}
        if marks and marks <= _YES_EMOJI | _NO_EMOJI:
            return NO if marks & _NO_EMOJI else YES
        return None
    if not all(w in AFFIRMATIVE or w in _NO_WORDS or w in _YES_NO_FILLERS for w in words):
        return None
    if any(w in _NO_WORDS for w in words):
        return NO
    return YES if any(w in AFFIRMATIVE for w in words) else None


REPLIES: Mapping[Kind, Mapping[str, str]] = {
    Kind.THANKS: {
        "pt-BR": "De nada! 😊 Se precisar de mais alguma coisa, é só escrever.",
        "en": "You're welcome! 😊 If you need anything else, just write.",
    },
    Kind.BYE: {
        "pt-BR": "Até mais! Quando precisar, é só chamar. 👋",
        "en": "Bye for now! Write any time you need us. 👋",
    },
    Kind.ACK: {
        "pt-BR": "Combinado! Se precisar de mais alguma coisa, é só escrever.",
        "en": "Great! If you need anything else, just write.",
    },
    Kind.LAUGH: {
        "pt-BR": "😄 Posso ajudar com mais alguma coisa?",
        "en": "😄 Anything else I can help with?",
    },
    Kind.GREETING_AGAIN: {
        "pt-BR": "Oi de novo! 👋 Como posso ajudar?",
        "en": "Hi again! 👋 How can I help?",
    },
    Kind.HOW_ARE_YOU: {
        "pt-BR": "Tudo bem por aqui, obrigado! Como posso ajudar?",
        "en": "All good here, thanks! How can I help?",
    },
    Kind.CLARIFY: {
        "pt-BR": (
            "Pode me contar com um pouco mais de detalhes o que você precisa? Se preferir, "
            'digite "atendente" para falar com uma pessoa.'
        ),
        "en": (
            "Could you tell me a bit more about what you need? You can also type "
            '"human" to talk to a person.'
        ),
    },
}


def reply(kind: Kind, locale: str) -> str:
    texts = REPLIES[kind]
    return texts.get(locale) or texts["pt-BR"]
