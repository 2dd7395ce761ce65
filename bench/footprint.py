"""How many bytes of Redis one conversation costs (issue 3), from ``MEMORY USAGE``.

:func:`conversation_footprint` adds up every key a conversation owns: contact,
identity and address indexes, conversation, transcript (hot and archive), events,
fence and lock, and the dedupe marks of its inbound messages (they live for the
dedupe window). :func:`desk_bytes_per_ticket` is the cost of one ticket in the shared
``{q}`` keys. :mod:`bench.redis_memory` drives real conversations through the
engine and prints the figures the README quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.models import Direction
from bot.store.redis import RedisStore


@dataclass(frozen=True)
class Footprint:
    """Bytes per key kind (``MEMORY USAGE ... SAMPLES 0``: exact, not sampled)."""

    bytes_by_kind: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.bytes_by_kind.values())


async def key_bytes(store: RedisStore, key: str) -> int:
    """``MEMORY USAGE`` of one key, every element counted; 0 when it does not exist."""
    used = await store.redis.memory_usage(key, samples=0)
    return int(used or 0)


async def conversation_footprint(store: RedisStore, conversation_id: str) -> Footprint:
    """Every key the conversation owns, by kind. The dedupe marks are found through the
    provider message ids of its inbound messages (the engine's ``in:<channel>:<id>``)."""
    keys = store.keys
    conversation = await store.get_conversation(conversation_id)
    if conversation is None:
        raise LookupError(f"no conversation {conversation_id}")
    contact = await store.get_contact(conversation.contact_id)
    identities = contact.identities if contact is not None else ()
    transcript = await store.transcript(conversation_id)
    seen = [
        keys.seen(f"in:{conversation.channel}:{m.provider_message_id}")
        for m in transcript
        if m.direction is Direction.INBOUND and m.provider_message_id
    ]
    kinds: dict[str, list[str]] = {
        "contact": [keys.contact(conversation.contact_id)],
        "identity index": [keys.identity(i) for i in identities],
        "address index": [keys.address(conversation.channel, conversation.address)],
        "conversation": [keys.conversation(conversation_id)],
        "transcript": [keys.messages(conversation_id), keys.archive(conversation_id)],
        "events": [keys.conversation_events(conversation_id)],
        "lock and fence": [keys.lock(conversation_id), keys.fence(conversation_id)],
        "dedupe marks": seen,
    }
    sizes = {}
    for kind, names in kinds.items():
        sizes[kind] = sum([await key_bytes(store, name) for name in names])
    return Footprint(sizes)


async def desk_bytes_per_ticket(store: RedisStore, tiers: list[str]) -> float:
    """The shared ``{q}`` keys (tickets, numbers, scores, open index, queues of
    ``tiers``) divided by the number of tickets; 0 when there is none."""
    count = int(await store.redis.hlen(store.keys.tickets))
    if count == 0:
        return 0.0
    keys = store.keys
    names = [keys.tickets, keys.numbers, keys.scores, keys.open_by_conversation]
    names += [keys.queue(tier) for tier in tiers]
    total = sum([await key_bytes(store, name) for name in names])
    return total / count
