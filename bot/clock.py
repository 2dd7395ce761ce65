"""Injected time and ids, so the engine is deterministic in tests."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class Ids(Protocol):
    def new(self, prefix: str) -> str:
        """A new unique id such as ``cnv_3f2a...``."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidIds:
    def new(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex}"


def stable_id(prefix: str, channel: str, address: str) -> str:
    """A conversation/contact id derived from the channel address, so that two router
    processes receiving the first message of a customer agree on it without a race."""
    digest = hashlib.blake2b(f"{channel}\x00{address}".encode(), digest_size=10).hexdigest()
    return f"{prefix}_{digest}"
