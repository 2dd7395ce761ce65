"""Shared fixtures: a real ``redis-server`` for the session and one store per backend.

Without ``redis-server`` the Redis cases are skipped locally, but fail when ``CI`` is
``true``: a skipped Redis test in CI would hide the production backend.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.processes import RedisServer, RedisUnavailable, redis_server_binary
from bot.store import MemoryStore, Store
from bot.store.redis import RedisStore
from kb.semantic import CACHE_ENV
from tests.cluster_fixture import redis_cluster_url  # noqa: F401  (a fixture)


def pytest_configure(config: pytest.Config) -> None:
    """Phrasing embeddings (the ``semantic`` extra) are cached in a folder of this run,
    shared with the subprocesses tests start, never in the user's ``~/.cache``."""
    if CACHE_ENV not in os.environ:
        folder = tempfile.mkdtemp(prefix="escala-embeddings-")
        os.environ[CACHE_ENV] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


class FakeMonotonic:
    """A monotonic clock that only moves when told to (for TTLs in the memory store)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def require_redis_server() -> str:
    """The ``redis-server`` binary; skips the test without one, but fails it in CI."""
    try:
        return redis_server_binary()
    except RedisUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{e}; Redis tests may not be skipped in CI", pytrace=False)
        pytest.skip(str(e))


def redis_server(directory: Path, *, appendonly: bool = False) -> RedisServer:
    """A private, not yet started ``redis-server`` (:class:`bench.processes.RedisServer`)."""
    return RedisServer(directory, appendonly=appendonly, binary=require_redis_server())


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private ``redis-server`` for the session on a free loopback port, no persistence."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    """A fresh :class:`RedisStore` on an empty database."""
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    yield store
    await store.close()


@pytest.fixture
async def cluster_store(redis_cluster_url: str) -> AsyncIterator[RedisStore]:  # noqa: F811
    """A fresh :class:`RedisStore` on the 3-master Redis Cluster, emptied."""
    # The cluster client's pools do not wait for a free connection: room for the
    # contract suite's 100 concurrent claims.
    store = RedisStore.from_url(redis_cluster_url, cluster=True, max_connections=1024)
    await store.redis.flushdb()
    await store.load_scripts()
    yield store
    await store.close()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def memory_store(monotonic: FakeMonotonic) -> MemoryStore:
    return MemoryStore(monotonic=monotonic)


@pytest.fixture(params=["memory", "redis", "cluster"])
def store(request: pytest.FixtureRequest) -> Store:
    """Every backend in turn: one contract, one suite."""
    backend: Store = request.getfixturevalue(f"{request.param}_store")
    return backend
