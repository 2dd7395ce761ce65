"""Redis commands packed by hiredis, not by redis-py's Python loop (issue 18).

redis-py's asyncio connections build every command's wire form in Python: each argument
through its ``Encoder``, then a ``$<length>`` header joined per argument. A turn's
commit is one script with some thirty arguments (the transcript lines, the events, the
outbox items as JSON), and that loop was ~5% of a Redis turn's CPU. hiredis, which
redis-py already uses to *read* replies (``redis[hiredis]``), packs a whole command in C.

:func:`hiredis_packing` gives a connection class (plain TCP, TLS or Unix socket, as the
URL chose) the same wire bytes from ``hiredis.pack_command``. Arguments hiredis does not
take (anything but str, bytes, int, float) go to redis-py's own packing, so its
``DataError`` is what a caller sees, exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection


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
