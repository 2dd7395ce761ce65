"""Part 4: Redis memory per idle conversation, per message and per ticket, projected to 1M.

Drives real conversations through the engine on a :class:`~bot.store.redis.RedisStore`
under a throw-away key prefix (deleted afterwards; nothing else in the database is
touched), then reports from ``MEMORY USAGE`` (:mod:`bench.footprint`):

* bytes per idle conversation after a typical three-message bot exchange (contact,
  identity and address indexes, conversation, transcript, events, fence, dedupe
  marks), by key kind;
* bytes per additional customer message (its transcript lines, events and mark);
* bytes per handed-off ticket (its share of the ``{q}`` keys and its event list);
* the ``used_memory`` growth per conversation as a cross-check.

``python -m bench`` starts its own ``redis-server`` on a free loopback port (no
persistence, stopped by PID) and is skipped, with the reason, where there is none. To
measure your own deployment (Redis version, allocator, settings)::

    python -m bench.redis_memory --redis-url redis://localhost:6379/15
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.footprint import conversation_footprint, desk_bytes_per_ticket, key_bytes
from bench.processes import RedisServer, RedisUnavailable
from bench.progress import Progress
from bot.app import build
from bot.clock import stable_id
from bot.models import InboundMessage, OutboundMessage
from bot.settings import default_settings
from bot.store.redis import RedisStore

CONVERSATIONS = 1_000
EXTRA_MESSAGES = 100
PROJECTED = 1_000_000
#: A typical tier-0 exchange: a greeting, a KB question, thanks.
EXCHANGE = ("oi", "qual o horário de atendimento?", "obrigado")
MORE = ("como faço para trocar minha senha?", "obrigado", "qual o prazo de entrega?")
HANDOFF = "quero falar com um atendente"
TIERS = ["N1", "N2", "N3"]


class Silent:
    """A channel that delivers nowhere: only the store's memory is measured."""

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        return None


@dataclass(frozen=True)
class MemoryFigures:
    conversations: int
    idle_conversation_bytes: float
    idle_by_kind: dict[str, float]
    bytes_per_extra_message: float
    extra_messages: int
    bytes_per_ticket: float
    used_memory_per_conversation: float
    global_events_per_conversation: float

    def projection(self, conversations: int = PROJECTED) -> float:
        """Bytes for ``conversations`` idle conversations (by ``MEMORY USAGE``)."""
        return self.idle_conversation_bytes * conversations

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "exchange": list(EXCHANGE),
            "projected_1m_idle_gib": self.projection() / 2**30,
            "projected_1m_used_memory_gib": self.used_memory_per_conversation * PROJECTED / 2**30,
        }

    def report(self) -> str:
        lines = [f"idle conversation after {len(EXCHANGE)} messages, mean of {self.conversations}:"]
        for kind, size in self.idle_by_kind.items():
            lines.append(f"  {kind:<16} {size:8.0f} B")
        lines += [
            f"  {'total':<16} {self.idle_conversation_bytes:8.0f} B",
            f"per additional customer message (mean of {self.extra_messages}): "
            f"{self.bytes_per_extra_message:.0f} B",
            f"per handed-off ticket ({{q}} keys + ticket events): {self.bytes_per_ticket:.0f} B",
            "shared list of all events (capped at events_cap, so bounded): "
            f"{self.global_events_per_conversation:.0f} B per conversation until the cap",
            f"used_memory growth per conversation: {self.used_memory_per_conversation:.0f} B",
            f"1,000,000 idle conversations: {self.projection() / 2**30:.2f} GiB "
            f"(MEMORY USAGE), {self.used_memory_per_conversation * 1e6 / 2**30:.2f} GiB "
            "(used_memory)",
        ]
        return "\n".join(lines)


async def _used_memory(store: RedisStore) -> int:
    info = await store.redis.info("memory")
    return int(info["used_memory"])


async def measure(
    redis_url: str,
    conversations: int = 200,
    extra: int = 50,
    progress: Progress | None = None,
) -> MemoryFigures:
    """Run the conversations, measure, delete every key the run wrote."""
    progress = progress or Progress(quiet=True)
    prefix = f"escala_memory_{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(redis_url, prefix=prefix)
    try:
        escala = build(default_settings(), store=store)
        escala.outbox.register("telegram", Silent())
        sequence = 0

        async def say(address: str, text: str) -> None:
            nonlocal sequence
            sequence += 1
            await escala.engine.handle(
                InboundMessage(
                    "telegram", address, text, f"{prefix}-{sequence}", datetime.now(UTC), "pt-BR"
                )
            )

        before = await _used_memory(store)
        addresses = [f"{prefix}-{n}" for n in range(conversations)]
        for address in progress.track(addresses, "redis conversations", conversations):
            for text in EXCHANGE:
                await say(address, text)
        grown = await _used_memory(store) - before
        global_events = await key_bytes(store, store.keys.events)
        ids = [stable_id("cnv", "telegram", a) for a in addresses]
        footprints = [await conversation_footprint(store, c) for c in ids]
        kinds = footprints[0].bytes_by_kind.keys()
        by_kind = {k: sum(f.bytes_by_kind[k] for f in footprints) / len(footprints) for k in kinds}

        # more messages in one conversation: the growth per customer message
        start = footprints[0].total
        for n in range(extra):
            await say(addresses[0], MORE[n % len(MORE)])
        per_message = ((await conversation_footprint(store, ids[0])).total - start) / extra

        # a handoff in every other conversation: the desk's cost per ticket
        for address in addresses[1::2]:
            await say(address, HANDOFF)
        desk = await desk_bytes_per_ticket(store, TIERS)
        tickets = [t for tier in TIERS for t in await store.queue(tier)]
        ticket_events = [await key_bytes(store, store.keys.ticket_events(t.id)) for t in tickets]
        per_ticket = desk + sum(ticket_events) / max(len(ticket_events), 1)

        return MemoryFigures(
            conversations=conversations,
            idle_conversation_bytes=sum(by_kind.values()),
            idle_by_kind=by_kind,
            bytes_per_extra_message=per_message,
            extra_messages=extra,
            bytes_per_ticket=per_ticket,
            used_memory_per_conversation=grown / conversations,
            global_events_per_conversation=global_events / conversations,
        )
    finally:
        async for key in store.redis.scan_iter(match=f"{prefix}:*", count=1000):
            await store.redis.delete(key)
        await store.close()


def run(
    *, conversations: int = CONVERSATIONS, extra: int = EXTRA_MESSAGES, progress: Progress
) -> dict[str, Any]:
    """The measurements on a private ``redis-server``, or ``{"skipped": reason}``."""
    with tempfile.TemporaryDirectory(prefix="redis-memory-") as directory:
        try:
            server = RedisServer(Path(directory))
        except RedisUnavailable as e:
            return {"skipped": str(e)}
        with server:
            figures = asyncio.run(measure(server.url, conversations, extra, progress))
    return figures.as_json()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_memory", description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--extra-messages", type=int, default=EXTRA_MESSAGES)
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.redis_url, args.conversations, args.extra_messages))
    print(figures.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
