"""The store's signals (pub/sub) and counters: one suite over both backends (issue 17).

The web chat relies on these: a socket on one process listens to its visitor's topic
and hears a reply produced on another; rate limits count across processes.
"""

from __future__ import annotations

import asyncio

from bot.store import Store
from bot.store.base import Listening
from bot.store.redis import RedisStore
from tests.conftest import FakeMonotonic

#: Generous: a loaded 2-core machine; reached only when a signal is lost (a failure).
WAIT = 60.0


async def next_payload(listening: Listening) -> str:
    return await asyncio.wait_for(listening.get(), WAIT)


async def test_a_listener_hears_what_is_published_after_it_listens_in_order(store: Store) -> None:
    listening = await store.listen("webchat:v:1")
    try:
        for n in range(20):
            await store.publish("webchat:v:1", f"payload {n}")
        heard = [await next_payload(listening) for _ in range(20)]
        assert heard == [f"payload {n}" for n in range(20)]
    finally:
        listening.close()


async def test_every_listener_of_a_topic_hears_it_and_no_other_topic_does(store: Store) -> None:
    first = await store.listen("a")
    second = await store.listen("a")
    other = await store.listen("b")
    try:
        await store.publish("a", "for a")
        await store.publish("b", "for b")
        assert await next_payload(first) == "for a"
        assert await next_payload(second) == "for a"
        assert await next_payload(other) == "for b"
    finally:
        for listening in (first, second, other):
            listening.close()


async def test_a_closed_listener_hears_nothing_more_and_others_keep_hearing(store: Store) -> None:
    closed = await store.listen("t")
    kept = await store.listen("t")
    closed.close()
    closed.close()  # idempotent
    await store.publish("t", "after close")
    assert await next_payload(kept) == "after close"
    assert closed.closed
    kept.close()
    # Listening again after everyone left works (Redis: subscribed again).
    again = await store.listen("t")
    try:
        await store.publish("t", "again")
        assert await next_payload(again) == "again"
    finally:
        again.close()


async def test_publishing_with_nobody_listening_is_not_an_error(store: Store) -> None:
    await store.publish("nobody", "lost, by design")
    listening = await store.listen("nobody")
    try:
        await store.publish("nobody", "heard")
        assert await next_payload(listening) == "heard"
    finally:
        listening.close()


async def test_hits_count_within_a_window_and_start_again_after_it(
    store: Store, monotonic: FakeMonotonic
) -> None:
    assert [await store.hit("ip:1", 60) for _ in range(3)] == [1, 2, 3]
    assert await store.hit("ip:2", 60) == 1
    if isinstance(store, RedisStore):
        ttl = await store.redis.pttl(store.keys.hits("ip:1"))
        assert 0 < ttl <= 60_000
        await store.redis.delete(store.keys.hits("ip:1"))  # what expiry does
    else:
        monotonic.advance(61)
    assert await store.hit("ip:1", 60) == 1


async def test_two_clients_of_one_redis_hear_each_other(redis_url: str) -> None:
    """Two processes: the socket's and the agent's (here two clients of one server)."""
    listener_side = RedisStore.from_url(redis_url)
    publisher_side = RedisStore.from_url(redis_url)
    try:
        listening = await listener_side.listen("webchat:v:9")
        await publisher_side.publish("webchat:v:9", "reply is in the transcript")
        assert await next_payload(listening) == "reply is in the transcript"
        listening.close()
    finally:
        await listener_side.close()
        await publisher_side.close()
