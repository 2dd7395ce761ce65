"""Issue 3: the store fails half-way through a turn; the provider's retry of the same
message leaves one copy of every transcript line (nothing half-written remains)."""

from __future__ import annotations

import pytest

from bot.clock import stable_id
from bot.errors import StoreUnavailable
from bot.models import Conversation, Direction, Message
from bot.store import Lease, Store
from tests.journeys.harness import Journey


async def transcript(store: Store) -> list[Message]:
    return await store.transcript(stable_id("cnv", "telegram", "1001"))


async def test_a_retried_turn_writes_each_transcript_line_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = Journey(store=store)
    await journey.say("oi", message_id="m-1")
    save = store.save_conversation
    failures = iter([StoreUnavailable("connection reset")])

    async def save_fails_once(conversation: Conversation, lease: Lease) -> None:
        for failure in failures:
            raise failure
        await save(conversation, lease)

    monkeypatch.setattr(store, "save_conversation", save_fails_once)
    with pytest.raises(StoreUnavailable):  # the adapter answers 503: the provider retries
        await journey.say("qual o horário de atendimento?", message_id="m-2")
    written = [(m.direction, m.text) for m in await transcript(store)]

    replies = await journey.say("qual o horário de atendimento?", message_id="m-2")

    assert replies, "the retry is processed, not dropped as a duplicate"
    after = [(m.direction, m.text) for m in await transcript(store)]
    assert after == written, "the retry wrote no line a second time"
    questions = [t for d, t in after if d is Direction.INBOUND]
    assert questions == ["oi", "qual o horário de atendimento?"]
    assert any("Atendemos" in t for d, t in after if d is Direction.BOT)
