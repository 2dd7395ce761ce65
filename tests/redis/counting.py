"""A Redis client that counts round trips: one per command, one per pipeline.

Used by the tests and the benchmark to pin how many times a customer message goes
to Redis (issue 18), whatever the store does inside each trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import UnixDomainSocketConnection


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0


class CountingConnection(UnixDomainSocketConnection):
    trips: RoundTrips

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        self.trips.count += 1  # a pipeline is packed into one write: one round trip
        await super().send_packed_command(command, check_health)


def counting_client(socket_path: str, trips: RoundTrips, **options: Any) -> aioredis.Redis:
    counted = type("Counted", (CountingConnection,), {"trips": trips})
    pool = aioredis.ConnectionPool(connection_class=counted, path=socket_path, **options)
    return aioredis.Redis.from_pool(pool)
