"""``escala serve`` with its decisions remembered: what deciding costs end to end (issue 18).

The fair ceiling (:mod:`bench.ceilings`) stores and sends but decides nothing. Escala
decides every message: the KB match, the routing rules and the request-for-a-person
check. This runs the real server with those three remembered by their inputs, so
that a text decides once and every later message with the same inputs reuses the
decision. :mod:`bench.e2e`'s ``-decided`` rows run it; the benchmark repeats one
question, so there every message after the first decides nothing, and the gap to the
plain row of the same store is what the decision costs under load.

A diagnostic, not a product mode: nothing in ``bot`` reads it, and it is never the
fix (a real desk sees many texts once; see README, issue 18). Run as
``python -m bench.decided serve --config F ...`` (the arguments of ``escala serve``,
one process only: ``--workers`` would start workers without it).

The remembered inputs are all a decision reads: the text (the matcher is per
published content, so a publish starts a new memory), and for the routing rules the
whole context, its time to the minute (business hours are given in minutes).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from bot import triage
from bot.models import TriageDecision
from bot.triage_text import ExampleHit
from kb import matcher
from kb.matcher import KbDecision

#: Decisions remembered per matcher or rule set; past it the oldest go (a dict keeps
#: insertion order).
REMEMBERED = 4096

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _remember(memory: dict[K, V], key: K, decide: Callable[[], V]) -> V:
    """``memory[key]``, decided by ``decide`` the first time."""
    try:
        return memory[key]
    except KeyError:
        pass
    if len(memory) >= REMEMBERED:
        del memory[next(iter(memory))]
    value = memory[key] = decide()
    return value


def remember_decisions() -> Callable[[], None]:
    """Patch the matcher and the rule set so each decides an input once; returns what
    undoes it."""
    match = matcher.Matcher.match
    decide = triage.Triage.decide
    human_request = triage.Triage.human_request
    # Per matcher or rule set, held weakly: a publish's new ones start empty.
    matches: weakref.WeakKeyDictionary[matcher.Matcher, dict[str, KbDecision]]
    matches = weakref.WeakKeyDictionary()
    routes: weakref.WeakKeyDictionary[triage.Triage, dict[Hashable, TriageDecision]]
    routes = weakref.WeakKeyDictionary()
    asks: weakref.WeakKeyDictionary[triage.Triage, dict[str, ExampleHit | None]]
    asks = weakref.WeakKeyDictionary()

    def remembered_match(self: matcher.Matcher, text: str) -> KbDecision:
        return _remember(matches.setdefault(self, {}), text, lambda: match(self, text))

    def remembered_decide(self: triage.Triage, ctx: triage.TriageContext) -> TriageDecision:
        key = (
            ctx.text,
            ctx.channel,
            ctx.now.replace(second=0, microsecond=0),
            ctx.kb_outcome,
            ctx.kb_category,
            ctx.failed_attempts,
            tuple(sorted(ctx.contact_attributes.items())),
            ctx.requested_human,
        )
        return _remember(routes.setdefault(self, {}), key, lambda: decide(self, ctx))

    def remembered_human_request(self: triage.Triage, text: str) -> ExampleHit | None:
        return _remember(asks.setdefault(self, {}), text, lambda: human_request(self, text))

    matcher.Matcher.match = remembered_match  # type: ignore[method-assign]
    triage.Triage.decide = remembered_decide  # type: ignore[method-assign]
    triage.Triage.human_request = remembered_human_request  # type: ignore[method-assign]

    def forget() -> None:
        matcher.Matcher.match = match  # type: ignore[method-assign]
        triage.Triage.decide = decide  # type: ignore[method-assign]
        triage.Triage.human_request = human_request  # type: ignore[method-assign]

    return forget


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--workers" in args:
        print("bench.decided: one process only (workers would not remember)", file=sys.stderr)
        return 2
    remember_decisions()
    from bot.cli import main as escala

    return escala(args)


if __name__ == "__main__":
    sys.exit(main())
