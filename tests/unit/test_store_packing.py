"""Commands packed by hiredis are the very bytes redis-py would send (issue 18)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from bot.store.packing import hiredis_packing

COMMANDS: list[tuple[Any, ...]] = [
    ("EVALSHA", "a" * 40, 2, "escala:{c:1}:lock", "escala:{c:1}:conv", "tok", 1500),
    ("SET", "k", "olá, não é café ☕", b"\x00\xffraw", 2.5, -7, 0),
    ("SCRIPT LOAD", "return 1"),
    (b"CLIENT SETNAME", "escala"),
    ("SET", "k", "x" * 100_000),  # above redis-py's buffer cutoff: chunked there, not here
    ("GET", ""),
]


def bytes_of(chunks: list[bytes] | list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_a_command_packs_to_redis_pys_bytes(command: tuple[Any, ...]) -> None:
    stock = Connection()
    packed = hiredis_packing(Connection)()
    assert bytes_of(packed.pack_command(*command)) == bytes_of(stock.pack_command(*command))


def test_a_pipeline_packs_to_redis_pys_bytes() -> None:
    stock = Connection()
    packed = hiredis_packing(Connection)()
    expected = bytes_of(stock.pack_commands(COMMANDS))
    assert bytes_of(packed.pack_commands(iter(COMMANDS))) == expected


@pytest.mark.parametrize("bad", [None, True, object()])
def test_what_redis_py_refuses_is_refused_with_its_error(bad: Any) -> None:
    packed = hiredis_packing(Connection)()
    with pytest.raises(DataError):
        packed.pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        packed.pack_commands([("GET", "k"), ("SET", "k", bad)])


def test_each_kind_of_connection_keeps_its_kind_and_is_built_once() -> None:
    for kind in (Connection, SSLConnection, UnixDomainSocketConnection):
        packing = hiredis_packing(kind)
        assert issubclass(packing, kind)
        assert packing is hiredis_packing(kind)
