"""Global commands and choice resolution: what a customer may type."""

from __future__ import annotations

import pytest

from bot.commands import Command, detect, resolve_choice
from bot.models import Choice
from bot.smalltalk import yes_or_no


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("atendente", Command.HUMAN),
        ("Quero falar com um atendente, por favor", Command.HUMAN),
        ("I want to TALK TO A HUMAN!", Command.HUMAN),
        ("/human", Command.HUMAN),
        ("status", Command.STATUS),
        ("Qual o status do meu chamado?", Command.STATUS),
        ("ticket status", Command.STATUS),
        ("Cancelar", Command.CANCEL),
        ("cancel", Command.CANCEL),
        ("recomeçar", Command.RESTART),
        ("start over", Command.RESTART),
    ],
)
def test_commands_in_both_languages(text: str, command: Command) -> None:
    found = detect(text)
    assert found is not None and found.command is command


@pytest.mark.parametrize(
    "text",
    [
        "my agent app crashed",  # a single command word inside a sentence is not a command
        "quero cancelar meu pedido",
        "qual o horário?",
        "",
        "   ",
    ],
)
def test_ordinary_messages_are_not_commands(text: str) -> None:
    assert detect(text) is None


def test_status_carries_a_ticket_number() -> None:
    found = detect("status #1042")
    assert found is not None and found.command is Command.STATUS and found.number == 1042
    found = detect("status do chamado 1042")
    assert found is not None and found.number == 1042


OFFERED = (Choice("yes", "Sim"), Choice("no", "Não"))


def test_choice_by_button_number_or_label() -> None:
    assert resolve_choice("", "no", OFFERED) == OFFERED[1]
    assert resolve_choice("1", None, OFFERED) == OFFERED[0]
    assert resolve_choice(" 2 ", None, OFFERED) == OFFERED[1]
    assert resolve_choice("nao", None, OFFERED) == OFFERED[1]
    assert resolve_choice("SIM!", None, OFFERED) == OFFERED[0]


def test_no_choice_when_nothing_matches() -> None:
    assert resolve_choice("3", None, OFFERED) is None
    assert resolve_choice("0", None, OFFERED) is None
    assert resolve_choice("talvez", None, OFFERED) is None
    assert resolve_choice("", "maybe", OFFERED) is None
    assert resolve_choice("1", None, ()) is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("s", "yes"),
        ("Sim, obrigado!", "yes"),
        ("claro", "yes"),
        ("deu certo", "yes"),
        ("yep", "yes"),
        ("it worked!", "yes"),
        ("👍", "yes"),
        ("👍🏽", "yes"),
        ("n", "no"),
        ("não ajudou em nada", "no"),
        ("nao deu certo", "no"),  # a no wins
        ("it didn't help", "no"),
        ("nope", "no"),
        ("👎", "no"),
        # Anything more is probably the next question: neither.
        ("sim, mas quero trocar o endereço", None),
        ("não recebi meu pedido", None),
        ("obrigado", None),
        ("ok", None),
        ("🤔", None),
        ("", None),
    ],
)
def test_everyday_yes_and_no(text: str, said: str | None) -> None:
    assert yes_or_no(text) == said


def test_a_yes_or_no_question_reads_them_other_choices_do_not() -> None:
    assert resolve_choice("👍", None, OFFERED) == OFFERED[0]
    assert resolve_choice("não ajudou em nada", None, OFFERED) == OFFERED[1]
    assert resolve_choice("talvez", None, OFFERED) is None
    other = (Choice("email", "E-mail"), Choice("sms", "SMS"))
    assert resolve_choice("👍", None, other) is None
    assert resolve_choice("sim", None, (Choice("kb:a", "A"), Choice("kb:none", "Nenhuma"))) is None
