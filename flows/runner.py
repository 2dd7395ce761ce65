"""Walk a flow: send its texts, wait for replies, and act through the host.

The runner holds no state between messages: a paused flow is a :class:`FlowPosition`
the engine stores with the conversation and hands back with the next reply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Protocol

from flows.errors import FlowError
from flows.loader import FlowSet
from flows.model import (
    INPUT_VAR,
    AllOf,
    AnyOf,
    Ask,
    Branch,
    ChoiceDef,
    Collect,
    Compare,
    Condition,
    End,
    Flow,
    Handoff,
    HasTag,
    InLocale,
    JumpTo,
    KbLookup,
    Not,
    OnChannel,
    Say,
    Status,
    TagStep,
)
from flows.position import FlowPosition
from flows.text import normalize, render

#: Non-waiting steps one call may run before the flow is declared a runaway loop.
MAX_STEPS = 50
_TICKET_NUMBER = re.compile(r"#?\s*(\d+)")


@dataclass(frozen=True)
class Option:
    """A choice rendered in the customer's locale."""

    id: str
    label: str


class FlowHost(Protocol):
    """Everything a flow may read from or do to the world; the engine implements it."""

    @property
    def locale(self) -> str:
        """The customer's locale: ``pt-BR`` or ``en``."""
        ...

    @property
    def channel(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...

    def attribute(self, name: str) -> str | None:
        """A contact attribute (``plan``, ``company`` ...), or None."""
        ...

    async def send(self, text: str, options: Sequence[Option] = ()) -> None:
        """Send the customer a message, with choices when ``options`` is not empty."""
        ...

    async def add_tags(self, tags: Sequence[str]) -> None: ...

    async def handoff(self, tier: str | None, priority: str | None, reason: str) -> None:
        """Open a ticket; ``tier`` None lets triage decide. The flow ends after it."""
        ...

    async def ticket_status(self, number: int | None) -> None:
        """Tell the customer a ticket's status; None is the conversation's own ticket."""
        ...

    async def kb_answer(self, query: str) -> bool:
        """Answer from the knowledge base; True when an answer was sent."""
        ...


@dataclass(frozen=True)
class FlowReply:
    """The customer's reply. ``choice_id`` is set when the engine already resolved it
    to one of the offered options (button press, ``2``, the option's label)."""

    text: str
    choice_id: str | None = None


class FlowRunner:
    def __init__(self, flows: FlowSet) -> None:
        self.flows = flows

    async def start(
        self, flow_id: str, host: FlowHost, vars: Mapping[str, str] | None = None
    ) -> FlowPosition | None:
        """Run ``flow_id`` until a step waits for the customer (its position) or it ends (None)."""
        flow = self.flows.get(flow_id)
        if flow is None:
            return None
        return await self._run(flow, flow.start, dict(vars or {}), host)

    async def resume(
        self, position: FlowPosition, reply: FlowReply, host: FlowHost
    ) -> FlowPosition | None:
        """Feed ``reply`` to the waiting step. An invalid reply is answered with the step's
        error text (or the question again) while retries remain, then goes to
        ``on_invalid`` or ends the flow. A position the flow files no longer know (an
        admin edited them) ends the flow."""
        flow = self.flows.get(position.flow_id)
        step = flow.step(position.step_id) if flow is not None else None
        if flow is None or not isinstance(step, (Ask, Collect)):
            return None
        variables = {**position.vars, INPUT_VAR: reply.text.strip()}
        if isinstance(step, Ask):
            choice = self._pick(step, reply)
            if choice is not None:
                if step.var is not None:
                    variables[step.var] = choice.id
                return await self._run(flow, choice.goto, variables, host)
        else:
            value = reply.text.strip()
            if value and (step.pattern is None or step.pattern.fullmatch(value)):
                variables[step.var] = value
                return await self._run(flow, step.goto, variables, host)
        if position.retries < step.max_retries:
            text = step.error if step.error is not None else step.text
            await host.send(
                render(text.get(host.locale), variables), self._options(step, host.locale)
            )
            return replace(position, vars=MappingProxyType(variables), retries=position.retries + 1)
        return await self._run(flow, step.on_invalid, variables, host)

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _options(step: Ask | Collect, locale: str) -> tuple[Option, ...]:
        if isinstance(step, Collect):
            return ()
        return tuple(Option(c.id, c.label.get(locale)) for c in step.choices)

    @staticmethod
    def _pick(step: Ask, reply: FlowReply) -> ChoiceDef | None:
        """The option id the engine resolved, else a typed number or label (any locale)."""
        for choice in step.choices:
            if choice.id == reply.choice_id:
                return choice
        typed = normalize(reply.text)
        if not typed:
            return None
        if typed.isdigit() and 1 <= int(typed) <= len(step.choices):
            return step.choices[int(typed) - 1]
        for choice in step.choices:
            if any(normalize(label) == typed for label in choice.label.by_locale.values()):
                return choice
        return None

    async def _run(
        self, flow: Flow, step_id: str | None, variables: dict[str, str], host: FlowHost
    ) -> FlowPosition | None:
        ran = 0
        while step_id is not None:
            step = flow.step(step_id)
            if step is None:
                return None
            if isinstance(step, (Ask, Collect)):
                text = render(step.text.get(host.locale), variables)
                await host.send(text, self._options(step, host.locale))
                return FlowPosition(flow.id, step.id, MappingProxyType(dict(variables)))
            ran += 1
            if ran > MAX_STEPS:
                raise FlowError(
                    flow.file,
                    f"flow '{flow.id}', step '{step.id}'",
                    f"ran {MAX_STEPS} steps without waiting for the customer: a goto loop",
                )
            match step:
                case Say():
                    await host.send(render(step.text.get(host.locale), variables))
                    step_id = step.goto
                case KbLookup():
                    query = (
                        render(step.query, variables)
                        if step.query is not None
                        else variables.get(INPUT_VAR, "")
                    )
                    answered = bool(query.strip()) and await host.kb_answer(query.strip())
                    step_id = step.on_answer if answered else step.on_none
                case Branch():
                    step_id = next(
                        (c.goto for c in step.cases if _holds(c.condition, variables, host)),
                        step.otherwise,
                    )
                case TagStep():
                    if step.add:
                        await host.add_tags(step.add)
                    for name, template in step.assign.items():
                        variables[name] = render(template, variables)
                    step_id = step.goto
                case Handoff():
                    await host.handoff(step.tier, step.priority, render(step.reason, variables))
                    return None
                case Status():
                    await host.ticket_status(_ticket_number(step.ticket, variables))
                    step_id = step.goto
                case End():
                    if step.text is not None:
                        await host.send(render(step.text.get(host.locale), variables))
                    return None
                case JumpTo():
                    target = self.flows.get(step.flow)
                    if target is None:
                        return None
                    flow, step_id = target, target.start
        return None


def _ticket_number(template: str | None, variables: Mapping[str, str]) -> int | None:
    """The ticket a status step asks about; empty or not a number -> the conversation's own."""
    if template is None:
        return None
    match = _TICKET_NUMBER.fullmatch(render(template, variables).strip())
    return int(match[1]) if match else None


def _holds(condition: Condition, variables: Mapping[str, str], host: FlowHost) -> bool:
    match condition:
        case Compare(source=source, name=name):
            value = variables.get(name) if source == "var" else host.attribute(name)
            if condition.is_set is not None:
                return bool(value and value.strip()) == condition.is_set
            if value is None:
                return False
            if condition.matches is not None:
                return condition.matches.fullmatch(value.strip()) is not None
            return value.strip().casefold() == (condition.equals or "").casefold()
        case HasTag(tag=tag):
            return tag in host.tags
        case OnChannel(channel=channel):
            return host.channel == channel
        case InLocale(locale=locale):
            return host.locale == locale
        case AllOf(conditions=parts):
            return all(_holds(p, variables, host) for p in parts)
        case AnyOf(conditions=parts):
            return any(_holds(p, variables, host) for p in parts)
        case Not(condition=inner):
            return not _holds(inner, variables, host)
