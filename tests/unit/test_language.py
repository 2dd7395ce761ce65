"""Guessing a message's language for channels that cannot say it (SMS, WhatsApp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.language import guess_locale

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Qual o horário de atendimento de vocês?", "pt-BR"),
        ("meu pedido não chegou até agora", "pt-BR"),
        ("oi, quero falar com alguém", "pt-BR"),
        ("vc pode me ajudar com o boleto?", "pt-BR"),
        ("Hi, what are your opening hours?", "en"),
        ("I can't log in to my account", "en"),
        ("my order never arrived", "en"),
        ("where is my refund?", "en"),
        # too little to say: the conversation keeps its language
        ("ok", None),
        ("boleto", None),
        ("2", None),
        ("oi", None),
        ("hi", None),
        ("obrigado!", None),
        ("oi, I need help", "en"),  # mostly English
        ("oi, preciso de help", "pt-BR"),  # mostly Portuguese
        ("oi, my boleto", None),  # as much of each
        ("e-mail", None),  # folded to "e mail": not Portuguese
    ],
)
def test_a_message_says_its_language_only_when_it_clearly_does(
    text: str, locale: str | None
) -> None:
    assert guess_locale(text) == locale


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("the app keeps crashing", "en"),
        ("thanks, bye", "en"),
        ("hey there", "en"),
        ("obrigado!", "pt-BR"),
        ("app nao abre", "pt-BR"),
        # still nothing to go on, or as much of each: the default language
        ("ok", None),
        ("boleto", None),
        ("oi, my boleto", None),
        ("to com problema no app", None),
    ],
)
def test_a_first_message_says_its_language_with_less(text: str, locale: str | None) -> None:
    assert guess_locale(text, first=True) == locale


def labelled_cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(DATA.glob("turn_cases*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            if case.get("locale") in ("pt-BR", "en"):
                cases.append((case["text"], case["locale"]))
    return cases


#: Cases labelled with their conversation's locale, pt-BR, whose customer wrote English:
#: the guess is right to say English.
ENGLISH_IN_PORTUGUESE_CONVERSATIONS = {
    "someone changed my password, I didnt do it",
    "what time do you open?",
    "how do I change my email address",
    "where do I update my payment method",
}


def test_no_labelled_customer_message_is_taken_for_the_other_language() -> None:
    cases = labelled_cases()
    assert len(cases) > 1000
    wrong = {text for text, locale in cases if guess_locale(text) not in (None, locale)}
    assert wrong == ENGLISH_IN_PORTUGUESE_CONVERSATIONS
    assert {guess_locale(text) for text in wrong} == {"en"}
    # Most ordinary messages say it (measured 2026-12-01: 1,276 of 1,437 in Portuguese,
    # 80 of 112 in English); the others keep the conversation's language.
    for language, least in (("pt-BR", 0.85), ("en", 0.65)):
        written = [text for text, locale in cases if locale == language]
        guessed = sum(guess_locale(text) == language for text in written)
        assert guessed >= least * len(written), (language, guessed, len(written))


#: Labelled with an English conversation's locale, written in Portuguese: a first
#: message's guess is right to say Portuguese.
PORTUGUESE_IN_ENGLISH_CONVERSATIONS = {"aparece erro 500 quando salvo", "voces vendem carro?"}


def test_a_first_message_is_not_taken_for_the_other_language_either() -> None:
    """The first-message guess takes less evidence; measured on the same cases it says
    more (2026-12-01: 1,386 of 1,442 in Portuguese, 98 of 116 in English, against 1,281
    and 83) and is wrong on none whose text is in the labelled language. On BANKING77
    and CLINC150 train (25,103 English texts) it took none for Portuguese (a session
    check; the datasets are not in the repository)."""
    cases = labelled_cases()
    wrong = {text for text, locale in cases if guess_locale(text, first=True) not in (None, locale)}
    assert wrong == ENGLISH_IN_PORTUGUESE_CONVERSATIONS | PORTUGUESE_IN_ENGLISH_CONVERSATIONS
    for language, least in (("pt-BR", 0.9), ("en", 0.8)):
        written = [text for text, locale in cases if locale == language]
        guessed = sum(guess_locale(text, first=True) == language for text in written)
        assert guessed >= least * len(written), (language, guessed, len(written))
