"""redis-py's hot path, leaner: commands packed by hiredis, replies read under one
timeout (issue 18).

redis-py's asyncio connections build every command's wire form in Python: each argument
through its ``Encoder``, then a ``$<length>`` header joined per argument. A turn's
commit is one script with some thirty arguments (the transcript lines, the events, the
outbox items as JSON), and that loop was ~5% of a Redis turn's CPU. hiredis, which
redis-py already uses to *read* replies (``redis[hiredis]``), packs a whole command in C.

:func:`hiredis_packing` gives a connection class (plain TCP, TLS or Unix socket, as the
URL chose) the same wire bytes from ``hiredis.pack_command``. Arguments hiredis does not
take (anything but str, bytes, int, float) go to redis-py's own packing, so its
``DataError`` is what a caller sees, exactly as before.

:class:`OneTimeoutPipeline` is the pipeline a group of turn steps goes in: redis-py
reads each reply under a timeout of its own (~12 µs each), this reads the group's
replies under one (a 30-command group: ~830 µs of client CPU through redis-py's
pipeline, ~460 µs through this one, measured on a local Redis).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable
from typing import Any

import hiredis
import redis.exceptions
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection, Connection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ResponseError


def _split_name(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """As redis-py does: a command name with a space ("SCRIPT LOAD") is several words."""
    first = args[0]
    if isinstance(first, str) and " " in first:
        return (*first.split(), *args[1:])
    if isinstance(first, bytes) and b" " in first:
        return (*first.split(), *args[1:])
    return args


class _HiredisPacking(AbstractConnection):
    """``pack_command`` and ``pack_commands`` in C; everything else is redis-py's."""

    def pack_command(self, *args: Any) -> list[bytes]:
        try:
            return [hiredis.pack_command(_split_name(args))]
        except TypeError:  # not str/bytes/int/float: redis-py says what is wrong
            return super().pack_command(*args)

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        listed = [tuple(c) for c in commands]
        try:
            return [b"".join([hiredis.pack_command(_split_name(c)) for c in listed])]
        except TypeError:
            return super().pack_commands(listed)


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` with its commands packed by hiredis (one class per kind)."""
    if connection_class not in _PACKED:
        name = f"Hiredis{connection_class.__name__}"
        _PACKED[connection_class] = type(name, (_HiredisPacking, connection_class), {})
    return _PACKED[connection_class]


class OneTimeoutPipeline(Pipeline):
    """A pipeline (no ``MULTI``) whose replies are read under one timeout, not one each.

    redis-py reads each reply of a pipeline through ``Connection.read_response``: a
    timeout context, its error mapping and bookkeeping per reply (~12 µs). A group of turn
    steps (:meth:`bot.store.redis.RedisStore._grouped`) reads dozens. This reads them all
    from the connection's parser under the socket timeout once, with the same error
    mapping (a timeout is redis-py's ``TimeoutError``, a socket error its
    ``ConnectionError``, and either or a cancellation disconnects, so the pooled
    connection never carries half-read replies), then applies the same response
    callbacks as ``Redis.parse_response``. Error replies are returned in place, as
    ``execute(raise_on_error=False)`` returns them. Sending, the connection pool and the
    retry policy are redis-py's own. Commands with options this does not handle
    (``NEVER_DECODE``, ``EMPTY_RESPONSE``, watches, HIMPORT) take redis-py's path.
    """

    async def _execute_pipeline(
        self, connection: Connection, commands: Any, raise_on_error: bool
    ) -> list[Any]:
        if not _plain(connection, commands):
            replies: list[Any] = await super()._execute_pipeline(
                connection, commands, raise_on_error
            )
            return replies
        await connection.send_packed_command(
            connection.pack_commands([args for args, _ in commands])
        )
        raw = await _read_replies(connection, len(commands))
        callbacks = self.response_callbacks
        response: list[Any] = []
        for (args, options), reply in zip(commands, raw, strict=True):
            name = args[0]
            if isinstance(reply, ResponseError) or name not in callbacks:
                response.append(reply)
                continue
            kept = {k: v for k, v in options.items() if k != "keys"}
            value = callbacks[name](reply, **kept)
            response.append(await value if inspect.isawaitable(value) else value)
        if raise_on_error:
            self.raise_first_error(commands, response)
        return response


_OWN_PATH = frozenset({"WATCH", "MULTI", "EXEC", "DISCARD", "UNWATCH"})


def _plain(connection: Connection, commands: Any) -> bool:
    """Whether every command is one this pipeline reads as redis-py would."""
    if not hasattr(connection, "_read_response_from_parser"):
        return False  # another redis-py than the one this was written against
    for args, options in commands:
        if options and (NEVER_DECODE in options or EMPTY_RESPONSE in options):
            return False
        name = args[0]
        if type(name) is not str:
            return False
        name = name.upper()
        if name in _OWN_PATH or name.startswith("HIMPORT"):
            return False
    return True


async def _read_replies(connection: Connection, count: int) -> list[Any]:
    """``count`` replies from ``connection``, as ``Connection.read_response`` reads one."""
    read = connection._read_response_from_parser
    replies: list[Any] = []
    try:
        async with asyncio.timeout(connection.socket_timeout):
            for _ in range(count):
                replies.append(await read())
    except TimeoutError:
        await connection.disconnect(nowait=True)
        raise redis.exceptions.TimeoutError(
            f"Timeout reading from {connection._host_error()}"
        ) from None
    except OSError as e:
        await connection.disconnect(nowait=True)
        raise redis.exceptions.ConnectionError(
            f"Error while reading from {connection._host_error()} : {e.args}"
        ) from e
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    if connection.health_check_interval:
        connection.next_health_check = (
            asyncio.get_running_loop().time() + connection.health_check_interval
        )
    return replies
