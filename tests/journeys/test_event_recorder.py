"""One event recorder (issue 10): every event of a whole journey, delivery failures
included, reaches a subscriber, in the order the store keeps them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.errors import DeliveryError
from bot.models import Event, EventKind
from bot.settings import default_settings
from tests.journeys.harness import JOURNEY_KB, Journey


@pytest.fixture
def journey() -> Journey:
    settings = default_settings()
    return Journey(replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,))))


class BrokenWorkspace:
    """An agent workspace whose every call fails (Slack down)."""

    async def ticket_opened(self, view: object) -> None:
        raise ConnectionError("workspace down")

    async def ticket_changed(self, view: object, change: object) -> None:
        raise ConnectionError("workspace down")

    async def customer_message(self, view: object, message: object) -> None:
        raise ConnectionError("workspace down")


async def test_a_subscriber_sees_every_event_of_a_whole_journey(journey: Journey) -> None:
    seen: list[Event] = []

    async def listener(event: Event) -> None:
        seen.append(event)

    journey.escala.recorder.subscribe(listener)
    journey.escala.workspaces.add(BrokenWorkspace())
    telegram = journey.channels["telegram"]

    # KB answer, "did not help", handoff to N1.
    await journey.say("qual o prazo de entrega?")
    await journey.say("Não")
    number = journey.workspace.opened[0].ticket.number
    # Claim, a reply that does not reach the customer, escalate, claim, resolve, CSAT.
    assert (await journey.desk.claim("ana", number)).ok
    telegram.fail_with = DeliveryError("telegram", "forbidden: bot was blocked", permanent=True)
    assert (await journey.desk.reply("ana", number, "Vou verificar.")).ok
    telegram.fail_with = None
    assert (await journey.desk.escalate("ana", number, "N2", "needs a specialist")).ok
    assert (await journey.desk.claim("bruno", number)).ok
    assert (await journey.desk.resolve("bruno", number)).ok
    await journey.say("5")

    stored = await journey.escala.store.events()
    assert [e.id for e in seen] == [e.id for e in stored]
    kinds = [e.kind for e in seen]
    for kind in (
        EventKind.MESSAGE_IN,
        EventKind.KB_ANSWERED,
        EventKind.TRIAGED,
        EventKind.HANDOFF,
        EventKind.CLAIMED,
        EventKind.AGENT_REPLY,
        EventKind.ESCALATED,
        EventKind.RESOLVED,
        EventKind.CSAT_ASKED,
        EventKind.CSAT_RECORDED,
        EventKind.DELIVERY_FAILED,
    ):
        assert kind in kinds, f"{kind} never reached the subscriber"
    assert all(isinstance(kind, EventKind) for kind in kinds)
    failures = [e for e in seen if e.kind == EventKind.DELIVERY_FAILED]
    # The customer's channel refused the agent's reply ...
    assert any("bot was blocked" in str(e.data["reason"]) for e in failures)
    # ... and the broken workspace failed on every ticket it was told of.
    assert any(e.data.get("workspace") == "BrokenWorkspace" for e in failures)
    assert kinds.index(EventKind.HANDOFF) < kinds.index(EventKind.CLAIMED)
    assert kinds.index(EventKind.ESCALATED) < kinds.index(EventKind.RESOLVED)


async def test_a_failing_listener_never_breaks_the_turn(journey: Journey) -> None:
    async def broken(event: Event) -> None:
        raise RuntimeError("metrics exporter bug")

    seen: list[str] = []

    async def after(event: Event) -> None:
        seen.append(event.kind)

    journey.escala.recorder.subscribe(broken)
    journey.escala.recorder.subscribe(after)
    replies = await journey.say("qual o prazo de entrega?")
    assert replies, "the customer got no answer"
    assert EventKind.KB_ANSWERED in seen


async def test_unsubscribed_listeners_hear_nothing_more(journey: Journey) -> None:
    seen: list[str] = []

    async def listener(event: Event) -> None:
        seen.append(event.kind)

    unsubscribe = journey.escala.recorder.subscribe(listener)
    await journey.say("qual o prazo de entrega?")
    heard = len(seen)
    assert heard > 0
    unsubscribe()
    await journey.say("obrigado")
    assert len(seen) == heard


async def test_only_typed_event_kinds_are_recorded(journey: Journey) -> None:
    with pytest.raises(TypeError):
        await journey.escala.recorder.record("made.up")  # type: ignore[arg-type]
    assert await journey.escala.store.events() == []
