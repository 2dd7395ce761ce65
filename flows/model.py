"""A loaded, validated flow: frozen dataclasses the runner walks.

Every goto is resolved at load time: a ``str`` is the id of a step of the same flow,
``None`` ends the flow. The file format is documented in ``flows/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: Every customer-facing text carries one string per locale.
LOCALES: tuple[str, ...] = ("pt-BR", "en")
DEFAULT_LOCALE = "pt-BR"
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
#: The variable that holds the customer's latest reply.
INPUT_VAR = "input"


@dataclass(frozen=True)
class LocalText:
    """A template per locale; an unknown locale reads the default one."""

    by_locale: Mapping[str, str]

    def get(self, locale: str) -> str:
        return self.by_locale.get(locale) or self.by_locale[DEFAULT_LOCALE]


# -- branch conditions -------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``{ var = "x", equals = "y" }`` and friends, over a flow variable or a contact attribute."""

    source: Literal["var", "attribute"]
    name: str
    equals: str | None = None
    matches: re.Pattern[str] | None = None
    is_set: bool | None = None


@dataclass(frozen=True)
class HasTag:
    tag: str


@dataclass(frozen=True)
class OnChannel:
    channel: str


@dataclass(frozen=True)
class InLocale:
    locale: str


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = Compare | HasTag | OnChannel | InLocale | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Case:
    condition: Condition
    goto: str


# -- steps -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceDef:
    id: str
    label: LocalText
    goto: str


@dataclass(frozen=True)
class Say:
    id: str
    text: LocalText
    goto: str | None


@dataclass(frozen=True)
class Ask:
    id: str
    text: LocalText
    choices: tuple[ChoiceDef, ...]
    var: str | None
    error: LocalText | None
    max_retries: int
    on_invalid: str | None


@dataclass(frozen=True)
class Collect:
    id: str
    text: LocalText
    var: str
    pattern: re.Pattern[str] | None
    error: LocalText | None
    max_retries: int
    goto: str | None
    on_invalid: str | None


@dataclass(frozen=True)
class KbLookup:
    id: str
    query: str | None
    on_answer: str | None
    on_none: str | None


@dataclass(frozen=True)
class Branch:
    id: str
    cases: tuple[Case, ...]
    otherwise: str | None


@dataclass(frozen=True)
class TagStep:
    id: str
    add: tuple[str, ...]
    assign: Mapping[str, str]
    goto: str | None


@dataclass(frozen=True)
class Handoff:
    id: str
    tier: str | None
    priority: str | None
    reason: str


@dataclass(frozen=True)
class Status:
    id: str
    ticket: str | None
    goto: str | None


@dataclass(frozen=True)
class End:
    id: str
    text: LocalText | None


@dataclass(frozen=True)
class JumpTo:
    """Continue in another flow (the current one ends; variables carry over)."""

    id: str
    flow: str


Step = Say | Ask | Collect | KbLookup | Branch | TagStep | Handoff | Status | End | JumpTo
#: Steps that stop and wait for the customer's reply.
WAITING = (Ask, Collect)


def exits(step: Step) -> tuple[str | None, ...]:
    """Where a step may go next within its flow; ``None`` ends the flow."""
    match step:
        case Say(goto=goto) | TagStep(goto=goto) | Status(goto=goto):
            return (goto,)
        case Ask(choices=choices, on_invalid=on_invalid):
            return (*(c.goto for c in choices), on_invalid)
        case Collect(goto=goto, on_invalid=on_invalid):
            return (goto, on_invalid)
        case KbLookup(on_answer=on_answer, on_none=on_none):
            return (on_answer, on_none)
        case Branch(cases=cases, otherwise=otherwise):
            return (*(c.goto for c in cases), otherwise)
        case Handoff() | End() | JumpTo():
            return ()


@dataclass(frozen=True)
class Flow:
    id: str
    description: str
    triggers: tuple[str, ...]
    start: str
    #: In file order.
    steps: Mapping[str, Step]
    #: The file it came from, for error messages.
    file: str

    def step(self, step_id: str) -> Step | None:
        return self.steps.get(step_id)
