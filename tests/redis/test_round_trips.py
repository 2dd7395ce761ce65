"""Issue 18: Redis round trips per customer message, counted on the wire.

A turn is two store steps (the lock with its reads; the commit with the unlock); a
handoff adds one desk step. Delivering the replies adds one acknowledgement once the
channel accepted them (the durable outbox, issue 11), which rides on the next turn's
pipeline when one comes soon enough (alone otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.exceptions

from bot.app import Escala, build
from bot.clock import FakeClock, SequentialIds, stable_id
from bot.errors import StoreUnavailable
from bot.models import InboundMessage, OutboundMessage, OutboxItem
from bot.settings import default_settings
from bot.store.base import OutboxAck, TurnWrite
from bot.store.redis import RedisStore
from channels.sending import RetryingSender
from tests.journeys.harness import RecordingChannel
from tests.redis.counting import RoundTrips, counting_client
from tests.waits import eventually


@pytest.fixture
async def counted(redis_url: str) -> AsyncIterator[tuple[Escala, RoundTrips, RoundTrips]]:
    trips = RoundTrips()
    store = RedisStore(counting_client(redis_url, trips))
    await store.redis.flushdb()
    await store.load_scripts()  # as open_store does at start-up
    acks = RoundTrips()  # the outbox's acks: one round trip per batch
    ack = store.ack_outboxes

    async def counted_ack(batch: Sequence[OutboxAck]) -> list[int]:
        acks.count += 1
        return await ack(batch)

    store.ack_outboxes = counted_ack  # type: ignore[method-assign,assignment]
    clock = FakeClock()
    escala = build(default_settings(), store=store, clock=clock, ids=SequentialIds())
    escala.outbox.register("telegram", RecordingChannel("telegram"))
    yield escala, trips, acks
    await store.close()


async def say(escala: Escala, text: str, n: int) -> None:
    await escala.engine.handle(
        InboundMessage(
            channel="telegram",
            address="1001",
            text=text,
            provider_message_id=f"m{n}",
            received_at=FakeClock().now(),
            locale="pt-BR",
        )
    )


async def test_round_trips_per_message(counted: tuple[Escala, RoundTrips, RoundTrips]) -> None:
    escala, trips, acks = counted
    await say(escala, "oi", 1)  # the first message creates contact and conversation
    trips.count = acks.count = 0

    await say(escala, "qual o horário de atendimento?", 2)
    assert (trips.count - acks.count, acks.count) == (2, 1), "KB answer: 2 store steps + 1 ack"

    trips.count = acks.count = 0
    await say(escala, "quero falar com um atendente", 3)
    assert (trips.count - acks.count, acks.count) == (3, 1), "handoff: 3 store steps + 1 ack"

    trips.count = acks.count = 0
    await say(escala, "alguém aí?", 4)
    assert (trips.count, acks.count) == (2, 0), "a relay to agents sends nothing"

    trips.count = 0
    await say(escala, "alguém aí?", 4)
    assert trips.count == 1, "a duplicate: one trip, no lock"


async def test_queued_replies_of_a_turn_are_acked_in_one_trip(
    counted: tuple[Escala, RoundTrips, RoundTrips],
) -> None:
    """A channel that delivers in the background (Telegram, Twilio, web chat: the
    RetryingSender) ends each reply on its own; the turn's replies are still acked
    together, once the last is delivered."""
    escala, trips, acks = counted
    delivered: list[str] = []

    async def render(message: OutboundMessage, locale: str) -> list[str]:
        return [message.text]

    async def deliver(address: str, part: str) -> None:
        delivered.append(part)

    sender = RetryingSender("telegram", render=render, deliver=deliver, port=escala.edge)
    escala.outbox.register("telegram", sender)
    conversation = stable_id("cnv", "telegram", "1001")

    polls = 0

    async def outbox_empty() -> bool:  # one round trip per poll, counted out below
        nonlocal polls
        polls += 1
        return await escala.store.outbox(conversation) == []

    await say(escala, "oi", 1)
    await eventually(outbox_empty, "the greeting delivered and acked")
    trips.count = acks.count = polls = 0
    before = len(delivered)

    await say(escala, "qual o horário de atendimento?", 2)
    await eventually(lambda: len(delivered) - before == 2, "the answer and 'did this help?'")
    await eventually(outbox_empty, "both acked")
    assert (trips.count - acks.count - polls, acks.count) == (2, 1), "2 steps + 1 ack"


async def test_acks_that_end_together_share_one_round_trip(
    counted: tuple[Escala, RoundTrips, RoundTrips],
) -> None:
    """Deliveries of several conversations that end while an ack is on its way are acked
    together, in one round trip (group commit): on a busy process, under one per message."""
    escala, trips, acks = counted
    outbox = escala.outbox
    items = {cid: await _queued(escala, cid) for cid in ("cnv_a", "cnv_b", "cnv_c")}
    trips.count = acks.count = 0
    lefts = await asyncio.gather(
        *(outbox._ack(cid, [item_id], None) for cid, item_id in items.items())
    )
    assert lefts == [0, 0, 0]
    assert (trips.count, acks.count) == (1, 1), "three acks, one round trip"
    for cid in items:
        assert await escala.store.outbox(cid) == []


async def _queued(escala: Escala, conversation_id: str) -> str:
    """One reply stored in ``conversation_id``'s outbox, leased by this process."""
    item = _item(conversation_id, f"out.{conversation_id}")
    write = TurnWrite(conversation_id, outbox=[item], unlock=False)
    escala.outbox.prepare(write)
    committed = await escala.store.commit_turn(write)
    assert committed.outbox_leased
    return item.id


def _item(conversation_id: str, item_id: str) -> OutboxItem:
    return OutboxItem(
        id=item_id,
        conversation_id=conversation_id,
        channel="telegram",
        address="42",
        locale="pt-BR",
        text="resposta",
        created_at=FakeClock().now(),
    )


async def test_acks_ride_on_the_next_turn(
    counted: tuple[Escala, RoundTrips, RoundTrips],
) -> None:
    """On a busy process, an ack waits (briefly) for the next turn's pipeline and rides
    on it: delivering replies then costs no round trip of its own, and a KB answer
    costs two in all."""
    escala, trips, _ = counted
    store = escala.store
    assert isinstance(store, RedisStore)
    conversation = stable_id("cnv", "telegram", "1001")
    item_id = await _queued(escala, "cnv_a")
    await say(escala, "oi", 1)
    await eventually(lambda: _empty(escala, conversation), "the greeting delivered and acked alone")
    store.ack_ride_seconds = 600.0  # from here, only a turn (or close) takes acks along
    trips.count = 0

    ack = asyncio.create_task(
        store.ack_outboxes([OutboxAck("cnv_a", escala.outbox.token, [item_id], None)])
    )
    await eventually(lambda: bool(store._riders), "the ack waiting for a ride")
    assert not ack.done() and trips.count == 0

    await say(escala, "qual o horário de atendimento?", 2)  # another conversation's turn
    assert await asyncio.wait_for(ack, 60) == [0], "acked on the turn's first step"
    assert trips.count == 2, "the turn's two steps carried the ack: no trip of its own"
    assert await store.outbox("cnv_a") == []
    # The turn's own replies wait for the next turn (or close) now.
    assert store._riders and await store.outbox(conversation) != []


async def _empty(escala: Escala, conversation_id: str) -> bool:
    return await escala.store.outbox(conversation_id) == []


async def test_waiting_acks_go_when_the_store_closes(redis_url: str) -> None:
    store = await _lone_store(redis_url)
    ack = asyncio.create_task(store.ack_outboxes([OutboxAck("cnv_z", "tok", ["out.1"], None)]))
    await eventually(lambda: bool(store._riders), "the ack waiting for a ride")
    await store.close()
    assert await asyncio.wait_for(ack, 60) == [0]
    await _assert_acked(redis_url)


async def test_acks_on_a_cancelled_turn_wait_for_another_ride(redis_url: str) -> None:
    """A turn cancelled while its pipeline is out (shutdown, a client gone) does not
    fail the acks riding on it: they wait for the next ride (an ack that reached Redis
    anyway changes nothing the second time)."""
    store = await _lone_store(redis_url)
    ack = asyncio.create_task(store.ack_outboxes([OutboxAck("cnv_z", "tok", ["out.1"], None)]))
    await eventually(lambda: bool(store._riders), "the ack waiting for a ride")
    real = store._many_replies_pipeline
    stuck = asyncio.Event()

    def stuck_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real(*args, **kwargs)

        async def execute(*args: Any, **kwargs: Any) -> Any:
            await asyncio.Event().wait()  # never answers

        pipe.execute = execute
        stuck.set()
        return pipe

    store._many_replies_pipeline = stuck_pipeline  # type: ignore[method-assign]
    turn = asyncio.create_task(store.commit_turn(TurnWrite("cnv_y", unlock=False)))
    await eventually(lambda: stuck.is_set() and not store._riders, "the ack on the turn")
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)
    assert not ack.done() and store._riders, "back in line, not failed"
    store._many_replies_pipeline = real  # type: ignore[method-assign]
    await store.close()  # the waiting ack goes now
    assert await asyncio.wait_for(ack, 60) == [0]
    await _assert_acked(redis_url)


async def _lone_store(redis_url: str) -> RedisStore:
    """A store with one reply (``out.1``) in ``cnv_z``'s outbox, leased by ``tok``,
    whose acks only go with a turn or on close."""
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    await store.load_scripts()
    store.ack_ride_seconds = 600.0
    write = TurnWrite("cnv_z", outbox=[_item("cnv_z", "out.1")], unlock=False, outbox_token="tok")
    assert (await store.commit_turn(write)).outbox_leased
    return store


async def _assert_acked(redis_url: str) -> None:
    check = RedisStore.from_url(redis_url)
    try:
        assert await check.outbox("cnv_z") == []
    finally:
        await check.close()


async def test_turns_of_several_conversations_at_once_share_round_trips(
    counted: tuple[Escala, RoundTrips, RoundTrips],
) -> None:
    """Group commit: turns that reach their store step in the same loop iteration go
    to Redis in one pipeline, so five customers asking at once cost the round trips of
    one, and each still gets its own answer."""
    escala, trips, acks = counted
    store = escala.store
    assert isinstance(store, RedisStore)
    store.ack_ride_seconds = 600.0  # acks ride on later turns: only the turns' own trips
    customers = [f"20{n}" for n in range(5)]

    async def ask(address: str, text: str, n: int) -> None:
        await escala.engine.handle(
            InboundMessage(
                channel="telegram",
                address=address,
                text=text,
                provider_message_id=f"{address}-{n}",
                received_at=FakeClock().now(),
                locale="pt-BR",
            )
        )

    await asyncio.gather(*(ask(a, "oi", 1) for a in customers))
    trips.count = acks.count = 0
    await asyncio.gather(*(ask(a, "qual o horário de atendimento?", 2) for a in customers))
    # (the acks of the replies ride on these pipelines: no trips of their own)
    assert trips.count == 2, "five turns: one grouped lock step, one grouped commit"
    for address in customers:
        transcript = await store.transcript(stable_id("cnv", "telegram", address))
        texts = [m.text for m in transcript]
        assert texts.count("qual o horário de atendimento?") == 1
        answers = [t for t in texts if t.startswith("Atendemos de segunda a sexta")]
        assert len(answers) == 1, texts  # its own answer, once

    store.group_steps = False  # the same, each step alone
    trips.count = acks.count = 0
    await asyncio.gather(*(ask(a, "qual o horário de atendimento?", 3) for a in customers))
    assert trips.count == 10, "alone: two steps per turn"


async def test_a_step_cancelled_before_its_group_goes_is_left_out(redis_url: str) -> None:
    store = await _lone_store(redis_url)
    first = asyncio.create_task(store.commit_turn(_write("cnv_first")))

    async def cancel_first() -> None:  # runs in the same iteration, after first joined
        first.cancel()

    second = asyncio.create_task(store.commit_turn(_write("cnv_second")))
    await asyncio.gather(cancel_first(), second)
    assert first.cancelled()
    assert (await second).outbox_leased
    assert await store.outbox("cnv_first") == [], "the cancelled step never reached Redis"
    assert [i.id for i in await store.outbox("cnv_second")] == ["out.cnv_second"]
    await store.close()


async def test_a_failed_group_fails_each_of_its_steps(redis_url: str) -> None:
    store = await _lone_store(redis_url)
    real = store._many_replies_pipeline

    def broken_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real(*args, **kwargs)

        async def execute(*args: Any, **kwargs: Any) -> Any:
            raise redis.exceptions.ConnectionError("connection reset by peer")

        pipe.execute = execute
        return pipe

    store._many_replies_pipeline = broken_pipeline  # type: ignore[method-assign]
    results = await asyncio.gather(
        store.commit_turn(_write("cnv_a")),
        store.commit_turn(_write("cnv_b")),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [StoreUnavailable, StoreUnavailable]
    assert all("connection reset by peer" in str(r) for r in results)
    store._many_replies_pipeline = real  # type: ignore[method-assign]
    assert await store.outbox("cnv_a") == await store.outbox("cnv_b") == []
    await store.close()


def _write(conversation_id: str) -> TurnWrite:
    item = _item(conversation_id, f"out.{conversation_id}")
    return TurnWrite(conversation_id, outbox=[item], unlock=False, outbox_token="tok")


async def test_steps_that_come_while_a_group_is_out_go_together_next(redis_url: str) -> None:
    """Self-clocking: while a group waits for Redis, the steps that come form the next
    one, sent as soon as the answer is in (the busier, the larger the groups)."""
    store = await _lone_store(redis_url)
    real = store._many_replies_pipeline
    sizes: list[int] = []
    answer = asyncio.Event()

    def held_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real(*args, **kwargs)
        execute = pipe.execute

        async def held(*args: Any, **kwargs: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            if len(sizes) == 1:
                await answer.wait()  # the first group's answer is slow
            return await execute(*args, **kwargs)

        pipe.execute = held
        return pipe

    store._many_replies_pipeline = held_pipeline  # type: ignore[method-assign]
    first = asyncio.create_task(store.commit_turn(_write("cnv_1")))
    await eventually(lambda: len(sizes) == 1, "the first group out")
    later = [asyncio.create_task(store.commit_turn(_write(f"cnv_{n}"))) for n in (2, 3, 4)]
    await eventually(lambda: len(store._group) == 3, "the later steps waiting")
    await asyncio.sleep(0)  # a loop iteration: nothing else goes while the group is out
    assert len(sizes) == 1, "the later steps wait for the group out"
    answer.set()
    await asyncio.gather(first, *later)
    assert sizes == [sizes[0], 3 * sizes[0]], "one group of one, then one of three"
    for n in (1, 2, 3, 4):
        assert [i.id for i in await store.outbox(f"cnv_{n}")] == [f"out.cnv_{n}"]
    store._many_replies_pipeline = real  # type: ignore[method-assign]
    await store.close()
