"""The store roles the web console adds (issue 15), on every backend: console users,
the last events, and the live event feed (across processes on
Redis: two store objects on one server stand for two processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.models import ConsoleRole, ConsoleUser, Event, EventKind
from bot.store import Store
from bot.store.base import TurnWrite
from bot.store.redis import RedisStore
from tests.waits import PATIENCE

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def event(n: int, kind: EventKind = EventKind.MESSAGE_IN) -> Event:
    return Event(
        id=f"evt-{n}",
        kind=kind,
        at=T0 + timedelta(seconds=n),
        conversation_id="cnv-1",
        ticket_id=None,
        data={"n": n},
    )


async def test_users_are_saved_found_listed_and_deleted(store: Store) -> None:
    ana = ConsoleUser("ana", "$argon2id$hash-a", ConsoleRole.AGENT, "ana", "Ana", "pt-BR")
    sam = ConsoleUser("sam", "$argon2id$hash-s", ConsoleRole.SUPERVISOR)
    assert await store.get_user("ana") is None
    await store.save_user(sam)
    await store.save_user(ana)
    assert await store.get_user("ana") == ana
    assert [u.login for u in await store.users()] == ["ana", "sam"]
    moved = ConsoleUser("ana", "$argon2id$hash-b", ConsoleRole.SUPERVISOR, "ana", "Ana", None)
    await store.save_user(moved)
    assert await store.get_user("ana") == moved
    assert await store.delete_user("ana") is True
    assert await store.delete_user("ana") is False
    assert [u.login for u in await store.users()] == ["sam"]


async def test_recent_events_are_the_last_ones_oldest_first(store: Store) -> None:
    for n in range(1, 8):
        await store.append_event(event(n))
    assert [e.id for e in await store.recent_events(3)] == ["evt-5", "evt-6", "evt-7"]
    assert len(await store.recent_events(100)) == 7
    assert await store.recent_events(0) == []


async def _take(feed: AsyncIterator[Event], count: int) -> list[Event]:
    got: list[Event] = []
    async for item in feed:
        got.append(item)
        if len(got) == count:
            return got
    return got


async def test_a_follower_sees_events_appended_after_it_started(store: Store) -> None:
    await store.append_event(event(1))  # before: not in the feed
    async with store.follow() as feed:
        reader = asyncio.create_task(_take(feed, 2))
        await store.append_event(event(2, EventKind.HANDOFF))
        await store.append_event(event(3, EventKind.CLAIMED))
        got = await asyncio.wait_for(reader, timeout=PATIENCE)
    assert [(e.id, e.kind, dict(e.data)) for e in got] == [
        ("evt-2", EventKind.HANDOFF, {"n": 2}),
        ("evt-3", EventKind.CLAIMED, {"n": 3}),
    ]


async def test_a_follower_sees_a_turns_events_in_order(store: Store) -> None:
    """A turn commits its events together (one live message on Redis): each reaches
    the feed on its own, in order, with newlines in customer text kept."""
    events = [
        replace(event(n), conversation_id="cnv-9", data={"text": f"linha {n}\nsegunda"})
        for n in range(4)
    ]
    async with store.follow() as feed:
        reader = asyncio.create_task(_take(feed, 4))
        await store.commit_turn(TurnWrite("cnv-9", events=events))
        got = await asyncio.wait_for(reader, timeout=PATIENCE)
    assert [(e.id, dict(e.data)) for e in got] == [(e.id, dict(e.data)) for e in events]


async def test_two_followers_each_see_every_event(store: Store) -> None:
    async with store.follow() as first, store.follow() as second:
        readers = [asyncio.create_task(_take(feed, 3)) for feed in (first, second)]
        for n in range(3):
            await store.append_event(event(n))
        results = await asyncio.wait_for(asyncio.gather(*readers), timeout=PATIENCE)
    assert [[e.id for e in got] for got in results] == [["evt-0", "evt-1", "evt-2"]] * 2


async def test_redis_another_process_sees_the_event_live(
    redis_store: RedisStore, redis_url: str
) -> None:
    other = RedisStore.from_url(redis_url)  # a second router process on the same Redis
    try:
        async with redis_store.follow() as feed:
            reader = asyncio.create_task(_take(feed, 1))
            await other.append_event(event(9, EventKind.RESOLVED))
            got = await asyncio.wait_for(reader, timeout=PATIENCE)
        assert [(e.id, e.kind) for e in got] == [("evt-9", EventKind.RESOLVED)]
        # and the log has it too: the feed is a view of the log, not a second record
        assert [e.id for e in await redis_store.recent_events(1)] == ["evt-9"]
    finally:
        await other.close()
