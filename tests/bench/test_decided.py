"""Issue 18: ``bench.decided`` remembers the decisions it was given to measure, the same
ones the server makes, and undoes itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bench import decided
from bot.app import build
from bot.clock import FakeClock
from bot.settings import default_settings
from bot.triage import Triage, TriageContext
from kb.matcher import Matcher

QUESTION = "Qual o horário de atendimento de vocês?"
ASKS = "quero falar com um atendente humano"


@pytest.fixture
def parts() -> Iterator[tuple[Matcher, Triage]]:
    engine = build(default_settings()).engine.parts
    yield engine.matcher, engine.triage


def _ctx(text: str, clock: FakeClock, **changes: object) -> TriageContext:
    fields: dict[str, object] = {"text": text, "channel": "telegram", "now": clock.now()}
    return TriageContext(**{**fields, **changes})  # type: ignore[arg-type]


def test_remembered_decisions_are_the_ones_made(parts: tuple[Matcher, Triage]) -> None:
    matcher, triage = parts
    clock = FakeClock()
    plain = (
        matcher.match(QUESTION),
        triage.decide(_ctx(ASKS, clock)),
        triage.human_request(ASKS),
    )
    assert plain[0].outcome == "answer" and plain[2] is not None  # a real decision each
    forget = decided.remember_decisions()
    try:
        first = (
            matcher.match(QUESTION),
            triage.decide(_ctx(ASKS, clock)),
            triage.human_request(ASKS),
        )
        assert first == plain
        # The second time, the same objects: remembered, not decided again.
        assert matcher.match(QUESTION) is first[0]
        assert triage.decide(_ctx(ASKS, clock)) is first[1]
        assert triage.human_request(ASKS) is first[2]
        # Any other input the rules read decides anew.
        assert triage.decide(_ctx(ASKS, clock, failed_attempts=2)) is not first[1]
        later = clock.now() + timedelta(hours=1)
        assert triage.decide(_ctx(ASKS, clock, now=later)) is not first[1]
        # A new matcher (a publish) remembers nothing of the old one's.
        fresh = build(default_settings()).engine.parts.matcher
        assert fresh.match(QUESTION) is not first[0]
    finally:
        forget()
    assert matcher.match(QUESTION) is not matcher.match(QUESTION)  # undone
    assert Matcher.match is not None and "remembered" not in Matcher.match.__name__


def test_memory_is_bounded(parts: tuple[Matcher, Triage], monkeypatch: pytest.MonkeyPatch) -> None:
    matcher, _ = parts
    monkeypatch.setattr(decided, "REMEMBERED", 3)
    forget = decided.remember_decisions()
    try:
        first = matcher.match("boleto 1")
        for n in range(2, 5):
            matcher.match(f"boleto {n}")
        assert matcher.match("boleto 4") is matcher.match("boleto 4")
        assert matcher.match("boleto 1") is not first  # the oldest went
    finally:
        forget()


def test_refuses_workers() -> None:
    assert decided.main(["serve", "--workers", "2"]) == 2
