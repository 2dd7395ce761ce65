"""A Redis client that counts round trips: one per command, one per pipeline.

Used by the tests to pin how many times a customer message goes to Redis (issue 18),
whatever the store does inside each trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection, UnixDomainSocketConnection


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0


def _counting(base: type[AbstractConnection], trips: RoundTrips) -> type[AbstractConnection]:
    class Counting(base):  # type: ignore[valid-type,misc]
        handshaking = False

        async def on_connect_check_health(self, check_health: bool = True) -> None:
            # A new connection's greeting (CLIENT SETINFO ...) is the pool's, not the
            # store's: how many connections the pool opens depends on timing.
            self.handshaking = True
            try:
                await super().on_connect_check_health(check_health=check_health)
            finally:
                self.handshaking = False

        async def send_packed_command(
            self, command: bytes | str | Iterable[bytes], check_health: bool = True
        ) -> None:
            if not self.handshaking:
                trips.count += 1  # a pipeline is packed into one write: one round trip
            await super().send_packed_command(command, check_health)

    return Counting


def counting_client(url: str, trips: RoundTrips, **options: Any) -> aioredis.Redis:
    """A client for ``url`` (``redis://`` or ``unix://``) counting into ``trips``."""
    base = UnixDomainSocketConnection if url.startswith("unix://") else Connection
    pool = aioredis.ConnectionPool.from_url(url, connection_class=_counting(base, trips), **options)
    return aioredis.Redis.from_pool(pool)
