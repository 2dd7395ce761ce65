"""In-memory store: the embedded default. Zero set-up, one process, nothing kept on exit.

Atomicity comes from asyncio itself: no method awaits between reading and writing
shared state, so each method body runs as one step of the event loop.

``max_transcript_messages`` bounds each transcript (the oldest messages are dropped);
:func:`bot.store.open_store` sets it to the Redis hot + archive bounds, so both
backends keep the same messages.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

from bot.errors import LockLost, StoreError
from bot.models import (
    Availability,
    BreachAction,
    ConsoleUser,
    Contact,
    Conversation,
    Event,
    Identity,
    Message,
    OutboxItem,
    Priority,
    Promise,
    Ticket,
    TicketState,
)
from bot.store.base import (
    RECENT_IDS,
    SKILL_SCAN,
    AgentLoad,
    Breach,
    ChangeError,
    Committed,
    ContentDraft,
    ContentVersion,
    Lease,
    Listening,
    PublishResult,
    Routing,
    SkillFilter,
    Store,
    StreamEntry,
    StreamInfo,
    TicketChange,
    TurnStart,
    TurnWrite,
    position_key,
    tombstone,
)

#: Default of ``[store] events_stream_cap``: events the stream keeps (both backends).
DEFAULT_EVENTS_STREAM_CAP = 1_000_000

log = logging.getLogger(__name__)

#: Events a follower may have waiting before newer ones are dropped (a stuck reader).
FOLLOW_BACKLOG = 10_000


def queue_order(ticket: Ticket) -> tuple[int, datetime, int]:
    """Take-next order: highest priority first, then longest waiting, then oldest number."""
    return (-int(ticket.priority), ticket.queued_at, ticket.number)


def _moved(ticket: Ticket, to_tier: str, now: datetime) -> Ticket:
    """Queued in ``to_tier`` from ``now``: a new stay (its own promises and offers).

    A reply the store counted before this move belongs to the stay that ends here,
    even when its time, read by another process before its round trip, is not before
    ``now``: it is dated back to that stay's start, so it never passes for the new
    tier's first response (issue 11)."""
    replied_at = ticket.replied_at
    if replied_at is not None and replied_at >= now:
        replied_at = ticket.queued_at
    return replace(
        ticket,
        replied_at=replied_at,
        tier=to_tier,
        state=TicketState.QUEUED,
        assignee=None,
        queued_at=now,
        tier_history=(*ticket.tier_history, to_tier),
        offered_to=None,
        offers=(),
    )


def _requeued(ticket: Ticket) -> Ticket:
    """Back in its queue, same place and stay; its owner joins ``offers`` (not offered it
    again)."""
    owner = ticket.assignee
    offers = ticket.offers if owner is None or owner in ticket.offers else (*ticket.offers, owner)
    return replace(ticket, state=TicketState.QUEUED, assignee=None, offered_to=None, offers=offers)


class MemoryStore(Store):
    def __init__(
        self,
        first_ticket_number: int = 1001,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        max_transcript_messages: int | None = None,
        events_stream_cap: int = DEFAULT_EVENTS_STREAM_CAP,
        max_transcript_bytes: int = 0,
    ) -> None:
        if max_transcript_messages is not None and max_transcript_messages < 1:
            raise ValueError(
                f"max_transcript_messages must be at least 1: {max_transcript_messages}"
            )
        if events_stream_cap < 1:
            raise ValueError(f"events_stream_cap must be at least 1: {events_stream_cap}")
        self._monotonic = monotonic
        self._max_transcript = max_transcript_messages
        self._max_bytes = max_transcript_bytes  # of message text, UTF-8 (0: no cap)
        self._bytes: dict[str, int] = defaultdict(int)
        self._seen: dict[str, float] = {}
        self._next_number = first_ticket_number
        self._contacts: dict[str, Contact] = {}
        self._contact_by_identity: dict[Identity, str] = {}
        self._conversations: dict[str, Conversation] = {}
        self._conversation_by_address: dict[tuple[str, str], str] = {}
        self._messages: dict[str, list[Message]] = defaultdict(list)
        self._events: list[Event] = []
        self._stream = _Stream(events_stream_cap)
        self._tickets: dict[str, Ticket] = {}
        self._ticket_by_number: dict[int, str] = {}
        self._open_by_conversation: dict[str, str] = {}  # conversation -> open ticket
        self._locks: dict[str, tuple[int, float]] = {}  # conversation -> (token, expires)
        self._tokens = itertools.count(1)
        self._timers: dict[str, datetime] = {}
        self._links: dict[str, str] = {}
        self._availability: dict[str, Availability] = {}
        self._assignments = itertools.count(1)
        self._last_assigned: dict[str, int] = {}
        self._users: dict[str, ConsoleUser] = {}
        self._versions: dict[int, ContentVersion] = {}
        self._drafts: dict[str, ContentDraft] = {}
        self._followers: list[asyncio.Queue[Event]] = []
        self._listening: dict[str, set[Listening]] = defaultdict(set)
        self._hits: dict[str, tuple[int, float]] = {}  # key -> (hits, window ends)
        self._outbox: dict[str, list[OutboxItem]] = {}
        self._outbox_lease: dict[str, tuple[str, float]] = {}  # conversation -> (token, expires)
        self._opened_by: dict[str, str] = {}  # inbound message id -> ticket id
        self._turn_keys: dict[str, set[str]] = {}  # conversation -> its turns' dedupe marks

    # -- signals and counters (one process: nobody else can hear) ---------------------

    async def publish(self, topic: str, payload: str) -> None:
        for listening in list(self._listening.get(topic, ())):
            listening.put(payload)

    async def listen(self, topic: str) -> Listening:
        listening = Listening(topic, self._stop_listening)
        self._listening[topic].add(listening)
        return listening

    def _stop_listening(self, listening: Listening) -> None:
        listeners = self._listening.get(listening.topic)
        if listeners is not None:
            listeners.discard(listening)
            if not listeners:
                del self._listening[listening.topic]

    async def hit(self, key: str, window_seconds: int) -> int:
        now = self._monotonic()
        hits, ends = self._hits.get(key, (0, now))
        if ends <= now:
            hits, ends = 0, now + window_seconds
        self._hits[key] = (hits + 1, ends)
        if len(self._hits) > 10_000 and len(self._hits) % 1000 == 0:
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}
        return hits + 1

    # -- the turn's two steps ------------------------------------------------------------
    # No await inside: each runs as one step of the event loop, hence atomically.

    async def begin_turn(
        self,
        conversation_id: str,
        seen_key: str,
        identity: Identity,
        lock_ttl_seconds: float,
        recent: int = 12,
    ) -> TurnStart | None:
        now = self._monotonic()
        expires = self._seen.get(seen_key)
        conversation = self._conversations.get(conversation_id)
        contact_id = self._contact_by_identity.get(identity)
        contact = self._contacts.get(contact_id) if contact_id else None
        ticket_id = self._open_by_conversation.get(conversation_id)
        ticket = self._tickets.get(ticket_id) if ticket_id else None
        if ticket is not None and ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED):
            ticket = None
        if expires is not None and expires > now:
            return TurnStart(True, contact, conversation, ticket)
        held = self._locks.get(conversation_id)
        if held is not None and held[1] > now:
            return None
        token = next(self._tokens)
        self._locks[conversation_id] = (token, now + lock_ttl_seconds)
        messages = self._messages.get(conversation_id, [])
        tail = tuple(messages[max(len(messages) - recent, 0) :]) if recent > 0 else ()
        return TurnStart(False, contact, conversation, ticket, Lease(conversation_id, token), tail)

    async def commit_turn(self, write: TurnWrite) -> Committed:
        now = self._monotonic()
        lease = write.lease
        if lease is not None:
            held = self._locks.get(lease.conversation_id)
            if held is None or held[0] != lease.token or held[1] <= now:
                raise LockLost(write.conversation_id, lease.token)
        if write.contact is not None:
            self._save_contact(write.contact)
        if write.conversation is not None:
            conversation = write.conversation
            self._conversations[conversation.id] = conversation
            key = (conversation.channel, conversation.address)
            self._conversation_by_address[key] = conversation.id
        for message in write.messages:
            self._append(message)
        for event in write.events:
            self._record(event)
        self._timers.update(write.timers)
        leased = False
        if write.outbox:
            self._outbox.setdefault(write.conversation_id, []).extend(write.outbox)
            if write.outbox_token is not None:
                leased = self._lease_outbox(
                    write.conversation_id, write.outbox_token, write.outbox_lease_seconds, now
                )
        if write.seen_key is not None:
            self._seen[write.seen_key] = now + write.seen_ttl_seconds
            self._turn_keys.setdefault(write.conversation_id, set()).add(write.seen_key)
        if lease is not None and write.unlock:
            self._unlock(lease)
        return Committed(outbox_leased=leased)

    async def turn_seen(self, conversation_id: str, key: str) -> bool:
        return await self.is_seen(key)

    async def open_handoff(self, ticket: Ticket) -> Ticket:
        if ticket.opened_by is not None:
            existing = self._tickets.get(self._opened_by.get(ticket.opened_by, ""))
            if existing is not None:
                return existing
        if ticket.number == 0:
            ticket = replace(ticket, number=self._next_number)
            self._next_number += 1
        self._open(ticket)
        if ticket.opened_by is not None:
            self._opened_by[ticket.opened_by] = ticket.id
        return ticket

    # -- the outbox ---------------------------------------------------------------------

    def _lease_outbox(self, conversation_id: str, token: str, seconds: float, now: float) -> bool:
        held = self._outbox_lease.get(conversation_id)
        if held is not None and held[0] != token and held[1] > now:
            return False
        self._outbox_lease[conversation_id] = (token, now + seconds)
        return True

    async def take_outbox(
        self, conversation_id: str, token: str, lease_seconds: float, limit: int = 100
    ) -> list[OutboxItem] | None:
        if not self._lease_outbox(conversation_id, token, lease_seconds, self._monotonic()):
            return None
        return list(self._outbox.get(conversation_id, [])[: max(limit, 0)])

    async def ack_outbox(
        self,
        conversation_id: str,
        token: str,
        item_ids: Sequence[str],
        timer: tuple[str, datetime] | None = None,
    ) -> int:
        items = self._outbox.get(conversation_id, [])
        for item_id in item_ids:
            if items and items[0].id == item_id:
                items.pop(0)
        if items:
            return len(items)
        self._outbox.pop(conversation_id, None)
        held = self._outbox_lease.get(conversation_id)
        if held is not None and held[0] == token:
            del self._outbox_lease[conversation_id]
        if timer is not None and self._timers.get(timer[0]) == timer[1]:
            del self._timers[timer[0]]
        return 0

    async def renew_outboxes(
        self, conversation_ids: Sequence[str], token: str, lease_seconds: float
    ) -> list[bool]:
        renewed: list[bool] = []
        for conversation_id in conversation_ids:
            held = self._outbox_lease.get(conversation_id)
            mine = held is not None and held[0] == token
            if mine:
                self._outbox_lease[conversation_id] = (token, self._monotonic() + lease_seconds)
            renewed.append(mine)
        return renewed

    async def outbox(self, conversation_id: str) -> list[OutboxItem]:
        return list(self._outbox.get(conversation_id, []))

    async def forget_conversation(self, conversation_id: str) -> None:
        conversation = self._conversations.pop(conversation_id, None)
        if conversation is not None:
            key = (conversation.channel, conversation.address)
            if self._conversation_by_address.get(key) == conversation_id:
                del self._conversation_by_address[key]
        self._messages.pop(conversation_id, None)
        self._bytes.pop(conversation_id, None)
        self._outbox.pop(conversation_id, None)
        self._outbox_lease.pop(conversation_id, None)
        self._locks.pop(conversation_id, None)
        self._events = [
            tombstone(e) if e.conversation_id == conversation_id else e for e in self._events
        ]
        self._stream.entries = [
            replace(entry, event=tombstone(entry.event))
            if entry.event.conversation_id == conversation_id
            else entry
            for entry in self._stream.entries
        ]
        self._timers.pop(f"outbox:{conversation_id}", None)
        self._open_by_conversation.pop(conversation_id, None)
        for mark in self._turn_keys.pop(conversation_id, set()):
            self._seen.pop(mark, None)

    async def forget_tickets(self, ticket_ids: Sequence[str]) -> None:
        for ticket_id in ticket_ids:
            ticket = self._tickets.pop(ticket_id, None)
            if ticket is None:
                continue
            if self._ticket_by_number.get(ticket.number) == ticket_id:
                del self._ticket_by_number[ticket.number]
            if self._open_by_conversation.get(ticket.conversation_id) == ticket_id:
                del self._open_by_conversation[ticket.conversation_id]
            if ticket.opened_by is not None:
                self._opened_by.pop(ticket.opened_by, None)
            for timer in [t for t in self._timers if ticket_id in t]:  # sla, offers ...
                del self._timers[timer]

    async def forget_contact_record(self, contact: Contact) -> None:
        self._contacts.pop(contact.id, None)
        for identity in contact.identities:
            if self._contact_by_identity.get(identity) == contact.id:
                del self._contact_by_identity[identity]

    async def mark_seen(self, key: str, ttl_seconds: int) -> bool:
        now = self._monotonic()
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl_seconds
        if len(self._seen) > 10_000 and len(self._seen) % 1000 == 0:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        return True

    async def is_seen(self, key: str) -> bool:
        expires = self._seen.get(key)
        return expires is not None and expires > self._monotonic()

    async def next_ticket_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    async def get_contact(self, contact_id: str) -> Contact | None:
        return self._contacts.get(contact_id)

    async def find_contact(self, identity: Identity) -> Contact | None:
        contact_id = self._contact_by_identity.get(identity)
        return self._contacts.get(contact_id) if contact_id else None

    async def save_contact(self, contact: Contact) -> None:
        self._save_contact(contact)

    def _save_contact(self, contact: Contact) -> None:
        self._contacts[contact.id] = contact
        for identity in contact.identities:
            self._contact_by_identity[identity] = contact.id

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get(conversation_id)

    async def find_conversation(self, channel: str, address: str) -> Conversation | None:
        conversation_id = self._conversation_by_address.get((channel, address))
        return self._conversations.get(conversation_id) if conversation_id else None

    async def save_conversation(self, conversation: Conversation, lease: Lease) -> None:
        held = self._locks.get(lease.conversation_id)
        if (
            lease.conversation_id != conversation.id
            or held is None
            or held[0] != lease.token
            or held[1] <= self._monotonic()
        ):
            raise LockLost(conversation.id, lease.token)
        self._conversations[conversation.id] = conversation
        self._conversation_by_address[(conversation.channel, conversation.address)] = (
            conversation.id
        )

    async def append_message(self, message: Message) -> None:
        self._append(message)

    def _append(self, message: Message) -> None:
        messages = self._messages[message.conversation_id]
        if any(m.id == message.id for m in messages[-RECENT_IDS:]):
            return  # a retried turn's line, already written
        messages.append(message)
        cid = message.conversation_id
        self._bytes[cid] += len(message.text.encode())
        if self._max_transcript is not None and len(messages) > self._max_transcript:
            for gone in messages[: len(messages) - self._max_transcript]:
                self._bytes[cid] -= len(gone.text.encode())
            del messages[: len(messages) - self._max_transcript]
        while self._max_bytes and self._bytes[cid] > self._max_bytes and len(messages) > 1:
            self._bytes[cid] -= len(messages.pop(0).text.encode())

    async def transcript(self, conversation_id: str, limit: int | None = None) -> list[Message]:
        messages = self._messages.get(conversation_id, [])
        if limit is None:
            return list(messages)
        return messages[max(len(messages) - limit, 0) :]

    async def append_event(self, event: Event) -> None:
        self._record(event)

    def _record(self, event: Event) -> None:
        self._events.append(event)
        self._stream.append(event)
        for follower in self._followers:
            try:
                follower.put_nowait(event)
            except asyncio.QueueFull:  # a live feed: a stuck reader misses, nobody waits
                log.warning("event follower %d behind; dropped %s", id(follower), event.kind)

    @asynccontextmanager
    async def follow(self) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(FOLLOW_BACKLOG)
        self._followers.append(queue)

        async def feed() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        try:
            yield feed()
        finally:
            self._followers.remove(queue)

    async def recent_events(self, limit: int) -> list[Event]:
        if limit <= 0:
            return []
        return [entry.event for entry in self._stream.entries[-limit:]]

    # -- content versions (no await inside: each is atomic in one event loop) --------

    async def live_content_version(self) -> int:
        return max(self._versions, default=0)

    async def content_version(self, number: int) -> ContentVersion | None:
        return self._versions.get(number)

    async def content_history(self, limit: int = 50) -> list[ContentVersion]:
        numbers = sorted(self._versions, reverse=True)[:limit]
        return [replace(self._versions[n], files={}) for n in numbers]

    async def publish_content(self, expected_live: int, version: ContentVersion) -> PublishResult:
        live = max(self._versions, default=0)
        if live != expected_live:
            return PublishResult(ok=False, number=0, live=live)
        number = live + 1
        self._versions[number] = replace(version, number=number, files=dict(version.files))
        return PublishResult(ok=True, number=number, live=number)

    async def save_draft(self, draft: ContentDraft) -> None:
        self._drafts[draft.owner] = draft

    async def get_draft(self, owner: str) -> ContentDraft | None:
        return self._drafts.get(owner)

    async def discard_draft(self, owner: str) -> bool:
        return self._drafts.pop(owner, None) is not None

    async def save_user(self, user: ConsoleUser) -> None:
        self._users[user.login] = user

    async def get_user(self, login: str) -> ConsoleUser | None:
        return self._users.get(login)

    async def delete_user(self, login: str) -> bool:
        return self._users.pop(login, None) is not None

    async def users(self) -> list[ConsoleUser]:
        return [self._users[login] for login in sorted(self._users)]

    async def events(
        self, *, conversation_id: str | None = None, ticket_id: str | None = None
    ) -> list[Event]:
        if conversation_id is None and ticket_id is None:
            return [entry.event for entry in self._stream.entries]
        return [
            e
            for e in self._events
            if (conversation_id is None or e.conversation_id == conversation_id)
            and (ticket_id is None or e.ticket_id == ticket_id)
        ]

    async def read_stream(self, after: str | None = None, count: int = 1000) -> list[StreamEntry]:
        return self._stream.after(0 if after is None else position_key(after)[1], count)

    async def stream_info(self) -> StreamInfo:
        stream = self._stream
        first = stream.entries[0] if stream.entries else None
        return StreamInfo(len(stream.entries), stream.added, stream.cap, first)

    async def create_group(self, group: str) -> None:
        self._stream.groups.setdefault(group, _Group())

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_seconds: float | None = None
    ) -> list[StreamEntry]:
        stream = self._stream
        state = stream.group(group)
        mine = [seq for seq, owner in state.pending.items() if owner == consumer]
        if mine:
            kept = [entry for seq in mine if (entry := stream.at(seq)) is not None]
            for seq in mine:
                if stream.at(seq) is None:  # dropped by the cap before it was acknowledged
                    del state.pending[seq]
            if kept:
                return kept[:count]
        new = stream.after(state.last, count)
        if not new and block_seconds:
            try:
                await asyncio.wait_for(stream.grew.wait(), block_seconds)
            except TimeoutError:
                return []
            new = stream.after(state.last, count)
        for entry in new:
            seq = position_key(entry.position)[1]
            state.pending[seq] = consumer
            state.last = seq
        return new

    async def ack(self, group: str, positions: Sequence[str]) -> int:
        state = self._stream.group(group)
        done = 0
        for position in positions:
            if state.pending.pop(position_key(position)[1], None) is not None:
                done += 1
        return done

    async def group_position(self, group: str) -> str | None:
        state = self._stream.groups.get(group)
        return None if state is None else f"0-{state.last}"

    async def open_ticket(self, ticket: Ticket) -> None:
        self._open(ticket)

    def _open(self, ticket: Ticket) -> None:
        if ticket.state is not TicketState.QUEUED:
            raise ValueError(f"a new ticket must be queued, not {ticket.state}")
        old = self._tickets.get(ticket.id)
        if old is not None and self._open_by_conversation.get(old.conversation_id) == old.id:
            del self._open_by_conversation[old.conversation_id]
        self._tickets[ticket.id] = ticket
        self._ticket_by_number[ticket.number] = ticket.id
        self._open_by_conversation[ticket.conversation_id] = ticket.id

    async def open_ticket_of(self, conversation_id: str) -> Ticket | None:
        ticket_id = self._open_by_conversation.get(conversation_id)
        ticket = self._tickets.get(ticket_id) if ticket_id else None
        if ticket is None or ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED):
            return None
        return ticket

    async def get_ticket(self, ticket_id: str) -> Ticket | None:
        return self._tickets.get(ticket_id)

    async def find_ticket(self, number: int) -> Ticket | None:
        ticket_id = self._ticket_by_number.get(number)
        return self._tickets.get(ticket_id) if ticket_id else None

    def _load(self, agent_id: str) -> int:
        return sum(
            1
            for t in self._tickets.values()
            if t.state is TicketState.ASSIGNED and t.assignee == agent_id
        )

    def _assign(self, ticket: Ticket, agent_id: str, max_open: int | None) -> TicketChange:
        if max_open is not None and self._load(agent_id) >= max_open:
            return TicketChange(ticket, ChangeError.AT_CAPACITY)
        claimed = replace(ticket, state=TicketState.ASSIGNED, assignee=agent_id, offered_to=None)
        self._tickets[ticket.id] = claimed
        self._last_assigned[agent_id] = next(self._assignments)
        return TicketChange(claimed)

    async def claim(
        self,
        ticket_id: str,
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        tiers: Sequence[str] = (),
    ) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state is TicketState.ASSIGNED:
            return TicketChange(ticket, ChangeError.ALREADY_CLAIMED)
        if ticket.state is not TicketState.QUEUED:
            return TicketChange(ticket, ChangeError.NOT_QUEUED)
        if tiers and ticket.tier not in tiers:
            return TicketChange(ticket, ChangeError.NOT_IN_TIER)
        return self._assign(ticket, agent_id, max_open)

    async def take_next(
        self,
        tiers: Sequence[str],
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        skills: SkillFilter | None = None,
    ) -> TicketChange:
        candidates: list[tuple[int, tuple[int, datetime, int], Ticket]] = []
        for tier in tiers:
            queue = [
                t
                for t in self._tickets.values()
                if t.state is TicketState.QUEUED and t.tier == tier
            ]
            for ticket in heapq.nsmallest(SKILL_SCAN, queue, key=queue_order):
                if ticket.offered_to is not None and ticket.offered_to != agent_id:
                    continue
                fits = skills is None or set(ticket.skills) <= set(skills.skills)
                if not fits and skills is not None and tier in skills.strict_tiers:
                    continue
                candidates.append((0 if fits else 1, queue_order(ticket), ticket))
                if fits:
                    break  # the rest of this queue comes after it
        if not candidates:
            return TicketChange(None, ChangeError.NOT_FOUND)
        best = min(candidates, key=lambda c: (c[0], c[1]))[2]
        return self._assign(best, agent_id, max_open)

    async def escalate(
        self,
        ticket_id: str,
        to_tier: str,
        now: datetime,
        *,
        expect: Ticket | None = None,
    ) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED):
            return TicketChange(ticket, ChangeError.NOT_OPEN)
        if expect is not None and ticket.tier != expect.tier:
            return TicketChange(ticket, ChangeError.NOT_IN_TIER)
        if expect is not None and ticket.assignee != expect.assignee:
            return TicketChange(ticket, ChangeError.ALREADY_CLAIMED)
        if ticket.tier == to_tier:
            return TicketChange(ticket, ChangeError.SAME_TIER)
        moved = _moved(ticket, to_tier, now)
        self._tickets[ticket.id] = moved
        return TicketChange(moved)

    def _owned(self, ticket_id: str, agent_id: str) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state is not TicketState.ASSIGNED:
            return TicketChange(ticket, ChangeError.NOT_OPEN)
        if ticket.assignee != agent_id:
            return TicketChange(ticket, ChangeError.NOT_ASSIGNEE)
        return TicketChange(ticket)

    async def release(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        owned = self._owned(ticket_id, agent_id)
        if not owned.ok or owned.ticket is None:
            return owned
        released = _requeued(owned.ticket)
        self._tickets[ticket_id] = released
        return TicketChange(released)

    async def resolve(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        owned = self._owned(ticket_id, agent_id)
        if not owned.ok or owned.ticket is None:
            return owned
        resolved = replace(owned.ticket, state=TicketState.RESOLVED, resolved_at=now)
        self._tickets[ticket_id] = resolved
        if self._open_by_conversation.get(resolved.conversation_id) == ticket_id:
            del self._open_by_conversation[resolved.conversation_id]
        return TicketChange(resolved)

    async def close_by_customer(self, ticket_id: str, now: datetime) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED):
            return TicketChange(ticket, ChangeError.NOT_OPEN)
        closed = replace(ticket, state=TicketState.CLOSED, resolved_at=now)
        self._tickets[ticket_id] = closed
        if self._open_by_conversation.get(closed.conversation_id) == ticket_id:
            del self._open_by_conversation[closed.conversation_id]
        return TicketChange(closed)

    async def prune_tickets(self, resolved_before: datetime, limit: int = 500) -> list[str]:
        done = (TicketState.RESOLVED, TicketState.CLOSED)
        old = sorted(
            (
                t
                for t in self._tickets.values()
                if t.state in done and t.resolved_at is not None and t.resolved_at < resolved_before
            ),
            key=lambda t: (t.resolved_at, t.number),
        )[: max(limit, 0)]
        for t in old:
            del self._tickets[t.id]
            if t.opened_by is not None and self._opened_by.get(t.opened_by) == t.id:
                del self._opened_by[t.opened_by]
            if self._ticket_by_number.get(t.number) == t.id:
                del self._ticket_by_number[t.number]
        return [t.id for t in old]

    async def mark_first_response(
        self,
        ticket_id: str,
        now: datetime,
        *,
        agent_id: str | None = None,
        tier: str | None = None,
    ) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if agent_id is not None and (
            ticket.state is not TicketState.ASSIGNED or ticket.assignee != agent_id
        ):
            return TicketChange(ticket, ChangeError.NOT_ASSIGNEE)
        if tier is not None and ticket.tier != tier:
            return TicketChange(ticket, ChangeError.NOT_IN_TIER)
        ticket = replace(ticket, first_response_at=ticket.first_response_at or now, replied_at=now)
        self._tickets[ticket_id] = ticket
        return TicketChange(ticket)

    async def breach_step(
        self,
        ticket_id: str,
        breach: Breach,
        action: BreachAction,
        now: datetime,
        to_tier: str | None = None,
    ) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        mark = breach.mark(action)
        if mark in ticket.breaches:
            return TicketChange(ticket, ChangeError.DONE_ALREADY)
        if (
            ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED)
            or ticket.tier != breach.tier
            or ticket.queued_at != breach.queued_at
            or (breach.promise is Promise.FIRST_RESPONSE and ticket.replied_at != breach.replied_at)
        ):
            return TicketChange(ticket, ChangeError.NOT_BREACHED)
        changed = ticket
        if action is BreachAction.RAISE_PRIORITY:
            changed = replace(ticket, priority=Priority(min(ticket.priority + 1, max(Priority))))
        elif action is BreachAction.REASSIGN and ticket.state is TicketState.ASSIGNED:
            changed = _requeued(ticket)
        elif action is BreachAction.ESCALATE:
            if to_tier is None or to_tier == ticket.tier:
                return TicketChange(ticket, ChangeError.SAME_TIER)
            changed = _moved(ticket, to_tier, now)
        changed = replace(changed, breaches=(*changed.breaches, mark))
        self._tickets[ticket_id] = changed
        return TicketChange(changed, before=ticket)

    async def route(self, ticket_id: str, routing: Routing, now: datetime) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state is not TicketState.QUEUED:
            return TicketChange(ticket, ChangeError.NOT_QUEUED)
        changed = replace(
            ticket,
            priority=ticket.priority if routing.priority is None else routing.priority,
            skills=ticket.skills if routing.skills is None else routing.skills,
            private=ticket.private if routing.private is None else routing.private,
        )
        if routing.tier is not None and routing.tier != ticket.tier:
            changed = _moved(changed, routing.tier, now)
        self._tickets[ticket_id] = changed
        return TicketChange(changed, before=ticket)

    async def move_offer(
        self, ticket_id: str, queued_at: datetime, current: str | None, to: str | None
    ) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state is not TicketState.QUEUED or ticket.queued_at != queued_at:
            return TicketChange(ticket, ChangeError.STALE)
        if ticket.offered_to != current:
            return TicketChange(ticket, ChangeError.STALE)
        offers = ticket.offers if to is None or to in ticket.offers else (*ticket.offers, to)
        changed = replace(ticket, offered_to=to, offers=offers)
        self._tickets[ticket_id] = changed
        return TicketChange(changed, before=ticket)

    async def agent_loads(self, agent_ids: Sequence[str]) -> dict[str, AgentLoad]:
        return {a: AgentLoad(self._load(a), self._last_assigned.get(a, 0)) for a in agent_ids}

    async def set_availability(self, agent_id: str, state: Availability) -> None:
        self._availability[agent_id] = state

    async def availability(self, agent_id: str) -> Availability | None:
        return self._availability.get(agent_id)

    async def availabilities(self) -> dict[str, Availability]:
        return dict(self._availability)

    async def record_csat(self, ticket_id: str, score: int) -> TicketChange:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return TicketChange(None, ChangeError.NOT_FOUND)
        if ticket.state is not TicketState.RESOLVED:  # once: a closed ticket keeps its score
            return TicketChange(ticket, ChangeError.NOT_OPEN)
        scored = replace(ticket, csat=score, state=TicketState.CLOSED)
        self._tickets[ticket_id] = scored
        return TicketChange(scored)

    async def queue(self, tier: str) -> list[Ticket]:
        waiting = [
            t for t in self._tickets.values() if t.state is TicketState.QUEUED and t.tier == tier
        ]
        return sorted(waiting, key=queue_order)

    async def assigned(self, agent_id: str) -> list[Ticket]:
        return [
            t
            for t in self._tickets.values()
            if t.state is TicketState.ASSIGNED and t.assignee == agent_id
        ]

    async def set_link(self, key: str, value: str) -> None:
        self._links[key] = value

    async def get_link(self, key: str) -> str | None:
        return self._links.get(key)

    async def try_lock(self, conversation_id: str, ttl_seconds: float) -> Lease | None:
        now = self._monotonic()
        held = self._locks.get(conversation_id)
        if held is not None and held[1] > now:
            return None
        token = next(self._tokens)
        self._locks[conversation_id] = (token, now + ttl_seconds)
        return Lease(conversation_id, token)

    async def unlock(self, lease: Lease) -> None:
        self._unlock(lease)

    def _unlock(self, lease: Lease) -> None:
        held = self._locks.get(lease.conversation_id)
        if held is not None and held[0] == lease.token:
            del self._locks[lease.conversation_id]

    async def schedule(self, timer_id: str, due_at: datetime) -> None:
        self._timers[timer_id] = due_at

    async def pop_due(
        self, now: datetime, limit: int = 100, lease_until: datetime | None = None
    ) -> list[str]:
        if limit <= 0:
            return []
        due = sorted((at, timer_id) for timer_id, at in self._timers.items() if at <= now)[:limit]
        for _, timer_id in due:
            if lease_until is None:
                del self._timers[timer_id]
            else:
                self._timers[timer_id] = lease_until
        return [timer_id for _, timer_id in due]

    async def cancel_timer(self, timer_id: str, due_at: datetime) -> bool:
        if self._timers.get(timer_id) != due_at:
            return False
        del self._timers[timer_id]
        return True


class _Group:
    """A consumer group: the last sequence given out, and who holds which unacknowledged."""

    def __init__(self) -> None:
        self.last = 0
        self.pending: dict[int, str] = {}  # sequence -> consumer, in delivery order


class _Stream:
    """The memory event stream: positions ``0-<sequence>``. Like Redis' approximate
    ``MAXLEN``, the oldest entries are dropped in batches once the stream holds a tenth
    more than ``cap``, so appends stay cheap; at least the last ``cap`` are kept."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._slack = max(cap // 10, 1)
        self.entries: list[StreamEntry] = []
        self.added = 0
        self.groups: dict[str, _Group] = {}
        # Replaced on every append, so a blocked group reader wakes without this
        # method awaiting anything (appends stay one step of the event loop).
        self.grew = asyncio.Event()

    def append(self, event: Event) -> None:
        self.added += 1
        self.entries.append(StreamEntry(f"0-{self.added}", event))
        if len(self.entries) > self.cap + self._slack:
            del self.entries[: len(self.entries) - self.cap]
        self.grew.set()
        self.grew = asyncio.Event()

    def _first_seq(self) -> int:
        return self.added - len(self.entries) + 1

    def at(self, seq: int) -> StreamEntry | None:
        index = seq - self._first_seq()
        return self.entries[index] if 0 <= index < len(self.entries) else None

    def after(self, seq: int, count: int) -> list[StreamEntry]:
        start = max(seq + 1 - self._first_seq(), 0)
        return self.entries[start : start + max(count, 0)]

    def group(self, name: str) -> _Group:
        state = self.groups.get(name)
        if state is None:
            raise StoreError(f"no consumer group {name!r} on the event stream")
        return state
