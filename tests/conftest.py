"""Shared fixtures: a real ``redis-server`` for the session and one store per backend.

Without ``redis-server`` the Redis cases are skipped locally, but fail when ``CI`` is
``true``: a skipped Redis test in CI would hide the production backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.store import MemoryStore, Store
from bot.store.redis import RedisStore

REDIS_START_SECONDS = 10.0


class FakeMonotonic:
    """A monotonic clock that only moves when told to (for TTLs in the memory store)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _wait_until_ready(process: subprocess.Popen[bytes], socket: Path, log: Path) -> None:
    deadline = time.monotonic() + REDIS_START_SECONDS
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{log.read_text()}")
            try:
                if client.ping():
                    return
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(f"redis-server not answering after {REDIS_START_SECONDS}s")
            time.sleep(0.01)  # poll interval, bounded by the deadline above
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private ``redis-server`` on a unix socket (no port to collide with), no persistence."""
    server = shutil.which("redis-server")
    if server is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; Redis tests may not be skipped in CI", pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("redis")
    socket = directory / "redis.sock"
    log = directory / "redis.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                server,
                "--port", "0",
                "--unixsocket", str(socket),
                "--unixsocketperm", "700",
                "--dir", str(directory),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_until_ready(process, socket, log)
        yield f"unix://{socket}"
    finally:
        _stop(process)


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    """A fresh :class:`RedisStore` on an empty database."""
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    yield store
    await store.close()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def memory_store(monotonic: FakeMonotonic) -> MemoryStore:
    return MemoryStore(monotonic=monotonic)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    """Every backend in turn: one contract, one suite."""
    backend: Store = request.getfixturevalue(f"{request.param}_store")
    return backend
