"""Fixtures shared by the Redis tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.store.redis import RedisStore


@pytest.fixture
async def shared_store(redis_url: str) -> AsyncIterator[RedisStore]:
    """The suite's redis-server, emptied: the store the router processes share."""
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    yield store
    await store.close()
