"""What the engine would do with one customer message on a given content version, and
how a version scores on labelled cases: the studio's "try it" panel (issue 16).

:func:`explain` walks the start of the turn's decision order (:mod:`bot.turn`) for a
message in a new conversation, without a store: a flow trigger, a request for a
person, small talk or too little to go on, else tier 0 — the KB's decision with its
score and runner-up, and the routing rule that fires with its reasons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import smalltalk, turn_eval
from bot.content import Content
from bot.settings import Settings
from bot.triage import TriageContext
from kb.evaluate import Case, evaluate
from kb.lowinfo import is_low_information


@dataclass(frozen=True)
class Suggestion:
    entry_id: str
    title: str
    score: float


@dataclass(frozen=True)
class Explanation:
    version: int
    #: The step of the decision order that takes the message.
    step: str
    kb_outcome: str | None = None
    entry_id: str | None = None
    score: float | None = None
    runner_up: Suggestion | None = None
    suggestions: tuple[Suggestion, ...] = ()
    answer: str | None = None
    rule: str | None = None
    tier: str | None = None
    priority: str | None = None
    handoff: bool = False
    reasons: tuple[str, ...] = ()
    flow: str | None = None


def explain(
    content: Content, settings: Settings, text: str, locale: str, now: datetime
) -> Explanation:
    version = content.version
    engine = settings.engine
    trigger = smalltalk.flow_trigger(content.flows, text)
    if trigger is not None:
        return Explanation(version, "flow trigger", flow=trigger)
    human = content.triage.human_request(text)
    if human is not None:
        routed = content.triage.decide(
            TriageContext(text=text, channel="console", now=now, requested_human=True)
        )
        flow = engine.human_flow if content.flows.get(engine.human_flow) else None
        return Explanation(
            version, "asks for a person", rule=routed.rule, tier=routed.tier,
            priority=routed.priority.label, handoff=True,
            reasons=(human.explain(), *routed.reasons), flow=flow,
        )  # fmt: skip
    talk = smalltalk.classify(text)
    if talk is not None:
        return Explanation(version, f"small talk ({talk.value})")
    if is_low_information(text):
        return Explanation(version, "too little to go on: asks for details")
    decision = content.matcher.match(text)
    ranked = content.matcher.rank(text)

    def suggestion(entry_id: str, score: float) -> Suggestion:
        entry = content.kb.get(entry_id)
        return Suggestion(entry_id, entry.title(locale) if entry else entry_id, round(score, 1))

    best = ranked[0] if ranked else None
    second = ranked[1] if len(ranked) > 1 else None
    entry = content.kb.get(decision.entry_id) if decision.entry_id else None
    triage = content.triage.decide(
        TriageContext(
            text=text,
            channel="console",
            now=now,
            kb_outcome=decision.outcome,
            kb_category=entry.category if entry else None,
        )
    )
    flow = None
    if not triage.handoff and entry is not None:
        if entry.flow and content.flows.get(entry.flow):
            flow = entry.flow
        elif engine.after_answer_flow and content.flows.get(engine.after_answer_flow):
            flow = engine.after_answer_flow
    return Explanation(
        version,
        "handoff (triage)" if triage.handoff else f"tier 0: {decision.outcome}",
        kb_outcome=decision.outcome,
        entry_id=decision.entry_id or (best.entry_id if best else None),
        score=round(best.score, 1) if best else None,
        runner_up=suggestion(second.entry_id, second.score) if second else None,
        suggestions=tuple(
            suggestion(s.entry_id, s.score) for s in decision.suggestions
        ) if decision.outcome == "suggest" else (),
        answer=entry.answer(locale) if entry and decision.outcome == "answer" else None,
        rule=triage.rule,
        tier=triage.tier,
        priority=triage.priority.label,
        handoff=triage.handoff,
        reasons=triage.reasons,
        flow=flow,
    )  # fmt: skip


def kb_figures(content: Content, cases: Sequence[Case]) -> dict[str, float | int]:
    """``escala kb eval`` on this version's matcher. Cases naming an entry this version
    does not have count as misses (a removed entry shows as lost coverage)."""
    return evaluate(content.matcher, cases)


async def turn_figures(
    settings: Settings, content: Content, cases: Sequence[turn_eval.Case]
) -> dict[str, Any]:
    """``escala eval`` (whole turns) on this version, in a thread of its own so the
    server keeps answering meanwhile."""

    def run() -> list[turn_eval.Result]:
        return asyncio.run(turn_eval.run_cases(settings, cases, content))

    results = await asyncio.to_thread(run)
    return turn_eval.report(cases, results)
