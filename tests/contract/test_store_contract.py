"""The store contract (:mod:`bot.store.base`), one suite run against every backend.

Time never passes in these tests: expiry is forced through :class:`Expire` (the
memory store's injected monotonic clock moves; in Redis the expiring key is deleted,
which is what expiry does), and the Redis-only tests check the TTLs themselves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from redis.crc import key_slot

from bot.errors import LockLost, StoreUnavailable
from bot.models import (
    Choice,
    Contact,
    Conversation,
    Direction,
    Event,
    EventKind,
    Identity,
    Message,
    OutboxItem,
    Priority,
    Ticket,
    TicketState,
)
from bot.sla import waiting_for_first_response
from bot.store import ChangeError, Lease, MemoryStore, Store
from bot.store.base import RECENT_IDS, OutboxAck, TurnWrite
from bot.store.codec import from_json
from bot.store.redis import Keys, RedisStore
from flows.position import FlowPosition
from tests.conftest import FakeMonotonic
from tests.waits import PATIENCE

T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
_numbers = itertools.count(1001)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ticket(
    ticket_id: str,
    *,
    tier: str = "n1",
    priority: Priority = Priority.NORMAL,
    queued_at: datetime = T0,
    number: int | None = None,
) -> Ticket:
    return Ticket(
        id=ticket_id,
        number=next(_numbers) if number is None else number,
        conversation_id=f"cnv_{ticket_id}",
        tier=tier,
        priority=priority,
        state=TicketState.QUEUED,
        created_at=queued_at,
        queued_at=queued_at,
        reasons=("pediu um humano", "cobrança ❗"),
        tier_history=(tier,),
    )


def conversation(conversation_id: str = "cnv_1", **changes: object) -> Conversation:
    base = Conversation(
        id=conversation_id,
        contact_id="ct_1",
        channel="telegram",
        address="42",
        locale="pt-BR",
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def message(n: int, conversation_id: str = "cnv_1") -> Message:
    return Message(f"msg_{n}", conversation_id, Direction.INBOUND, f"olá {n}", at(n))


class Expire:
    """Makes a TTL run out now, without waiting for it."""

    def __init__(self, store: Store, monotonic: FakeMonotonic | None) -> None:
        self.store = store
        self.monotonic = monotonic

    async def lock(self, conversation_id: str) -> None:
        await self._expire(lambda keys: keys.lock(conversation_id))

    async def seen(self, key: str) -> None:
        await self._expire(lambda keys: keys.seen(key))

    async def _expire(self, key_of: Callable[[Keys], str]) -> None:
        if isinstance(self.store, RedisStore):
            await self.store.redis.delete(key_of(self.store.keys))
        else:
            assert self.monotonic is not None
            self.monotonic.advance(3600)


@pytest.fixture
def expire(store: Store, request: pytest.FixtureRequest) -> Expire:
    monotonic = request.getfixturevalue("monotonic") if isinstance(store, MemoryStore) else None
    return Expire(store, monotonic)


async def open_tickets(store: Store, *tickets: Ticket) -> None:
    for t in tickets:
        await store.open_ticket(t)


def ids(tickets: list[Ticket]) -> list[str]:
    return [t.id for t in tickets]


# -- dedupe and numbering ------------------------------------------------------------


async def test_mark_seen_is_true_once_then_false_until_expiry(store: Store, expire: Expire) -> None:
    assert not await store.is_seen("in:telegram:1")
    assert await store.mark_seen("in:telegram:1", 60) is True
    assert await store.mark_seen("in:telegram:1", 60) is False
    assert await store.is_seen("in:telegram:1")
    assert await store.mark_seen("in:telegram:2", 60) is True

    await expire.seen("in:telegram:1")

    assert not await store.is_seen("in:telegram:1")
    assert await store.mark_seen("in:telegram:1", 60) is True


async def test_memory_seen_key_lives_exactly_its_ttl(monotonic: FakeMonotonic) -> None:
    store = MemoryStore(monotonic=monotonic)
    assert await store.mark_seen("k", 10)
    monotonic.advance(9.9)
    assert await store.is_seen("k") and not await store.mark_seen("k", 10)
    monotonic.advance(0.1)
    assert not await store.is_seen("k")
    assert await store.mark_seen("k", 10)


async def test_redis_seen_key_carries_its_ttl(redis_store: RedisStore) -> None:
    assert await redis_store.mark_seen("k", 1)
    ttl = await redis_store.redis.pttl(redis_store.keys.seen("k"))
    assert 0 < ttl <= 1000


async def test_ticket_numbers_are_unique_and_increasing(store: Store) -> None:
    first = await store.next_ticket_number()
    second = await store.next_ticket_number()
    assert second > first >= 1

    numbers = await asyncio.gather(*(store.next_ticket_number() for _ in range(200)))

    assert len(set(numbers)) == 200
    assert min(numbers) > second


# -- contacts and conversations ----------------------------------------------------


async def test_contacts_are_found_by_id_and_by_each_identity(store: Store) -> None:
    telegram, phone = Identity("telegram", "42"), Identity("whatsapp", "+5511999990000")
    contact = Contact(
        "ct_1", (telegram, phone), "en", "Ana", MappingProxyType({"plan": "gold"}), opted_out=True
    )
    assert await store.get_contact("ct_1") is None
    assert await store.find_contact(telegram) is None

    await store.save_contact(contact)

    assert await store.get_contact("ct_1") == contact
    assert await store.find_contact(telegram) == contact
    assert await store.find_contact(phone) == contact
    assert await store.find_contact(Identity("sms", "42")) is None

    renamed = replace(contact, name="Ana Maria")
    await store.save_contact(renamed)
    assert await store.find_contact(phone) == renamed


async def test_conversations_are_found_by_id_and_by_channel_and_address(store: Store) -> None:
    saved = conversation(
        flow=FlowPosition("password_reset", "ask_email", MappingProxyType({"email": "a@b.c"}), 1),
        pending_choices=(Choice("yes", "Sim"), Choice("no", "Não")),
        ticket_id="tkt_1",
        tags=("vip",),
        failed_attempts=2,
    )
    assert await store.find_conversation("telegram", "42") is None
    lease = await store.try_lock(saved.id, 30)
    assert lease is not None

    await store.save_conversation(saved, lease)

    assert await store.get_conversation("cnv_1") == saved
    assert await store.find_conversation("telegram", "42") == saved
    assert await store.find_conversation("sms", "42") is None
    assert await store.get_conversation("cnv_2") is None


async def test_save_conversation_needs_the_lease_of_that_conversation(store: Store) -> None:
    other = await store.try_lock("cnv_2", 30)
    assert other is not None
    with pytest.raises(LockLost):
        await store.save_conversation(conversation("cnv_1"), other)
    with pytest.raises(LockLost):
        await store.save_conversation(conversation("cnv_1"), Lease("cnv_1", 1))
    assert await store.get_conversation("cnv_1") is None


async def test_a_stale_lease_cannot_overwrite_the_next_holder(store: Store, expire: Expire) -> None:
    lease_a = await store.try_lock("cnv_1", 0.05)
    assert lease_a is not None
    await store.save_conversation(conversation(failed_attempts=1), lease_a)
    await expire.lock("cnv_1")
    lease_b = await store.try_lock("cnv_1", 30)
    assert lease_b is not None and lease_b.token > lease_a.token

    with pytest.raises(LockLost) as lost:
        await store.save_conversation(conversation(failed_attempts=99), lease_a)
    await store.save_conversation(conversation(failed_attempts=2), lease_b)

    assert lost.value.token == lease_a.token
    stored = await store.get_conversation("cnv_1")
    assert stored is not None and stored.failed_attempts == 2


async def test_save_after_unlock_is_refused(store: Store) -> None:
    lease = await store.try_lock("cnv_1", 30)
    assert lease is not None
    await store.unlock(lease)
    with pytest.raises(LockLost):
        await store.save_conversation(conversation(), lease)


# -- transcript and events ------------------------------------------------------------


async def test_transcript_keeps_order_and_returns_the_last_limit(store: Store) -> None:
    for n in range(1, 6):
        await store.append_message(message(n))
    await store.append_message(message(9, "cnv_2"))

    assert await store.transcript("cnv_1") == [message(n) for n in range(1, 6)]
    assert await store.transcript("cnv_1", limit=2) == [message(4), message(5)]
    assert await store.transcript("cnv_1", limit=50) == [message(n) for n in range(1, 6)]
    assert await store.transcript("cnv_1", limit=0) == []
    assert await store.transcript("cnv_2") == [message(9, "cnv_2")]
    assert await store.transcript("cnv_3") == []


async def test_a_message_id_already_written_recently_is_not_written_again(store: Store) -> None:
    """A turn retried after a store failure rewrites its lines with the same ids."""
    for n in (1, 2, 1, 2, 12):
        await store.append_message(message(n))
    retried = replace(message(1), text="a different text, same id")
    await store.append_message(retried)

    assert [m.id for m in await store.transcript("cnv_1")] == ["msg_1", "msg_2", "msg_12"]
    assert (await store.transcript("cnv_1"))[0] == message(1)
    await store.append_message(message(1, "cnv_2"))  # the window is per conversation
    assert await store.transcript("cnv_2") == [message(1, "cnv_2")]


async def test_the_same_id_far_back_is_written_again(store: Store) -> None:
    """Only the last RECENT_IDS messages are looked at: the check stays O(1)."""
    for n in range(1, RECENT_IDS + 2):
        await store.append_message(message(n))
    await store.append_message(message(1))
    ids = [m.id for m in await store.transcript("cnv_1")]
    assert ids == [f"msg_{n}" for n in range(1, RECENT_IDS + 2)] + ["msg_1"]


@pytest.fixture(params=["memory", "redis"])
async def bounded_store(
    request: pytest.FixtureRequest, monotonic: FakeMonotonic
) -> AsyncIterator[Store]:
    """Each backend with a transcript bound of 3 hot + 4 archived messages (7 kept)."""
    if request.param == "memory":
        yield MemoryStore(monotonic=monotonic, max_transcript_messages=7)
        return
    redis_url: str = request.getfixturevalue("redis_url")
    store = RedisStore.from_url(redis_url, transcript_hot_messages=3, transcript_archive_messages=4)
    await store.redis.flushdb()
    yield store
    await store.close()


async def test_a_bounded_transcript_keeps_the_most_recent_messages_in_order(
    bounded_store: Store,
) -> None:
    for n in range(1, 6):
        await bounded_store.append_message(message(n))
    assert await bounded_store.transcript("cnv_1") == [message(n) for n in range(1, 6)]

    for n in range(6, 21):
        await bounded_store.append_message(message(n))

    kept = [message(n) for n in range(14, 21)]
    assert await bounded_store.transcript("cnv_1") == kept
    for limit in (1, 3, 4, 6, 7, 8, 100):
        assert await bounded_store.transcript("cnv_1", limit=limit) == kept[-limit:]
    assert await bounded_store.transcript("cnv_1", limit=0) == []


async def test_redis_transcript_overflow_moves_to_a_capped_archive(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, transcript_hot_messages=3, transcript_archive_messages=4)
    try:
        await store.redis.flushdb()
        for n in range(1, 11):
            await store.append_message(message(n))
        hot = await store.redis.lrange(store.keys.messages("cnv_1"), 0, -1)
        archive = await store.redis.lrange(store.keys.archive("cnv_1"), 0, -1)
        assert [from_json(Message, m).id for m in hot] == ["msg_8", "msg_9", "msg_10"]
        assert [from_json(Message, m).id for m in archive] == ["msg_4", "msg_5", "msg_6", "msg_7"]
    finally:
        await store.close()


async def test_redis_without_archive_drops_the_overflow(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, transcript_hot_messages=2, transcript_archive_messages=0)
    try:
        await store.redis.flushdb()
        for n in range(1, 6):
            await store.append_message(message(n))
        assert await store.transcript("cnv_1") == [message(4), message(5)]
        assert not await store.redis.exists(store.keys.archive("cnv_1"))
    finally:
        await store.close()


async def test_redis_conversation_and_ticket_events_are_capped(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, conversation_events_cap=3, events_cap=5)
    try:
        await store.redis.flushdb()
        for n in range(1, 9):
            await store.append_event(
                Event(f"evt_{n}", EventKind.MESSAGE_IN, at(n), "cnv_1", "tkt_1")
            )

        async def event_ids(**where: str) -> list[str]:
            return [e.id for e in await store.events(**where)]

        assert await event_ids(conversation_id="cnv_1") == ["evt_6", "evt_7", "evt_8"]
        assert await event_ids(ticket_id="tkt_1") == ["evt_6", "evt_7", "evt_8"]
        # The stream's cap is approximate (whole nodes of 100): all 8 are still kept
        # (tests/contract/test_event_stream.py covers the cap).
        assert await event_ids() == [f"evt_{n}" for n in range(1, 9)]
    finally:
        await store.close()


def test_redis_store_refuses_bounds_below_one(redis_url: str) -> None:
    for bad in (
        {"transcript_hot_messages": 0},
        {"transcript_archive_messages": -1},
        {"conversation_events_cap": 0},
    ):
        with pytest.raises(ValueError):
            RedisStore.from_url(redis_url, **bad)  # type: ignore[arg-type]


async def test_events_filter_by_conversation_and_by_ticket(store: Store) -> None:
    events = [
        Event("evt_1", EventKind.MESSAGE_IN, at(1), "cnv_1", None, {"channel": "telegram"}),
        Event("evt_2", EventKind.HANDOFF, at(2), "cnv_1", "tkt_1", {"number": 1001}),
        Event("evt_3", EventKind.MESSAGE_IN, at(3), "cnv_2"),
        Event("evt_4", EventKind.CLAIMED, at(4), "cnv_1", "tkt_1", {"agent": "ana"}),
        Event("evt_5", EventKind.HANDOFF, at(5), "cnv_2", "tkt_2"),
        Event("evt_6", "report.daily", at(6)),
    ]
    for event in events:
        await store.append_event(event)

    async def event_ids(**where: str) -> list[str]:
        return [e.id for e in await store.events(**where)]

    assert await store.events() == events
    assert await event_ids(conversation_id="cnv_1") == ["evt_1", "evt_2", "evt_4"]
    assert await event_ids(ticket_id="tkt_1") == ["evt_2", "evt_4"]
    assert await event_ids(conversation_id="cnv_2", ticket_id="tkt_2") == ["evt_5"]
    assert await event_ids(conversation_id="cnv_1", ticket_id="tkt_2") == []
    assert await event_ids(conversation_id="cnv_9") == []


# -- tickets and queues --------------------------------------------------------------


async def test_open_ticket_queues_by_priority_then_age_then_number(store: Store) -> None:
    await open_tickets(
        store,
        ticket("old_normal", queued_at=at(0)),
        ticket("new_urgent", priority=Priority.URGENT, queued_at=at(30)),
        ticket("tie_b", priority=Priority.HIGH, queued_at=at(10), number=5002),
        ticket("tie_a", priority=Priority.HIGH, queued_at=at(10), number=5001),
        ticket("older_high", priority=Priority.HIGH, queued_at=at(9)),
        ticket("a_microsecond_later", queued_at=at(0) + timedelta(microseconds=1)),
        ticket("low", priority=Priority.LOW, queued_at=at(-60)),
        ticket("other_tier", tier="n2", priority=Priority.URGENT),
    )

    assert ids(await store.queue("n1")) == [
        "new_urgent",
        "older_high",
        "tie_a",
        "tie_b",
        "old_normal",
        "a_microsecond_later",
        "low",
    ]
    assert ids(await store.queue("n2")) == ["other_tier"]
    assert await store.queue("n3") == []


async def test_tickets_round_trip_and_are_found_by_number(store: Store) -> None:
    opened = replace(ticket("tkt_1", number=1234), skills=(), private=True)
    await store.open_ticket(opened)

    assert await store.get_ticket("tkt_1") == opened
    assert await store.find_ticket(1234) == opened
    assert await store.get_ticket("tkt_9") is None
    assert await store.find_ticket(9999) is None
    # through a script that rewrites the stored ticket, and back
    claimed = await store.claim("tkt_1", "ana", at(1))
    assert claimed.ticket == replace(opened, state=TicketState.ASSIGNED, assignee="ana")
    assert await store.get_ticket("tkt_1") == claimed.ticket


async def test_open_ticket_of_follows_the_ticket_from_open_to_resolved(store: Store) -> None:
    """Issue 3: whether a human owns a conversation is kept with the ticket, atomically."""
    opened = ticket("tkt_1")
    assert await store.open_ticket_of(opened.conversation_id) is None

    await store.open_ticket(opened)

    assert await store.open_ticket_of(opened.conversation_id) == opened
    assert await store.open_ticket_of("cnv_other") is None
    claimed = await store.claim("tkt_1", "ana", at(1))
    assert await store.open_ticket_of(opened.conversation_id) == claimed.ticket
    escalated = await store.escalate("tkt_1", "n2", at(2))
    assert await store.open_ticket_of(opened.conversation_id) == escalated.ticket
    await store.claim("tkt_1", "bia", at(3))
    released = await store.release("tkt_1", "bia", at(4))
    assert await store.open_ticket_of(opened.conversation_id) == released.ticket
    await store.claim("tkt_1", "ana", at(5))

    await store.resolve("tkt_1", "ana", at(6))

    assert await store.open_ticket_of(opened.conversation_id) is None
    await store.record_csat("tkt_1", 5)
    assert await store.open_ticket_of(opened.conversation_id) is None


async def test_begin_turn_reads_what_the_single_reads_read(store: Store) -> None:
    """The turn's first step gives the same answers as the single reads."""
    identity = Identity("telegram", "42")
    empty = await store.begin_turn("cnv_tkt_1", "in:telegram:u1", identity, 30)
    assert empty is not None and empty.lease is not None
    assert (empty.seen, empty.contact, empty.conversation, empty.open_ticket) == (
        False,
        None,
        None,
        None,
    )
    contact = Contact(id="ct_1", identities=(identity,), locale="en", name="Ana")
    await store.save_contact(contact)
    saved = conversation("cnv_tkt_1")
    await store.save_conversation(saved, empty.lease)
    await store.unlock(empty.lease)
    opened = ticket("tkt_1")
    await store.open_ticket(opened)

    start = await store.begin_turn("cnv_tkt_1", "in:telegram:u2", identity, 30)
    assert start is not None and start.lease is not None
    assert (start.contact, start.conversation, start.open_ticket) == (contact, saved, opened)
    await store.unlock(start.lease)
    merged = Contact(id="ct_other", identities=(identity,), locale="en", name="Ana M.")
    await store.save_contact(merged)  # the identity now points to another contact
    claimed = await store.claim("tkt_1", "ana", at(1))
    start = await store.begin_turn("cnv_tkt_1", "in:telegram:u3", identity, 30)
    assert start is not None and start.open_ticket == claimed.ticket
    assert start.contact == merged


async def test_redis_begin_and_commit_survive_a_script_cache_flush(
    redis_store: RedisStore,
) -> None:
    """After a Redis restart or SCRIPT FLUSH the pipelined EVALSHA gets NOSCRIPT."""
    opened = ticket("tkt_1")
    await redis_store.open_ticket(opened)
    await redis_store.redis.script_flush()

    start = await redis_store.begin_turn("cnv_tkt_1", "in:x", Identity("telegram", "42"), 30)
    assert start is not None and start.lease is not None
    assert start.open_ticket == opened
    await redis_store.redis.script_flush()
    await redis_store.commit_turn(
        TurnWrite("cnv_tkt_1", lease=start.lease, messages=[message(1, "cnv_tkt_1")])
    )
    assert [m.id for m in await redis_store.transcript("cnv_tkt_1")] == ["msg_1"]
    assert await redis_store.try_lock("cnv_tkt_1", 30) is not None, "unlocked"


async def test_open_ticket_of_is_the_conversations_newest_open_ticket(store: Store) -> None:
    first = ticket("tkt_1")
    second = replace(ticket("tkt_2"), conversation_id=first.conversation_id)
    await open_tickets(store, first, ticket("tkt_3"))
    await store.claim("tkt_1", "ana", at(1))

    await store.open_ticket(second)
    assert await store.open_ticket_of(first.conversation_id) == second
    # closing the older ticket does not hide the newer one
    await store.resolve("tkt_1", "ana", at(2))
    assert await store.open_ticket_of(first.conversation_id) == second
    assert await store.open_ticket_of("cnv_tkt_3") == await store.get_ticket("tkt_3")


async def test_open_ticket_refuses_a_ticket_that_is_not_queued(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.open_ticket(replace(ticket("tkt_1"), state=TicketState.ASSIGNED))


async def test_exactly_one_of_100_concurrent_claims_wins(store: Store) -> None:
    await store.open_ticket(ticket("tkt_1"))

    changes = await asyncio.gather(*(store.claim("tkt_1", f"agent_{n}", at(1)) for n in range(100)))

    winners = [c for c in changes if c.ok]
    assert len(winners) == 1
    assert Counter(c.error for c in changes) == {None: 1, ChangeError.ALREADY_CLAIMED: 99}
    winner = winners[0].ticket
    assert winner is not None and winner.state is TicketState.ASSIGNED
    assert await store.get_ticket("tkt_1") == winner
    assert ids(await store.assigned(winner.assignee or "")) == ["tkt_1"]
    assert await store.queue("n1") == []


async def test_claim_refusals(store: Store) -> None:
    missing = await store.claim("nope", "ana", at(0))
    assert missing.error is ChangeError.NOT_FOUND and missing.ticket is None

    await open_tickets(store, ticket("tkt_1"), ticket("tkt_2"), ticket("tkt_3"))
    assert (await store.claim("tkt_1", "ana", at(1), max_open=2)).ok
    assert (await store.claim("tkt_2", "ana", at(1), max_open=2)).ok
    full = await store.claim("tkt_3", "ana", at(1), max_open=2)
    assert full.error is ChangeError.AT_CAPACITY
    assert ids(await store.queue("n1")) == ["tkt_3"]
    assert (await store.claim("tkt_3", "bia", at(1), max_open=2)).ok

    await store.resolve("tkt_1", "ana", at(2))
    done = await store.claim("tkt_1", "bia", at(3))
    assert done.error is ChangeError.NOT_QUEUED
    assert done.ticket is not None and done.ticket.state is TicketState.RESOLVED
    # resolving freed a place
    await store.open_ticket(ticket("tkt_4"))
    assert (await store.claim("tkt_4", "ana", at(3), max_open=2)).ok


async def test_take_next_serves_priority_then_age_across_tiers(store: Store) -> None:
    await open_tickets(
        store,
        ticket("n1_old", tier="n1", queued_at=at(0)),
        ticket("n2_newer", tier="n2", queued_at=at(5)),
        ticket("n1_high", tier="n1", priority=Priority.HIGH, queued_at=at(20)),
        ticket("n3_urgent", tier="n3", priority=Priority.URGENT),
    )
    served = []
    for _ in range(3):
        change = await store.take_next(["n1", "n2"], "ana", at(30))
        assert change.ok and change.ticket is not None
        assert change.ticket.state is TicketState.ASSIGNED and change.ticket.assignee == "ana"
        served.append(change.ticket.id)

    assert served == ["n1_high", "n1_old", "n2_newer"]
    empty = await store.take_next(["n1", "n2"], "ana", at(30))
    assert empty.error is ChangeError.NOT_FOUND and empty.ticket is None
    assert (await store.take_next([], "ana", at(30))).error is ChangeError.NOT_FOUND
    assert ids(await store.queue("n3")) == ["n3_urgent"]


async def test_take_next_respects_max_open(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"), ticket("tkt_2"))
    assert (await store.take_next(["n1"], "ana", at(1), max_open=1)).ok
    full = await store.take_next(["n1"], "ana", at(1), max_open=1)
    assert full.error is ChangeError.AT_CAPACITY
    assert ids(await store.queue("n1")) == ["tkt_2"]


async def test_50_concurrent_take_next_on_10_tickets_give_10_distinct_winners(
    store: Store,
) -> None:
    await open_tickets(store, *(ticket(f"tkt_{n}", queued_at=at(n)) for n in range(10)))

    changes = await asyncio.gather(
        *(store.take_next(["n1"], f"agent_{n}", at(60)) for n in range(50))
    )

    won = [c.ticket for c in changes if c.ok and c.ticket is not None]
    assert sorted(t.id for t in won) == sorted(f"tkt_{n}" for n in range(10))
    assert len({t.assignee for t in won}) == 10
    assert Counter(c.error for c in changes) == {None: 10, ChangeError.NOT_FOUND: 40}
    for t in won:
        assert await store.assigned(t.assignee or "") == [t]
    assert await store.queue("n1") == []


async def test_escalate_moves_queued_and_assigned_tickets_to_the_new_tier(store: Store) -> None:
    await open_tickets(
        store,
        ticket("queued", priority=Priority.HIGH),
        ticket("assigned"),
        ticket("waiting_in_n2", tier="n2", priority=Priority.HIGH, queued_at=at(1)),
    )
    await store.claim("assigned", "ana", at(1))

    moved = await store.escalate("queued", "n2", at(10))
    taken = await store.escalate("assigned", "n2", at(11))

    assert moved.ok and moved.ticket is not None
    assert moved.ticket.tier == "n2" and moved.ticket.state is TicketState.QUEUED
    assert moved.ticket.queued_at == at(10) and moved.ticket.tier_history == ("n1", "n2")
    assert taken.ok and taken.ticket is not None
    assert taken.ticket.assignee is None and taken.ticket.state is TicketState.QUEUED
    assert await store.assigned("ana") == []
    assert await store.queue("n1") == []
    assert ids(await store.queue("n2")) == ["waiting_in_n2", "queued", "assigned"]
    assert await store.get_ticket("assigned") == taken.ticket
    again = await store.escalate("assigned", "n3", at(12))
    assert again.ticket is not None and again.ticket.tier_history == ("n1", "n2", "n3")


async def test_escalated_tickets_queue_by_the_microsecond(store: Store) -> None:
    # the later number escalates first: only the escalation time can put it ahead
    await open_tickets(store, ticket("first", number=9002), ticket("second", number=9001))
    await store.escalate("first", "n2", at(10))
    await store.escalate("second", "n2", at(10) + timedelta(microseconds=1))
    assert ids(await store.queue("n2")) == ["first", "second"]


async def test_escalate_refusals(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"), ticket("tkt_2"))
    assert (await store.escalate("nope", "n2", at(1))).error is ChangeError.NOT_FOUND
    same = await store.escalate("tkt_1", "n1", at(1))
    assert same.error is ChangeError.SAME_TIER and same.ticket == await store.get_ticket("tkt_1")
    await store.claim("tkt_2", "ana", at(1))
    await store.resolve("tkt_2", "ana", at(2))
    assert (await store.escalate("tkt_2", "n2", at(3))).error is ChangeError.NOT_OPEN
    assert ids(await store.queue("n1")) == ["tkt_1"]
    assert await store.queue("n2") == []


async def test_release_puts_the_ticket_back_in_its_place(store: Store) -> None:
    await open_tickets(
        store,
        ticket("first", queued_at=at(0)),
        ticket("second", queued_at=at(1)),
        ticket("urgent", priority=Priority.URGENT, queued_at=at(2)),
    )
    await store.claim("first", "ana", at(5))

    refused = await store.release("first", "bia", at(6))
    assert refused.error is ChangeError.NOT_ASSIGNEE
    assert (await store.release("second", "ana", at(6))).error is ChangeError.NOT_OPEN
    assert (await store.release("nope", "ana", at(6))).error is ChangeError.NOT_FOUND

    released = await store.release("first", "ana", at(6))

    assert released.ok and released.ticket is not None
    assert released.ticket.state is TicketState.QUEUED and released.ticket.assignee is None
    assert released.ticket.queued_at == at(0) and released.ticket.priority is Priority.NORMAL
    assert ids(await store.queue("n1")) == ["urgent", "first", "second"]
    assert await store.assigned("ana") == []


async def test_only_the_assignee_resolves(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"), ticket("tkt_2"))
    assert (await store.resolve("tkt_1", "ana", at(1))).error is ChangeError.NOT_OPEN
    await store.claim("tkt_1", "ana", at(1))
    await store.claim("tkt_2", "ana", at(1))
    assert (await store.resolve("tkt_1", "bia", at(2))).error is ChangeError.NOT_ASSIGNEE
    assert (await store.resolve("nope", "ana", at(2))).error is ChangeError.NOT_FOUND

    resolved = await store.resolve("tkt_1", "ana", at(3))

    assert resolved.ok and resolved.ticket is not None
    assert resolved.ticket.state is TicketState.RESOLVED and resolved.ticket.resolved_at == at(3)
    assert ids(await store.assigned("ana")) == ["tkt_2"]
    assert await store.queue("n1") == []
    assert (await store.resolve("tkt_1", "ana", at(4))).error is ChangeError.NOT_OPEN


async def test_the_customer_closes_a_queued_or_assigned_ticket(store: Store) -> None:
    # issue 12: "cancelar" during a ticket, confirmed
    await open_tickets(store, ticket("waiting"), ticket("claimed"), ticket("other"))
    await store.claim("claimed", "ana", at(1))

    from_queue = await store.close_by_customer("waiting", at(2))
    from_agent = await store.close_by_customer("claimed", at(3))

    assert from_queue.ok and from_queue.ticket is not None
    assert from_queue.ticket.state is TicketState.CLOSED and from_queue.ticket.resolved_at == at(2)
    assert from_agent.ok and from_agent.ticket is not None
    assert from_agent.ticket.state is TicketState.CLOSED
    assert ids(await store.queue("n1")) == ["other"]
    assert await store.assigned("ana") == []
    assert await store.open_ticket_of("cnv_waiting") is None
    assert await store.open_ticket_of("cnv_claimed") is None
    stored = await store.get_ticket("claimed")
    assert stored is not None and stored.state is TicketState.CLOSED
    assert (await store.close_by_customer("waiting", at(4))).error is ChangeError.NOT_OPEN
    assert (await store.close_by_customer("nope", at(4))).error is ChangeError.NOT_FOUND
    # closed tickets are finished tickets: retention prunes them like resolved ones
    assert sorted(await store.prune_tickets(at(10))) == ["claimed", "waiting"]


async def test_first_response_is_kept_once(store: Store) -> None:
    await store.open_ticket(ticket("tkt_1"))
    first = await store.mark_first_response("tkt_1", at(3))
    later = await store.mark_first_response("tkt_1", at(9))

    assert first.ticket is not None and first.ticket.first_response_at == at(3)
    assert later.ok and later.ticket is not None and later.ticket.first_response_at == at(3)
    stored = await store.get_ticket("tkt_1")
    assert stored is not None and stored.first_response_at == at(3)
    assert (await store.mark_first_response("nope", at(1))).error is ChangeError.NOT_FOUND


async def test_a_reply_counted_before_an_escalation_is_never_the_new_tiers_response(
    store: Store,
) -> None:
    """Issue 11: two processes read their clocks before their round trips, so a reply
    the store counted first may carry a later time than the escalation that followed
    it. It belongs to the old stay: the new tier still waits for its first response."""
    await store.open_ticket(ticket("tkt_1"))
    assert (await store.claim("tkt_1", "ana", at(1))).ok
    replied = await store.mark_first_response("tkt_1", at(5), agent_id="ana", tier="n1")
    assert replied.ok
    moved = await store.escalate("tkt_1", "n2", at(4))
    assert moved.ok and moved.ticket is not None
    assert moved.ticket.queued_at == at(4)
    assert moved.ticket.first_response_at == at(5)  # the KPI keeps the reply's own time
    assert waiting_for_first_response(moved.ticket, "n2")
    stored = await store.get_ticket("tkt_1")
    assert stored is not None and waiting_for_first_response(stored, "n2")
    # A reply in the new stay answers it.
    assert (await store.claim("tkt_1", "bruno", at(6))).ok
    answered = await store.mark_first_response("tkt_1", at(7), agent_id="bruno", tier="n2")
    assert answered.ticket is not None
    assert not waiting_for_first_response(answered.ticket, "n2")


async def test_csat_is_recorded_on_a_resolved_ticket_only(store: Store) -> None:
    await store.open_ticket(ticket("tkt_1"))
    assert (await store.record_csat("nope", 5)).error is ChangeError.NOT_FOUND
    assert (await store.record_csat("tkt_1", 5)).error is ChangeError.NOT_OPEN
    await store.claim("tkt_1", "ana", at(1))
    assert (await store.record_csat("tkt_1", 5)).error is ChangeError.NOT_OPEN
    await store.resolve("tkt_1", "ana", at(2))

    scored = await store.record_csat("tkt_1", 4)

    assert scored.ok and scored.ticket is not None
    assert scored.ticket.state is TicketState.CLOSED and scored.ticket.csat == 4
    assert await store.get_ticket("tkt_1") == scored.ticket
    second = await store.record_csat("tkt_1", 1)
    assert second.error is ChangeError.NOT_OPEN
    assert second.ticket is not None and second.ticket.csat == 4


async def test_prune_tickets_forgets_old_finished_tickets_only(store: Store) -> None:
    """Retention: resolved and closed tickets older than the cut-off go, oldest first."""
    made = {name: ticket(name) for name in ("tkt_a", "tkt_b", "tkt_c", "tkt_open", "tkt_q")}
    for t in made.values():
        await store.open_ticket(t)
    for name, resolved_at in (("tkt_b", 20), ("tkt_a", 10), ("tkt_c", 40)):
        await store.claim(name, "ana", at(1))
        await store.resolve(name, "ana", at(resolved_at))
    await store.record_csat("tkt_b", 4)  # closed, still prunable
    await store.claim("tkt_open", "ana", at(2))

    assert await store.prune_tickets(at(30), limit=10) == ["tkt_a", "tkt_b"]

    for gone in ("tkt_a", "tkt_b"):
        assert await store.get_ticket(gone) is None
        assert await store.find_ticket(made[gone].number) is None
    for kept in ("tkt_c", "tkt_open", "tkt_q"):
        assert await store.find_ticket(made[kept].number) == await store.get_ticket(kept)
        assert await store.get_ticket(kept) is not None
    assert ids(await store.queue("n1")) == ["tkt_q"]
    assert ids(await store.assigned("ana")) == ["tkt_open"]
    assert await store.prune_tickets(at(30)) == []
    assert await store.prune_tickets(at(100), limit=0) == []
    assert await store.prune_tickets(at(100), limit=1) == ["tkt_c"]
    assert await store.prune_tickets(at(100)) == []
    assert await store.get_ticket("tkt_open") is not None


async def test_redis_prune_tickets_drops_the_ticket_events_only(redis_store: RedisStore) -> None:
    opened = ticket("tkt_1")
    await redis_store.open_ticket(opened)
    await redis_store.claim("tkt_1", "ana", at(1))
    await redis_store.resolve("tkt_1", "ana", at(2))
    event = Event(
        id="evt_1",
        kind=EventKind.RESOLVED,
        at=at(2),
        conversation_id=opened.conversation_id,
        ticket_id="tkt_1",
    )
    await redis_store.append_event(event)

    assert await redis_store.prune_tickets(at(3)) == ["tkt_1"]

    assert await redis_store.events(ticket_id="tkt_1") == []
    assert await redis_store.events(conversation_id=opened.conversation_id) == [event]
    assert await redis_store.events() == [event]
    keys = redis_store.keys
    assert await redis_store.redis.zcard(keys.resolved) == 0
    # nothing of the ticket is left behind in the desk hashes
    assert not await redis_store.redis.hexists(keys.numbers, str(opened.number))
    assert not await redis_store.redis.hexists(keys.tickets, "tkt_1")
    assert not await redis_store.redis.hexists(keys.scores, "tkt_1")


async def test_assigned_lists_an_agents_open_tickets(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"), ticket("tkt_2"), ticket("tkt_3"))
    for ticket_id in ("tkt_1", "tkt_2"):
        await store.claim(ticket_id, "ana", at(1))
    await store.claim("tkt_3", "bia", at(1))

    assert sorted(ids(await store.assigned("ana"))) == ["tkt_1", "tkt_2"]
    assert ids(await store.assigned("bia")) == ["tkt_3"]
    assert await store.assigned("caio") == []


# -- links -----------------------------------------------------------------------------


async def test_links_are_kept_and_replaced(store: Store) -> None:
    assert await store.get_link("slack:card:tkt_1") is None
    await store.set_link("slack:card:tkt_1", "C042:1700000000.000100")
    await store.set_link("slack:thread:1700000000.000100", "tkt_1")
    assert await store.get_link("slack:card:tkt_1") == "C042:1700000000.000100"
    await store.set_link("slack:card:tkt_1", "C042:1700000001.000200")
    assert await store.get_link("slack:card:tkt_1") == "C042:1700000001.000200"
    assert await store.get_link("slack:thread:1700000000.000100") == "tkt_1"


# -- locks and timers ----------------------------------------------------------------


async def test_try_lock_is_exclusive_and_unlock_frees_it(store: Store) -> None:
    lease = await store.try_lock("cnv_1", 30)
    assert lease is not None and lease.conversation_id == "cnv_1"
    assert await store.try_lock("cnv_1", 30) is None
    assert await store.try_lock("cnv_2", 30) is not None

    await store.unlock(lease)

    again = await store.try_lock("cnv_1", 30)
    assert again is not None and again.token > lease.token


async def test_unlock_with_a_stale_lease_is_a_no_op(store: Store, expire: Expire) -> None:
    stale = await store.try_lock("cnv_1", 0.05)
    assert stale is not None
    await expire.lock("cnv_1")
    holder = await store.try_lock("cnv_1", 30)
    assert holder is not None

    await store.unlock(stale)

    assert await store.try_lock("cnv_1", 30) is None
    await store.save_conversation(conversation(), holder)


async def test_lock_serializes_two_tasks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = asyncio.Event()
    try_lock = store.try_lock

    async def spying_try_lock(conversation_id: str, ttl_seconds: float) -> Lease | None:
        lease = await try_lock(conversation_id, ttl_seconds)
        if lease is None:
            refused.set()
        return lease

    monkeypatch.setattr(store, "try_lock", spying_try_lock)
    trace: list[str] = []
    first_in = asyncio.Event()

    async def first() -> None:
        async with store.lock("cnv_1", poll_seconds=0.001):
            trace.append("first in")
            first_in.set()
            await refused.wait()  # the second task has been turned away at least once
            trace.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with store.lock("cnv_1", poll_seconds=0.001):
            trace.append("second in")

    async with asyncio.timeout(PATIENCE):  # a deadlock fails, a slow machine does not
        await asyncio.gather(first(), second())

    assert trace == ["first in", "first out", "second in"]


async def test_pop_due_hands_out_due_timers_in_order(store: Store) -> None:
    await store.schedule("csat:tkt_2", at(2))
    await store.schedule("csat:tkt_1", at(1))
    await store.schedule("sla:tkt_1", at(10))
    await store.schedule("same_time_b", at(3))
    await store.schedule("same_time_a", at(3))

    assert await store.pop_due(at(0)) == []
    assert await store.pop_due(at(3), limit=3) == ["csat:tkt_1", "csat:tkt_2", "same_time_a"]
    assert await store.pop_due(at(3)) == ["same_time_b"]
    assert await store.pop_due(at(3)) == []
    assert await store.pop_due(at(10)) == ["sla:tkt_1"]


async def test_pop_due_with_a_lease_moves_the_timer_until_it_is_cancelled(store: Store) -> None:
    await store.schedule("sla:tkt_1", at(1))
    await store.schedule("sla:tkt_2", at(2))

    assert await store.pop_due(at(5), lease_until=at(6)) == ["sla:tkt_1", "sla:tkt_2"]

    assert await store.pop_due(at(5)) == []  # leased: nobody else gets them now
    assert await store.cancel_timer("sla:tkt_1", at(6))  # handled: the lease goes
    assert not await store.cancel_timer("sla:tkt_1", at(6))
    await store.schedule("sla:tkt_2", at(9))  # the handler moved it: the lease is gone
    assert not await store.cancel_timer("sla:tkt_2", at(6))
    assert await store.pop_due(at(8)) == []
    assert await store.pop_due(at(9)) == ["sla:tkt_2"]
    assert not await store.cancel_timer("nothing", at(1))


async def test_an_unhandled_lease_fires_again(store: Store) -> None:
    """A sweeper that died holding a timer: the lease hands it out again."""
    await store.schedule("sla:tkt_1", at(1))
    assert await store.pop_due(at(1), lease_until=at(2)) == ["sla:tkt_1"]
    assert await store.pop_due(at(2), lease_until=at(3)) == ["sla:tkt_1"]


async def test_rescheduling_moves_a_timer(store: Store) -> None:
    await store.schedule("sla:tkt_1", at(5))
    await store.schedule("sla:tkt_1", at(20))
    assert await store.pop_due(at(10)) == []
    await store.schedule("sla:tkt_1", at(1) + timedelta(microseconds=1))
    assert await store.pop_due(at(1)) == []
    assert await store.pop_due(at(2)) == ["sla:tkt_1"]
    assert await store.pop_due(at(30)) == []


async def test_each_due_timer_goes_to_one_of_20_concurrent_callers(store: Store) -> None:
    for n in range(50):
        await store.schedule(f"timer_{n}", at(n % 7))
    await store.schedule("later", at(60))

    popped = await asyncio.gather(*(store.pop_due(at(30), limit=5) for _ in range(20)))

    handed_out = [timer_id for batch in popped for timer_id in batch]
    assert sorted(handed_out) == sorted(f"timer_{n}" for n in range(50))
    assert all(len(batch) <= 5 for batch in popped)
    assert await store.pop_due(at(60)) == ["later"]


# -- Redis only ------------------------------------------------------------------------


async def test_redis_lock_carries_its_ttl(redis_store: RedisStore) -> None:
    lease = await redis_store.try_lock("cnv_1", 1.5)
    assert lease is not None
    ttl = await redis_store.redis.pttl(redis_store.keys.lock("cnv_1"))
    assert 1000 < ttl <= 1500
    assert await redis_store.redis.pttl(redis_store.keys.fence("cnv_1")) == -1  # never expires


async def test_redis_keys_that_scripts_touch_together_share_a_slot(
    redis_store: RedisStore,
) -> None:
    keys = redis_store.keys
    conversation_slots = {
        key_slot(k.encode())
        for k in (
            keys.conversation("cnv_{x}"),
            keys.lock("cnv_{x}"),
            keys.fence("cnv_{x}"),
            keys.messages("cnv_{x}"),
            keys.archive("cnv_{x}"),
            keys.conversation_events("cnv_{x}"),
            keys.turn_seen("cnv_{x}", "in:telegram:{1}"),
            keys.outbox("cnv_{x}"),
            keys.outbox_lease("cnv_{x}"),
        )
    }
    desk_slots = {
        key_slot(k.encode())
        for k in (
            keys.tickets,
            keys.numbers,
            keys.scores,
            keys.open_by_conversation,
            keys.queue("n1"),
            keys.agent("{a}"),
            keys.ticket_number,
            keys.opened_by,
        )
    }
    assert len(conversation_slots) == 1
    assert desk_slots == {key_slot(b"{q}")}


async def test_unreachable_redis_is_store_unavailable(tmp_path: object) -> None:
    store = RedisStore.from_url(f"unix://{tmp_path}/no-such.sock")
    try:
        with pytest.raises(StoreUnavailable) as unavailable:
            await store.ping()
        assert unavailable.value.__cause__ is not None
        with pytest.raises(StoreUnavailable):
            await store.claim("tkt_1", "ana", T0)
    finally:
        await store.close()


# -- the turn's two steps and the durable outbox (issues 11 and 18) --------------------

IDENTITY = Identity("telegram", "42")


def item(n: int, conversation_id: str = "cnv_1") -> OutboxItem:
    return OutboxItem(
        id=f"out.{n}",
        conversation_id=conversation_id,
        channel="telegram",
        address="42",
        locale="pt-BR",
        text=f"resposta {n} ✓",
        choices=(Choice("a", "A"),),
        message_id=f"msg_{n}",
        created_at=at(n),
    )


async def test_begin_turn_locks_and_reads_then_commit_writes_all_and_unlocks(
    store: Store,
) -> None:
    contact = Contact("ct_1", (IDENTITY,), "pt-BR", name="Ana")
    await store.save_contact(contact)
    start = await store.begin_turn("cnv_1", "in:telegram:1", IDENTITY, 30)
    assert start is not None and start.lease is not None
    assert (start.seen, start.contact, start.conversation, start.open_ticket) == (
        False,
        contact,
        None,
        None,
    )
    assert await store.begin_turn("cnv_1", "in:telegram:2", IDENTITY, 30) is None  # held
    event = Event("evt_1", EventKind.MESSAGE_IN, at(0), conversation_id="cnv_1")
    write = TurnWrite(
        "cnv_1",
        lease=start.lease,
        conversation=conversation(),
        messages=[message(1), message(2)],
        events=[event],
        outbox=[item(1), item(2)],
        timers={"outbox:cnv_1": at(1)},
        seen_key="in:telegram:1",
        seen_ttl_seconds=60,
        outbox_token="tok-a",
    )
    committed = await store.commit_turn(write)
    assert committed.outbox_leased
    assert await store.get_conversation("cnv_1") == conversation()
    assert await store.find_conversation("telegram", "42") == conversation()
    assert [m.id for m in await store.transcript("cnv_1")] == ["msg_1", "msg_2"]
    assert await store.events(conversation_id="cnv_1") == [event]
    assert await store.outbox("cnv_1") == [item(1), item(2)]
    assert await store.pop_due(at(1)) == ["outbox:cnv_1"]
    assert await store.turn_seen("cnv_1", "in:telegram:1")

    again = await store.begin_turn("cnv_1", "in:telegram:1", IDENTITY, 30)
    assert again is not None and again.seen and again.lease is None  # a duplicate: no lock
    nxt = await store.begin_turn("cnv_1", "in:telegram:3", IDENTITY, 30, recent=1)
    assert nxt is not None and nxt.lease is not None, "the commit gave the lock back"
    assert nxt.conversation == conversation() and [m.id for m in nxt.recent] == ["msg_2"]


async def test_commit_with_a_lost_lease_writes_nothing_of_the_conversation(
    store: Store, expire: Expire
) -> None:
    start = await store.begin_turn("cnv_1", "in:telegram:1", IDENTITY, 30)
    assert start is not None and start.lease is not None
    await expire.lock("cnv_1")
    other = await store.try_lock("cnv_1", 30)
    assert other is not None
    write = TurnWrite(
        "cnv_1",
        lease=start.lease,
        conversation=conversation(),
        messages=[message(1)],
        outbox=[item(1)],
        seen_key="in:telegram:1",
        seen_ttl_seconds=60,
    )
    with pytest.raises(LockLost):
        await store.commit_turn(write)
    assert await store.get_conversation("cnv_1") is None
    assert await store.transcript("cnv_1") == []
    assert await store.outbox("cnv_1") == []
    assert not await store.turn_seen("cnv_1", "in:telegram:1")


async def test_the_outbox_lease_has_one_holder_and_acks_remove_in_order(store: Store) -> None:
    await store.commit_turn(
        TurnWrite("cnv_1", outbox=[item(1), item(2), item(3)], outbox_token="tok-a", unlock=False)
    )
    assert await store.take_outbox("cnv_1", "tok-b", 30) is None, "tok-a holds the lease"
    assert await store.take_outbox("cnv_1", "tok-a", 30, limit=2) == [item(1), item(2)]
    assert await store.ack_outbox("cnv_1", "tok-a", ["out.2"]) == 3, "only the head is acked"
    assert await store.ack_outbox("cnv_1", "tok-a", ["out.1", "out.2"]) == 1
    assert await store.renew_outboxes(["cnv_1"], "tok-a", 30) == [True]
    assert await store.renew_outboxes(["cnv_1"], "tok-b", 30) == [False]
    await store.commit_turn(
        TurnWrite("cnv_2", outbox=[item(4)], outbox_token="tok-b", unlock=False)
    )
    assert await store.renew_outboxes(["cnv_1", "cnv_2", "cnv_3"], "tok-a", 30) == [
        True,
        False,
        False,
    ], "each lease on its own: held, another's, none"
    assert await store.renew_outboxes([], "tok-a", 30) == []
    await store.schedule("outbox:cnv_1", at(5))
    assert await store.ack_outbox("cnv_1", "tok-a", ["out.3"], ("outbox:cnv_1", at(5))) == 0
    assert await store.pop_due(at(10)) == [], "the safety-net timer went with the last ack"
    assert await store.take_outbox("cnv_1", "tok-b", 30) == [], "the lease was given back"


async def test_acks_of_several_conversations_at_once_are_each_an_ack(store: Store) -> None:
    for cid in ("cnv_1", "cnv_2"):
        await store.commit_turn(
            TurnWrite(
                cid,
                outbox=[item(1, cid), item(2, cid)],
                outbox_token="tok-a",
                unlock=False,
            )
        )
    await store.schedule("outbox:cnv_2", at(5))
    lefts = await store.ack_outboxes(
        [
            OutboxAck("cnv_1", "tok-a", ["out.2"]),  # not the head: nothing acked
            OutboxAck("cnv_1", "tok-a", ["out.1"]),
            OutboxAck("cnv_2", "tok-a", ["out.1", "out.2"], ("outbox:cnv_2", at(5))),
        ]
    )
    assert lefts == [2, 1, 0]
    assert await store.outbox("cnv_1") == [item(2, "cnv_1")]
    assert await store.outbox("cnv_2") == []
    assert await store.pop_due(at(10)) == [], "cnv_2's timer went with its last ack"
    assert await store.take_outbox("cnv_2", "tok-b", 30) == [], "cnv_2's lease was given back"
    assert await store.take_outbox("cnv_1", "tok-b", 30) is None, "cnv_1's is still held"


async def test_a_second_writer_does_not_take_a_held_outbox_lease(store: Store) -> None:
    first = await store.commit_turn(
        TurnWrite("cnv_1", outbox=[item(1)], outbox_token="tok-a", unlock=False)
    )
    second = await store.commit_turn(
        TurnWrite("cnv_1", outbox=[item(2)], outbox_token="tok-b", unlock=False)
    )
    assert (first.outbox_leased, second.outbox_leased) == (True, False)
    assert await store.outbox("cnv_1") == [item(1), item(2)]


async def test_open_handoff_numbers_the_ticket_once_per_message(store: Store) -> None:
    first = replace(ticket("tkt_a", number=0), opened_by="msg_7")
    opened = await store.open_handoff(first)
    assert opened.number > 0 and opened.opened_by == "msg_7"
    retried = await store.open_handoff(replace(ticket("tkt_b", number=0), opened_by="msg_7"))
    assert retried == opened, "a retried turn gets the ticket its first attempt opened"
    assert ids(await store.queue("n1")) == ["tkt_a"]
    assert await store.open_ticket_of("cnv_tkt_a") == opened
    other = await store.open_handoff(replace(ticket("tkt_c", number=0), opened_by="msg_8"))
    assert other.number == opened.number + 1


async def test_claim_rechecks_the_tier_at_claim_time(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"))
    await store.escalate("tkt_1", "n2", at(1))
    refused = await store.claim("tkt_1", "ana", at(2), tiers=("n1",))
    assert refused.error is ChangeError.NOT_IN_TIER
    assert (await store.claim("tkt_1", "bruno", at(3), tiers=("n1", "n2"))).ok


async def test_an_escalation_on_a_stale_look_is_refused(store: Store) -> None:
    seen = ticket("tkt_1")
    await open_tickets(store, seen)
    await store.claim("tkt_1", "ana", at(1))
    stale = await store.escalate("tkt_1", "n2", at(2), expect=seen)
    assert stale.error is ChangeError.ALREADY_CLAIMED
    current = await store.get_ticket("tkt_1")
    assert current is not None and current.tier == "n1" and current.assignee == "ana"
    assert (await store.escalate("tkt_1", "n2", at(3), expect=current)).ok
    again = await store.escalate("tkt_1", "n3", at(4), expect=current)
    assert again.error is ChangeError.NOT_IN_TIER


async def test_a_first_response_counts_only_for_its_owner_in_its_tier(store: Store) -> None:
    await open_tickets(store, ticket("tkt_1"))
    await store.claim("tkt_1", "ana", at(1))
    other = await store.mark_first_response("tkt_1", at(2), agent_id="bruno", tier="n1")
    assert other.error is ChangeError.NOT_ASSIGNEE
    await store.escalate("tkt_1", "n2", at(3))
    late = await store.mark_first_response("tkt_1", at(4), agent_id="ana", tier="n1")
    assert late.error is ChangeError.NOT_ASSIGNEE
    unmarked = await store.get_ticket("tkt_1")
    assert unmarked is not None and unmarked.first_response_at is None


# -- retention and the byte cap (issue 11) -----------------------------------------


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_transcript_keeps_under_its_byte_cap_the_newest_lines(
    backend: str, request: pytest.FixtureRequest
) -> None:
    store: Store
    if backend == "memory":
        store = MemoryStore(max_transcript_bytes=10_000)
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisStore.from_url(url, transcript_max_bytes=10_000)
        await store.redis.flushdb()
    try:
        for n in range(50):
            line = Message(f"msg_{n}", "cnv_1", Direction.INBOUND, f"{n:03d}" + "é" * 500, at(n))
            if n % 2:
                await store.append_message(line)
            else:
                await store.commit_turn(TurnWrite("cnv_1", messages=[line], unlock=False))
        kept = await store.transcript("cnv_1")
        assert 5 <= len(kept) < 12
        assert [m.id for m in kept] == [f"msg_{n}" for n in range(50 - len(kept), 50)]
        huge = Message("msg_huge", "cnv_1", Direction.INBOUND, "x" * 20_000, at(60))
        await store.append_message(huge)
        assert [m.id for m in await store.transcript("cnv_1")] == ["msg_huge"], "the last stays"
    finally:
        await store.close()


async def test_redis_idle_conversations_expire_with_their_contact(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, conversation_ttl_seconds=3600)
    await store.redis.flushdb()
    try:
        identity = Identity("telegram", "42")
        start = await store.begin_turn("cnv_1", "in:telegram:1", identity, 30)
        assert start is not None and start.lease is not None
        contact = Contact("ct_1", (identity,), "pt-BR")
        await store.commit_turn(
            TurnWrite(
                "cnv_1",
                lease=start.lease,
                contact=contact,
                conversation=conversation(),
                messages=[message(1)],
                events=[Event("evt_1", EventKind.MESSAGE_IN, at(0), conversation_id="cnv_1")],
            )
        )
        keys = store.keys
        for key in (
            keys.conversation("cnv_1"),
            keys.messages("cnv_1"),
            keys.conversation_events("cnv_1"),
            keys.fence("cnv_1"),
            keys.contact("ct_1"),
            keys.identity(identity),
            keys.address("telegram", "42"),
        ):
            assert 3_500_000 < await store.redis.pttl(key) <= 3_600_000, key
    finally:
        await store.close()
