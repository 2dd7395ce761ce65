"""A group's pipeline reads its replies under one timeout (issue 18): the same replies
as redis-py's own pipeline, the same errors, and a connection never left half-read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.store.packing import OneTimeoutPipeline

SLOW_SCRIPT = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return n"


def lean(client: aioredis.Redis) -> OneTimeoutPipeline:
    return OneTimeoutPipeline(client.connection_pool, client.response_callbacks, False, None)


def queue(pipe: Any, tag: str) -> None:
    """Commands whose replies redis-py turns into other types, and error replies."""
    pipe.set(f"{tag}:s", "olá ☕")
    pipe.get(f"{tag}:s")
    pipe.get(f"{tag}:missing")
    pipe.hset(f"{tag}:h", mapping={"a": "1", "b": "dois"})
    pipe.hgetall(f"{tag}:h")
    pipe.incr(f"{tag}:s")  # an error reply: not an integer
    pipe.exists(f"{tag}:s", f"{tag}:h", f"{tag}:missing")
    pipe.execute_command("EVALSHA", "0" * 40, 0)  # NOSCRIPT
    pipe.zadd(f"{tag}:z", {"m": 2.5})
    pipe.zrange(f"{tag}:z", 0, -1, withscores=True)
    pipe.xadd(f"{tag}:x", {"k": "v"}, id="1-1")
    pipe.expire(f"{tag}:s", 60)
    pipe.ttl(f"{tag}:s")


def comparable(replies: list[Any]) -> list[Any]:
    return [(type(r).__name__, str(r)) if isinstance(r, Exception) else r for r in replies]


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
async def client(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url, decode_responses=request.param)
    yield redis
    await redis.aclose()


async def test_replies_are_redis_pys_replies(client: aioredis.Redis) -> None:
    run = uuid.uuid4().hex
    stock = client.pipeline(transaction=False)
    queue(stock, f"stock:{run}")
    expected = await stock.execute(raise_on_error=False)
    pipe = lean(client)
    queue(pipe, f"lean:{run}")
    got = await pipe.execute(raise_on_error=False)
    assert comparable(got) == comparable(expected)
    assert isinstance(got[5], redis.exceptions.ResponseError)
    assert isinstance(got[7], redis.exceptions.NoScriptError)
    assert got[4] in ({b"a": b"1", b"b": b"dois"}, {"a": "1", "b": "dois"})


async def test_the_first_error_raises_as_redis_py_raises_it(client: aioredis.Redis) -> None:
    raised: list[str] = []
    for pipe in (client.pipeline(transaction=False), lean(client)):
        pipe.set("errs:k", "x")
        pipe.incr("errs:k")
        with pytest.raises(redis.exceptions.ResponseError) as caught:
            await pipe.execute()
        raised.append(str(caught.value))
    assert raised[0] == raised[1]
    assert "Command # 2 (INCRBY errs:k 1) of pipeline" in raised[1]


async def test_a_cancelled_read_leaves_no_reply_behind(redis_url: str) -> None:
    """Cancelled while a slow script runs: the connection is dropped, so the next
    pipeline on the pool reads its own replies, not the late ones."""
    client = aioredis.Redis.from_url(redis_url, max_connections=1)
    try:
        pipe = lean(client)
        pipe.execute_command("EVAL", SLOW_SCRIPT, 0, 30_000_000)
        pipe.get("after:slow")
        task = asyncio.create_task(pipe.execute(raise_on_error=False))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = lean(client)
        after.set("after:cancel", "mine")
        after.get("after:cancel")
        assert await after.execute() == [True, b"mine"]
    finally:
        await client.aclose()


async def test_no_answer_is_redis_pys_timeout_error() -> None:
    """A server that greets the connection but never answers a ``GET``."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        parse = hiredis.Reader()
        while data := await reader.read(65536):
            parse.feed(data)
            while (command := parse.gets()) is not False:
                if command[0].upper() != b"GET":
                    writer.write(b"+OK\r\n")  # the connection's handshake

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = aioredis.Redis(
        host="127.0.0.1", port=port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        pipe = lean(client)
        pipe.get("k")
        pipe.get("j")
        with pytest.raises(redis.exceptions.TimeoutError, match="Timeout reading from"):
            await pipe.execute()
    finally:
        await client.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
