"""Global commands a customer can say at any point, in pt-BR and English,
and how a typed reply resolves to one of the choices we offered."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.models import Choice
from bot.smalltalk import NO, YES, yes_or_no
from kb.normalize import fold


class Command(enum.StrEnum):
    HUMAN = "human"
    STATUS = "status"
    CANCEL = "cancel"
    RESTART = "restart"


#: Whole-message phrases, folded (so "/cancel" is "cancel" and "#1042" is "1042").
#: Multi-word phrases also match inside a longer message ("eu quero falar com
#: atendente agora"); single words only match the whole message, so "agent" in
#: "my agent app crashed" is not a command.
PHRASES: dict[Command, tuple[str, ...]] = {
    Command.HUMAN: (
        "atendente",
        "humano",
        "pessoa",
        "human",
        "agent",
        "operator",
        "representative",
        "falar com atendente",
        "falar com um atendente",
        "falar com humano",
        "falar com um humano",
        "falar com uma pessoa",
        "atendimento humano",
        "quero um atendente",
        "chamar atendente",
        "talk to a human",
        "talk to an agent",
        "talk to a person",
        "speak to a human",
        "speak to an agent",
        "speak to a person",
        "real person",
        "human agent",
    ),
    Command.STATUS: (
        "status",
        "status do ticket",
        "status do chamado",
        "status do meu chamado",
        "status do protocolo",
        "andamento do chamado",
        "andamento do meu chamado",
        "meu chamado",
        "ticket status",
        "status of my ticket",
        "my ticket status",
        "where is my ticket",
    ),
    Command.CANCEL: ("cancelar", "cancel", "cancela"),
    Command.RESTART: (
        "recomecar",
        "comecar de novo",
        "reiniciar",
        "start over",
        "restart",
    ),
}

#: Per command, its phrases with, for a multi-word one, the form found inside a longer
#: message (padded with spaces), in ``PHRASES``' order: built once, not per message.
_SEARCHED: tuple[tuple[Command, tuple[tuple[str, str | None], ...]], ...] = tuple(
    (command, tuple((p, f" {p} " if " " in p else None) for p in phrases))
    for command, phrases in PHRASES.items()
)

_NUMBER = re.compile(r"\b(\d{3,9})\b")
ACCESS_CODE_LENGTH = 4
CODE_WORDS = frozenset({"codigo", "code", "cod"})


@dataclass(frozen=True)
class CommandMatch:
    command: Command
    #: A ticket number written with the command ("status 1042").
    number: int | None = None


def detect(text: str) -> CommandMatch | None:
    folded = fold(text)
    if not folded:
        return None
    number_match = _NUMBER.search(folded)
    without_number = " ".join(_NUMBER.sub(" ", folded).split())
    if number_match:
        # "status 1042 K7P2", "status 1042 código K7P2": the access code is not a word
        # of the command (bot.access_code)
        after = folded[number_match.end() :].split()
        code = {w for w in after if len(w) == ACCESS_CODE_LENGTH} | CODE_WORDS
        without_number = " ".join(w for w in without_number.split() if w not in code)
    padded = f" {folded} "
    for command, phrases in _SEARCHED:
        whole = without_number if command is Command.STATUS else folded
        for phrase, inside in phrases:
            if whole == phrase or (inside is not None and inside in padded):
                number = int(number_match.group(1)) if number_match else None
                return CommandMatch(command, number if command is Command.STATUS else None)
    return None


def resolve_choice(text: str, choice_id: str | None, offered: Sequence[Choice]) -> Choice | None:
    """The offered choice the customer picked: a button (``choice_id``), its number
    (``2``) or its label (accent- and case-insensitive); for a yes-or-no question (the
    choices ``yes`` and ``no``), also the everyday ways of saying it (:func:`yes_or_no`)."""
    if not offered:
        return None
    if choice_id is not None:
        return next((c for c in offered if c.id == choice_id), None)
    folded = fold(text)
    if folded.isdigit():
        index = int(folded) - 1
        return offered[index] if 0 <= index < len(offered) else None
    picked = next((c for c in offered if fold(c.label) == folded), None)
    if picked is None and {YES, NO} <= {c.id for c in offered}:
        said = yes_or_no(text)
        picked = next((c for c in offered if c.id == said), None)
    return picked
