"""Issue 3 / issue 18: the store fails at a turn's commit; the provider's retry of the
same message leaves one copy of every transcript line (nothing half-written remains)."""

from __future__ import annotations

import pytest

from bot.clock import stable_id
from bot.errors import StoreUnavailable
from bot.models import Direction, Message
from bot.store import Store
from bot.store.base import Committed, TurnWrite
from tests.journeys.harness import Journey


async def transcript(store: Store) -> list[Message]:
    return await store.transcript(stable_id("cnv", "telegram", "1001"))


@pytest.mark.parametrize("written_before_failing", [False, True])
async def test_a_retried_turn_writes_each_transcript_line_once(
    store: Store, monkeypatch: pytest.MonkeyPatch, written_before_failing: bool
) -> None:
    journey = Journey(store=store)
    await journey.say("oi", message_id="m-1")
    before = [(m.direction, m.text) for m in await transcript(store)]
    commit = store.commit_turn
    failures = iter([StoreUnavailable("connection reset")])

    async def commit_fails_once(write: TurnWrite) -> Committed:
        for failure in failures:
            if written_before_failing:  # the reply to the commit was lost, not the commit
                await commit(write)
            raise failure
        return await commit(write)

    monkeypatch.setattr(store, "commit_turn", commit_fails_once)
    with pytest.raises(StoreUnavailable):  # the adapter answers 503: the provider retries
        await journey.say("qual o horário de atendimento?", message_id="m-2")
    failed = [(m.direction, m.text) for m in await transcript(store)]
    if not written_before_failing:
        assert failed == before, "a turn whose commit failed wrote nothing"

    replies = await journey.say("qual o horário de atendimento?", message_id="m-2")

    after = [(m.direction, m.text) for m in await transcript(store)]
    questions = [t for d, t in after if d is Direction.INBOUND]
    assert questions == ["oi", "qual o horário de atendimento?"]
    answers = [t for d, t in after if d is Direction.BOT and "Atendemos" in t]
    assert len(answers) == 1, "the retry wrote no line a second time"
    if written_before_failing:
        assert not replies, "the committed turn's retry is a duplicate"
        assert after == failed
    else:
        assert replies, "the retry is processed, not dropped as a duplicate"
