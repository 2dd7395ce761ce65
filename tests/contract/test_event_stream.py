"""The event stream contract (issue 14), on every backend: append order, paging, the cap,
and consumer groups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import StoreError
from bot.models import Event, EventKind
from bot.store import MemoryStore, Store
from bot.store.base import position_key
from bot.store.redis import RedisStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CAP = 100


def event(n: int) -> Event:
    return Event(f"evt_{n}", EventKind.MESSAGE_IN, T0 + timedelta(seconds=n), f"cnv_{n % 7}")


@pytest.fixture(params=["memory", "redis"])
async def capped(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """Each backend with a stream cap of 100 events."""
    if request.param == "memory":
        yield MemoryStore(events_stream_cap=CAP)
        return
    redis_url: str = request.getfixturevalue("redis_url")
    store = RedisStore.from_url(redis_url, events_cap=CAP)
    await store.redis.flushdb()
    yield store
    await store.close()


async def test_the_stream_keeps_events_in_append_order_and_pages(store: Store) -> None:
    for n in range(1, 26):
        await store.append_event(event(n))
    pages: list[list[str]] = []
    after: str | None = None
    while page := await store.read_stream(after, count=10):
        pages.append([entry.event.id for entry in page])
        positions = [position_key(entry.position) for entry in page]
        assert positions == sorted(positions)
        after = page[-1].position
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for page in pages for i in page] == [f"evt_{n}" for n in range(1, 26)]
    assert [e.id for e in await store.events()] == [f"evt_{n}" for n in range(1, 26)]
    info = await store.stream_info()
    assert (info.length, info.added, info.trimmed) == (25, 25, 0)
    assert info.first is not None and info.first.event == event(1)


async def test_an_empty_stream(store: Store) -> None:
    info = await store.stream_info()
    assert (info.length, info.added, info.first) == (0, 0, None)
    assert await store.read_stream() == []


async def test_the_cap_drops_only_the_oldest_events(capped: Store) -> None:
    for n in range(1, 1001):
        await capped.append_event(event(n))
    info = await capped.stream_info()
    assert info.added == 1000 and info.cap == CAP
    # Approximate trimming: at least the cap is kept, and not much more.
    assert CAP <= info.length <= 2 * CAP
    assert info.trimmed == 1000 - info.length
    kept = [e.id for e in await capped.events()]
    # Nothing lost after the cut: exactly the last `length` events, in order.
    assert kept == [f"evt_{n}" for n in range(1001 - info.length, 1001)]
    assert info.first is not None and info.first.event.id == kept[0]


async def test_a_consumer_group_delivers_each_event_once_and_redelivers_unacknowledged(
    store: Store,
) -> None:
    for n in range(1, 6):
        await store.append_event(event(n))
    await store.create_group("warehouse")
    await store.create_group("warehouse")  # idempotent
    first = await store.read_group("warehouse", "a", count=3)
    assert [e.event.id for e in first] == ["evt_1", "evt_2", "evt_3"]
    second = await store.read_group("warehouse", "b", count=10)
    assert [e.event.id for e in second] == ["evt_4", "evt_5"]
    # "a" crashed before acknowledging: it is given the same entries again.
    again = await store.read_group("warehouse", "a", count=10)
    assert [e.event.id for e in again] == ["evt_1", "evt_2", "evt_3"]
    assert await store.ack("warehouse", [e.position for e in again]) == 3
    assert await store.ack("warehouse", [e.position for e in second]) == 2
    assert await store.read_group("warehouse", "a") == []
    assert await store.group_position("warehouse") == second[-1].position
    await store.append_event(event(6))
    assert [e.event.id for e in await store.read_group("warehouse", "b")] == ["evt_6"]
    assert await store.group_position("nobody") is None


async def test_a_group_reader_waits_for_the_next_event(store: Store) -> None:
    await store.create_group("live")

    async def later() -> None:
        await asyncio.sleep(0)  # let the reader block first
        await store.append_event(event(1))

    writer = asyncio.create_task(later())
    got = await store.read_group("live", "a", block_seconds=60)
    await writer
    assert [e.event.id for e in got] == ["evt_1"]


async def test_reading_an_unknown_group_is_a_store_error(store: Store) -> None:
    await store.append_event(event(1))
    with pytest.raises(StoreError, match="no consumer group 'ghost'"):
        await store.read_group("ghost", "a")


async def test_pending_entries_dropped_by_the_cap_are_skipped(capped: Store) -> None:
    await capped.create_group("slow")
    await capped.append_event(event(1))
    taken = await capped.read_group("slow", "a")
    assert [e.event.id for e in taken] == ["evt_1"]
    for n in range(2, 1001):
        await capped.append_event(event(n))
    # evt_1 was never acknowledged and is gone: the reader moves on to new entries.
    got = await capped.read_group("slow", "a", count=5)
    assert got and got[0].event.id != "evt_1"
    assert [position_key(e.position) for e in got] == sorted(position_key(e.position) for e in got)
