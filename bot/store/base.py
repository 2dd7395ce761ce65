"""The store contract: every piece of state Escala keeps goes through it.

Two backends implement it: :class:`~bot.store.memory.MemoryStore` (the embedded
default) and a Redis backend for production. One contract test suite
(``tests/contract``) runs against every backend.

Rules of the contract:

* Anything that must be atomic (dedupe, ticket numbering, claim, take-next,
  escalate, release, resolve, due timers) is **one** store operation. The engine
  never does read-modify-write on shared ticket state.
* Conversation state is loaded and saved only under the conversation's lock; the
  lock hands out a :class:`Lease` whose fencing token the store checks on save,
  so a process that lost its lock (paused too long) cannot overwrite the next holder.

The contract is split into role interfaces (:class:`DedupeStore`,
:class:`ContactStore`, :class:`ConversationStore`, :class:`EventLog`,
:class:`DeskStore`, :class:`LinkStore`, :class:`LockStore`, :class:`TimerStore`,
:class:`SignalStore`, :class:`CounterStore`, :class:`ContentStore`);
:class:`Store` is all of them on one backend. A component is typed by the roles it
uses, so what it can touch is visible in its signature.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import stable_id
from bot.errors import LockTimeout
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
)

#: How far back :meth:`Store.append_message` looks for the same message id.
RECENT_IDS = 20
#: How many tickets of each queue take-next looks at for one with the right skills.
SKILL_SCAN = 100


@dataclass(frozen=True)
class Lease:
    """Proof of holding a conversation's lock. ``token`` grows with every grant."""

    conversation_id: str
    token: int


class ChangeError(enum.StrEnum):
    """Why a ticket operation did not happen."""

    NOT_FOUND = "not_found"
    ALREADY_CLAIMED = "already_claimed"
    NOT_QUEUED = "not_queued"
    NOT_ASSIGNEE = "not_assignee"
    NOT_OPEN = "not_open"
    SAME_TIER = "same_tier"
    AT_CAPACITY = "at_capacity"
    #: This breach action was already taken (by this or another process).
    DONE_ALREADY = "done_already"
    #: The promise is no longer broken: answered, resolved, or the ticket moved on.
    NOT_BREACHED = "not_breached"
    #: The ticket changed since it was read (a new stay, another offer).
    STALE = "stale"
    #: The ticket is (now) in a tier the agent does not work, or no longer in the
    #: tier the caller saw (escalated meanwhile).
    NOT_IN_TIER = "not_in_tier"


@dataclass(frozen=True)
class TicketChange:
    """The result of an atomic ticket operation: the ticket after it, or why not."""

    ticket: Ticket | None
    error: ChangeError | None = None
    #: The ticket just before the change, for steps whose effect depends on it.
    before: Ticket | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Breach:
    """One broken promise: ``promise`` of the ticket's stay in ``tier`` that began at
    ``queued_at``. For a first response, ``replied_at`` is the ticket's last agent reply
    as the caller saw it (before the stay began): the step refuses if it changed."""

    promise: Promise
    tier: str
    queued_at: datetime
    replied_at: datetime | None = None

    def mark(self, action: BreachAction) -> str:
        return f"{self.promise}:{self.tier}:{self.queued_at.isoformat()}:{action}"


@dataclass(frozen=True)
class AgentLoad:
    """How busy an agent is: open tickets, and when they last got one (a sequence
    number: lower is longer idle; 0 never)."""

    open: int
    last_assigned: int


@dataclass(frozen=True)
class SkillFilter:
    """Take-next's use of skills: the agent's ``skills``; in ``strict_tiers`` only
    tickets whose skills the agent all has are served, elsewhere they come first."""

    skills: tuple[str, ...]
    strict_tiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routing:
    """What a router decided about a waiting ticket (``None``: unchanged)."""

    tier: str | None = None
    priority: Priority | None = None
    skills: tuple[str, ...] | None = None
    private: bool | None = None


@dataclass(frozen=True)
class TurnStart:
    """What a turn reads before it begins (see :meth:`Store.begin_turn`)."""

    seen: bool
    contact: Contact | None
    conversation: Conversation | None
    open_ticket: Ticket | None
    #: The lock, when read by :meth:`Store.begin_turn` (None for a duplicate).
    lease: Lease | None = None
    #: The last messages of the transcript (what triage reads on a handoff; a store
    #: may decode them only when read).
    recent: Sequence[Message] = ()


@dataclass
class TurnWrite:
    """Everything one turn produced, written by :meth:`Store.commit_turn` in one step.

    Per-conversation parts (the conversation, its transcript lines, its events, the
    outbox items, the dedupe mark, the unlock) are one atomic write, fenced by
    ``lease`` (no ``lease``: an unfenced write outside a turn, such as an agent's
    reply); the parts kept elsewhere (the contact and its identities, the address
    index, timers, the global and per-ticket event logs) go in the same round trip.
    """

    conversation_id: str
    lease: Lease | None = None
    conversation: Conversation | None = None
    contact: Contact | None = None
    messages: list[Message] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    timers: dict[str, datetime] = field(default_factory=dict)
    #: The turn's dedupe mark (its provider message id), kept ``seen_ttl_seconds``.
    seen_key: str | None = None
    seen_ttl_seconds: int = 0
    #: Give the lock back in the same step.
    unlock: bool = True
    #: With outbox items: take the conversation's delivery lease with this token (when
    #: free) so the committing process delivers them at once, without another read.
    outbox_token: str | None = None
    outbox_lease_seconds: float = 30.0

    @property
    def empty(self) -> bool:
        return not (
            self.conversation or self.contact or self.messages or self.events or self.outbox
        ) and not (self.timers or self.seen_key or (self.lease and self.unlock))


@dataclass(frozen=True)
class OutboxAck:
    """One :meth:`OutboxStore.ack_outbox` call, for :meth:`OutboxStore.ack_outboxes`."""

    conversation_id: str
    token: str
    item_ids: Sequence[str]
    timer: tuple[str, datetime] | None = None


@dataclass(frozen=True)
class Erasure:
    """What :meth:`Store.forget_contact` erased (counts only)."""

    conversations: int
    tickets: int
    found: bool = True


#: Event data kept in an erased conversation's tombstones: what KPIs count, nothing
#: that identifies or quotes the customer.
KPI_FIELDS = frozenset(
    {"tier", "from_tier", "to_tier", "priority", "score", "number", "private", "channel"}
)
ERASED = "erased"


def tombstone(event: Event) -> Event:
    """``event`` without its conversation and anything but the KPI fields; its ticket
    becomes an opaque id (the events of one erased ticket still group together)."""
    ticket_id = None
    if event.ticket_id is not None:
        digest = hashlib.blake2b(event.ticket_id.encode(), digest_size=8).hexdigest()
        ticket_id = f"{ERASED}_{digest}"
    return Event(
        id=event.id,
        kind=event.kind,
        at=event.at,
        conversation_id=ERASED,
        ticket_id=ticket_id,
        data={k: v for k, v in event.data.items() if k in KPI_FIELDS},
    )


@dataclass(frozen=True)
class Committed:
    """What :meth:`Store.commit_turn` did: whether the caller now holds the outbox's
    delivery lease (it then delivers the items it wrote, in order)."""

    outbox_leased: bool = False


class DedupeStore(abc.ABC):
    """Provider message ids and other "only once" marks, forgotten after a while."""

    @abc.abstractmethod
    async def mark_seen(self, key: str, ttl_seconds: int) -> bool:
        """Record ``key`` (a provider message id); True the first time, False for a duplicate.

        The key is forgotten after ``ttl_seconds``.
        """

    @abc.abstractmethod
    async def is_seen(self, key: str) -> bool:
        """True while ``key`` is recorded by :meth:`mark_seen` and not yet expired."""


class ContactStore(abc.ABC):
    """Who writes to us, indexed by every identity (channel and address) they use."""

    @abc.abstractmethod
    async def get_contact(self, contact_id: str) -> Contact | None: ...

    @abc.abstractmethod
    async def find_contact(self, identity: Identity) -> Contact | None: ...

    @abc.abstractmethod
    async def save_contact(self, contact: Contact) -> None:
        """Create or replace a contact and index it by each of its identities."""


@dataclass(frozen=True)
class StreamEntry:
    """An event as the event stream keeps it. ``position`` is opaque and orders the
    stream (Redis stream ids ``<ms>-<seq>``); compare positions with :func:`position_key`."""

    position: str
    event: Event


def position_key(position: str) -> tuple[int, int]:
    """A stream position as a sortable pair (``"1700000000000-3"`` -> ``(1700000000000, 3)``)."""
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class StreamInfo:
    """What the event stream keeps: ``length`` events of the ``added`` ever appended,
    at least the last ``cap``; ``first`` is the oldest one kept."""

    length: int
    added: int
    cap: int
    first: StreamEntry | None

    @property
    def trimmed(self) -> int:
        """Events appended but no longer kept (dropped by the cap)."""
        return max(self.added - self.length, 0)


class EventLog(abc.ABC):
    """The append-only log every state change is written to (:mod:`bot.events`).

    Every event goes to the **event stream** (all events, in append order, capped at
    ``events_stream_cap``: the oldest are dropped once more are kept, never others),
    and to the capped lists of its conversation and of its ticket. The stream is what
    reports and exports read (``escala report``, ``escala events export``); a consumer
    group reads it continuously, at least once per event.
    """

    @abc.abstractmethod
    async def append_event(self, event: Event) -> None: ...

    @abc.abstractmethod
    async def events(
        self, *, conversation_id: str | None = None, ticket_id: str | None = None
    ) -> list[Event]:
        """Events oldest first, for a conversation, a ticket, or (neither given) every
        event the stream keeps."""

    @abc.abstractmethod
    async def read_stream(self, after: str | None = None, count: int = 1000) -> list[StreamEntry]:
        """Up to ``count`` stream entries after position ``after`` (None: from the oldest
        kept), oldest first. Page by passing the last position read."""

    @abc.abstractmethod
    async def stream_info(self) -> StreamInfo: ...

    @abc.abstractmethod
    async def create_group(self, group: str) -> None:
        """Create consumer group ``group`` reading from the oldest event kept; a no-op
        when it exists (its position is kept)."""

    @abc.abstractmethod
    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_seconds: float | None = None
    ) -> list[StreamEntry]:
        """Entries for ``consumer`` of ``group``: first those it was given and has not
        acknowledged (oldest first; a consumer that crashed gets them again), else up
        to ``count`` new ones, waiting up to ``block_seconds`` for one (None: no wait).
        Each new entry goes to one consumer of the group. Entries the cap dropped
        before they were acknowledged are skipped."""

    @abc.abstractmethod
    async def ack(self, group: str, positions: Sequence[str]) -> int:
        """Acknowledge entries handled by ``group``; how many were pending."""

    @abc.abstractmethod
    async def group_position(self, group: str) -> str | None:
        """The last position ``group`` was given (``"0-0"``: none yet); None: no such group."""

    async def recent_events(self, limit: int) -> list[Event]:
        """The last ``limit`` events of the whole log, oldest first (a backend reads
        only those; this default reads everything)."""
        if limit <= 0:
            return []
        return (await self.events())[-limit:]

    @abc.abstractmethod
    def follow(self) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Events as they are appended, by this process or any other sharing the
        backend (Redis: pub/sub), for live views::

            async with store.follow() as feed:
                async for event in feed: ...

        Only events appended after the ``async with`` is entered; at most once each.
        A live feed, not a log: a consumer that falls far behind, or a connection
        that drops, may miss events (read :meth:`events` for the record). The feed
        ends (raises) when the backend goes away; the caller follows again.
        """


class LinkStore(abc.ABC):
    """Small values adapters keep across processes."""

    @abc.abstractmethod
    async def set_link(self, key: str, value: str) -> None:
        """Remember a small value for an adapter (a Slack card's channel and ts for a
        ticket, the ticket of a Slack thread ...). Keys are namespaced by the caller."""

    @abc.abstractmethod
    async def get_link(self, key: str) -> str | None: ...


class ConsoleUserStore(abc.ABC):
    """Web console users (login, Argon2 hash, role), shared by every process."""

    @abc.abstractmethod
    async def save_user(self, user: ConsoleUser) -> None:
        """Create or replace the user with ``user.login``."""

    @abc.abstractmethod
    async def get_user(self, login: str) -> ConsoleUser | None: ...

    @abc.abstractmethod
    async def delete_user(self, login: str) -> bool:
        """Forget a user; whether there was one."""

    @abc.abstractmethod
    async def users(self) -> list[ConsoleUser]:
        """Every user, by login."""


@dataclass(frozen=True)
class ContentVersion:
    """One published version of the admin content (KB, flows, routing rules), immutable
    once stored: ``files`` maps a logical path (``kb/account.toml``, ``flows/greeting.toml``,
    ``routing.toml``) to its TOML text (:mod:`bot.content`)."""

    number: int
    author: str
    at: datetime
    message: str
    #: What changed against the version before, one line each ("kb entry 'x' changed").
    changes: tuple[str, ...]
    files: Mapping[str, str]
    #: Set when this version restores an earlier one (a rollback).
    restored_from: int | None = None


@dataclass(frozen=True)
class ContentDraft:
    """An admin's work in progress: the files as edited, and the live version they
    started from (the base a publish compares against)."""

    owner: str
    base: int
    files: Mapping[str, str]
    updated_at: datetime


@dataclass(frozen=True)
class PublishResult:
    """``ok``: ``number`` is the new live version. Else another publish came first and
    ``live`` is the version now live (the draft must be rebased on it)."""

    ok: bool
    number: int
    live: int


class ContentStore(abc.ABC):
    """Versions of the admin content, shared by every process (issue 16)."""

    @abc.abstractmethod
    async def live_content_version(self) -> int:
        """The number of the live (latest) version; 0 when nothing was published yet.
        Cheap: every process asks it about once a second."""

    @abc.abstractmethod
    async def content_version(self, number: int) -> ContentVersion | None: ...

    @abc.abstractmethod
    async def content_history(self, limit: int = 50) -> list[ContentVersion]:
        """The last ``limit`` versions, newest first, with empty ``files`` (the list of
        what happened, without the weight of every version's text)."""

    @abc.abstractmethod
    async def publish_content(self, expected_live: int, version: ContentVersion) -> PublishResult:
        """Compare-and-set in one atomic step: when the live version is still
        ``expected_live``, store ``version`` as number ``expected_live + 1`` (its own
        ``number`` is ignored) and make it live; else change nothing. Two admins
        publishing from the same base: exactly one wins."""

    @abc.abstractmethod
    async def save_draft(self, draft: ContentDraft) -> None:
        """Create or replace ``draft.owner``'s draft."""

    @abc.abstractmethod
    async def get_draft(self, owner: str) -> ContentDraft | None: ...

    @abc.abstractmethod
    async def discard_draft(self, owner: str) -> bool:
        """Forget the draft; whether there was one."""


class TimerStore(abc.ABC):
    """Timers popped atomically by whichever process sweeps first."""

    @abc.abstractmethod
    async def schedule(self, timer_id: str, due_at: datetime) -> None:
        """Set (or move) a timer."""

    @abc.abstractmethod
    async def pop_due(
        self, now: datetime, limit: int = 100, lease_until: datetime | None = None
    ) -> list[str]:
        """Return up to ``limit`` timers due at ``now`` (earliest first), each to one
        caller only: atomically removed, or, with ``lease_until``, moved to that time,
        so a caller that dies before handling one leaves it to fire again then (the
        caller :meth:`cancel_timer` s it once handled)."""

    @abc.abstractmethod
    async def cancel_timer(self, timer_id: str, due_at: datetime) -> bool:
        """Remove the timer if it is still set at exactly ``due_at`` (not moved since);
        whether it was removed."""


class LockStore(abc.ABC):
    """One holder at a time per conversation, with fencing tokens."""

    @abc.abstractmethod
    async def try_lock(self, conversation_id: str, ttl_seconds: float) -> Lease | None:
        """Take the conversation's lock if free (or expired); None when held."""

    @abc.abstractmethod
    async def unlock(self, lease: Lease) -> None:
        """Give the lock back; a no-op when ``lease`` is no longer the holder."""

    # -- written once on top of the role ------------------------------------------

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        ttl_seconds: float = 30.0,
        wait_seconds: float = 10.0,
        poll_seconds: float = 0.005,
    ) -> AsyncIterator[Lease]:
        """Hold the conversation's lock for the body of an ``async with``.

        Waiting polls ``try_lock`` so the same code serves every backend; the wait is
        bounded and a timeout is an error (the provider retries), never a silent skip.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        lease = await self.try_lock(conversation_id, ttl_seconds)
        while lease is None:
            if loop.time() >= deadline:
                raise LockTimeout(conversation_id)
            await asyncio.sleep(poll_seconds)
            lease = await self.try_lock(conversation_id, ttl_seconds)
        try:
            yield lease
        finally:
            await self.unlock(lease)


class DeskStore(abc.ABC):
    """Tickets, their numbers and their tiers' queues: every change is atomic."""

    @abc.abstractmethod
    async def next_ticket_number(self) -> int:
        """A new human-friendly ticket number; never the same twice."""

    @abc.abstractmethod
    async def open_ticket(self, ticket: Ticket) -> None:
        """Store a new ``QUEUED`` ticket and put it in its tier's queue, atomically."""

    @abc.abstractmethod
    async def open_handoff(self, ticket: Ticket) -> Ticket:
        """Open a handoff's ticket once: a ticket with ``number`` 0 gets the next
        number; a second call for the same ``ticket.opened_by`` (a retried turn)
        changes nothing and returns the ticket the first call opened. One desk step."""

    @abc.abstractmethod
    async def get_ticket(self, ticket_id: str) -> Ticket | None: ...

    @abc.abstractmethod
    async def open_ticket_of(self, conversation_id: str) -> Ticket | None:
        """The conversation's ticket that is ``QUEUED`` or ``ASSIGNED``, if any.

        Kept by the same atomic steps that open and close tickets (issue 3), so it is
        true even when a router died between :meth:`open_ticket` and saving the
        conversation: the engine derives who owns a conversation from this, never from
        the conversation's own ``ticket_id``.
        """

    @abc.abstractmethod
    async def find_ticket(self, number: int) -> Ticket | None: ...

    @abc.abstractmethod
    async def claim(
        self,
        ticket_id: str,
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        tiers: Sequence[str] = (),
    ) -> TicketChange:
        """Assign a queued ticket to ``agent_id``. Exactly one of concurrent claims wins.

        Refused with ``AT_CAPACITY`` when the agent already holds ``max_open`` tickets,
        and with ``NOT_IN_TIER`` when ``tiers`` (the agent's) is given and the ticket is
        in none of them at claim time (escalated since the agent looked).
        """

    @abc.abstractmethod
    async def take_next(
        self,
        tiers: Sequence[str],
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        skills: SkillFilter | None = None,
    ) -> TicketChange:
        """Claim the best ticket waiting in any of ``tiers``: highest priority, then
        oldest in queue. ``NOT_FOUND`` when every one of those queues is empty.

        A ticket offered to another agent (automatic assignment) is skipped. With
        ``skills``, tickets whose skills the agent has come first (and are the only ones
        served in its strict tiers); only the first :data:`SKILL_SCAN` tickets of each
        queue are looked at, so a long queue stays cheap."""

    @abc.abstractmethod
    async def escalate(
        self,
        ticket_id: str,
        to_tier: str,
        now: datetime,
        *,
        expect: Ticket | None = None,
    ) -> TicketChange:
        """Move an open ticket to the queue of ``to_tier``, unassigned.

        With ``expect`` (the ticket as the caller saw it), refused unless it is still in
        that tier (``NOT_IN_TIER``) with that assignee (``ALREADY_CLAIMED``): an
        escalation decided on a stale look never takes a ticket from its new owner."""

    @abc.abstractmethod
    async def release(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        """Give an assigned ticket back to its queue (keeps its place by priority and
        original age). Only the assignee may release."""

    @abc.abstractmethod
    async def resolve(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        """Mark an assigned ticket resolved. Only the assignee may resolve."""

    @abc.abstractmethod
    async def close_by_customer(self, ticket_id: str, now: datetime) -> TicketChange:
        """The customer closes their open ticket (queued or assigned): it leaves its queue
        or its agent, ends ``closed`` with ``resolved_at`` = ``now``, and no longer owns
        the conversation. ``NOT_OPEN`` for a ticket already resolved or closed."""

    @abc.abstractmethod
    async def mark_first_response(
        self,
        ticket_id: str,
        now: datetime,
        *,
        agent_id: str | None = None,
        tier: str | None = None,
    ) -> TicketChange:
        """Record an agent reply: ``first_response_at`` once (later calls keep the
        first), ``replied_at`` every time.

        With ``agent_id`` and ``tier``: only while the ticket is still assigned to that
        agent in that tier, else refused (``NOT_ASSIGNEE``, ``NOT_IN_TIER``) and nothing
        recorded, so a reply racing an escalation never counts as the new tier's first
        response (issue 11)."""

    @abc.abstractmethod
    async def breach_step(
        self,
        ticket_id: str,
        breach: Breach,
        action: BreachAction,
        now: datetime,
        to_tier: str | None = None,
    ) -> TicketChange:
        """Take one breach action, atomically and once: ``DONE_ALREADY`` when its mark
        (:meth:`Breach.mark`) is on the ticket, ``NOT_BREACHED`` when the ticket is no
        longer in that stay (moved, resolved) or, for a first response, was answered.
        Otherwise the action happens and the mark is added in the same step:

        * ``notify``: nothing else (the caller tells the agents);
        * ``raise_priority``: one step up, at most urgent, re-placed in its queue;
        * ``reassign``: an assigned ticket goes back to its queue (keeping its place)
          and its owner joins ``offers``; a queued one is left as it is;
        * ``escalate``: to ``to_tier``'s queue, as :meth:`escalate`.

        ``before`` on the result is the ticket before the step."""

    @abc.abstractmethod
    async def route(self, ticket_id: str, routing: Routing, now: datetime) -> TicketChange:
        """Apply a router's classification to a queued ticket (``NOT_QUEUED``
        otherwise): priority, skills and private change in place (its queue place
        follows the priority); a new tier moves it to that queue as :meth:`escalate`."""

    @abc.abstractmethod
    async def move_offer(
        self, ticket_id: str, queued_at: datetime, current: str | None, to: str | None
    ) -> TicketChange:
        """Offer a queued ticket to ``to`` (``None``: to nobody), if it is still in the
        stay that began at ``queued_at`` and offered to ``current`` (compare and set;
        ``STALE`` otherwise). ``to`` joins the ticket's ``offers``."""

    @abc.abstractmethod
    async def agent_loads(self, agent_ids: Sequence[str]) -> dict[str, AgentLoad]:
        """Open tickets and last assignment of each agent."""

    @abc.abstractmethod
    async def set_availability(self, agent_id: str, state: Availability) -> None: ...

    @abc.abstractmethod
    async def availability(self, agent_id: str) -> Availability | None:
        """What the agent last said, ``None`` if never."""

    @abc.abstractmethod
    async def availabilities(self) -> dict[str, Availability]:
        """Every agent that said something, and what."""

    @abc.abstractmethod
    async def record_csat(self, ticket_id: str, score: int) -> TicketChange:
        """Store the customer's satisfaction score on a resolved ticket."""

    @abc.abstractmethod
    async def prune_tickets(self, resolved_before: datetime, limit: int = 500) -> list[str]:
        """Forget up to ``limit`` resolved or closed tickets whose ``resolved_at`` is
        before ``resolved_before``, oldest first, atomically per call: the ticket, its
        number and its own event list go; open tickets are never touched, and the
        conversation's events and the event log (KPIs) keep their lines. Returns the
        ids pruned; call again until it returns fewer than ``limit``.
        """

    @abc.abstractmethod
    async def queue(self, tier: str) -> list[Ticket]:
        """The tier's waiting tickets in the order take-next serves them."""

    @abc.abstractmethod
    async def assigned(self, agent_id: str) -> list[Ticket]:
        """Tickets currently assigned to an agent."""


class ConversationStore(abc.ABC):
    """Conversations and their transcripts, written under the conversation's lock."""

    @abc.abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    @abc.abstractmethod
    async def find_conversation(self, channel: str, address: str) -> Conversation | None: ...

    @abc.abstractmethod
    async def save_conversation(self, conversation: Conversation, lease: Lease) -> None:
        """Create or replace a conversation. Raises :class:`~bot.errors.LockLost` when
        ``lease`` is no longer the current holder of the conversation's lock."""

    @abc.abstractmethod
    async def append_message(self, message: Message) -> None:
        """Add a message at the end of its conversation's transcript, unless a message
        with the same id is among its last :data:`RECENT_IDS` messages: a turn retried
        after a store failure (its ids are derived from the provider's message id)
        writes each of its lines once.

        A backend may bound a transcript: it then keeps the most recent messages it
        was configured for and drops the oldest ones, atomically with the append.
        """

    @abc.abstractmethod
    async def transcript(self, conversation_id: str, limit: int | None = None) -> list[Message]:
        """The conversation's messages (as kept), oldest first; the last ``limit`` when given."""


class Listening:
    """What :meth:`SignalStore.listen` returns: the payloads published on one topic
    after the call, in the order they were published, until :meth:`close`.

    Backends feed it with :meth:`put`; a listener that falls behind by more than
    ``capacity`` payloads loses the oldest (signals are doorbells: the durable state,
    such as a transcript, is read again by whoever hears one).
    """

    def __init__(self, topic: str, on_close: Callable[[Listening], None], capacity: int = 1000):
        self.topic = topic
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._on_close = on_close
        self._capacity = capacity
        self.closed = False

    def put(self, payload: str) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._capacity:
            self._queue.get_nowait()
        self._queue.put_nowait(payload)

    async def get(self) -> str:
        """The next payload (waits for one)."""
        return await self._queue.get()

    def close(self) -> None:
        """Stop listening (idempotent)."""
        if not self.closed:
            self.closed = True
            self._on_close(self)

    def __aiter__(self) -> Listening:
        return self

    async def __anext__(self) -> str:
        return await self.get()


class SignalStore(abc.ABC):
    """Fire-and-forget messages between processes (Redis pub/sub; in-process in the
    memory backend). A payload reaches every :class:`Listening` on its topic in any
    process that listens at the time it is published, in publication order; nobody
    listening means nobody hears it. Use it to say "look again", never to carry the
    only copy of something: a web chat's socket on one process hears that an agent on
    another process replied, and reads the reply from the transcript."""

    @abc.abstractmethod
    async def publish(self, topic: str, payload: str) -> None: ...

    @abc.abstractmethod
    async def listen(self, topic: str) -> Listening:
        """Start listening on ``topic``: every payload published once this returns is
        delivered. The caller must :meth:`Listening.close` it."""


class CounterStore(abc.ABC):
    """Counters in fixed windows, shared by every process (rate limits)."""

    @abc.abstractmethod
    async def hit(self, key: str, window_seconds: int) -> int:
        """Count one hit on ``key`` and return the hits in its current window: the
        window starts at the first hit and lasts ``window_seconds``; the next hit after
        it starts a new one at 1. Atomic across processes."""


class OutboxStore(abc.ABC):
    """Replies stored until their channel accepted them (issue 11).

    Items are kept per conversation, in the order turns decided them. Whoever
    delivers a conversation's items holds its *delivery lease* (a token with a ttl,
    renewed while sending), so one process at a time sends them, in order; a process
    that dies leaves the lease to expire and the items to the next taker.
    """

    @abc.abstractmethod
    async def take_outbox(
        self, conversation_id: str, token: str, lease_seconds: float, limit: int = 100
    ) -> list[OutboxItem] | None:
        """Take (or renew) the conversation's delivery lease with ``token`` and return
        its first ``limit`` items, oldest first; None while another token holds it."""

    @abc.abstractmethod
    async def ack_outbox(
        self,
        conversation_id: str,
        token: str,
        item_ids: Sequence[str],
        timer: tuple[str, datetime] | None = None,
    ) -> int:
        """Remove delivered (or finally failed) items, which are at the head, in order;
        how many remain. With none left, the lease held by ``token`` is given back and
        ``timer`` (the outbox's safety-net timer, id and due time) cancelled, as by
        :meth:`TimerStore.cancel_timer` (on Redis: in the same round trip)."""

    async def ack_outboxes(self, acks: Sequence[OutboxAck]) -> list[int]:
        """Several :meth:`ack_outbox` calls, in order, of one or many conversations: on
        Redis in one round trip (the outbox acks what ended meanwhile together, issue
        18). How many items remain in each one's outbox."""
        return [
            await self.ack_outbox(a.conversation_id, a.token, a.item_ids, a.timer) for a in acks
        ]

    @abc.abstractmethod
    async def renew_outboxes(
        self, conversation_ids: Sequence[str], token: str, lease_seconds: float
    ) -> list[bool]:
        """Extend the delivery leases of these conversations, all in one store step; for
        each, False when ``token`` no longer holds it."""

    @abc.abstractmethod
    async def outbox(self, conversation_id: str) -> list[OutboxItem]:
        """The conversation's undelivered items, oldest first."""


class Store(
    SignalStore,
    CounterStore,
    OutboxStore,
    DedupeStore,
    ContactStore,
    ConversationStore,
    EventLog,
    DeskStore,
    LinkStore,
    LockStore,
    TimerStore,
    ConsoleUserStore,
    ContentStore,
):
    """The whole contract: every role above, on one backend. Implementations must make
    every method safe under concurrency. Components take the roles they use (the
    engine's turn reads and writes across several, :meth:`begin_turn`, :meth:`commit_turn`)."""

    @abc.abstractmethod
    async def begin_turn(
        self,
        conversation_id: str,
        seen_key: str,
        identity: Identity,
        lock_ttl_seconds: float,
        recent: int = 12,
    ) -> TurnStart | None:
        """A turn's first step: take the conversation's lock and read what the turn
        needs (dedupe mark, contact, conversation, open ticket, the last ``recent``
        transcript lines). None when the lock is held by someone else. A message
        already seen takes no lock: ``seen`` is True and ``lease`` None.
        On Redis: one round trip."""

    @abc.abstractmethod
    async def commit_turn(self, write: TurnWrite) -> Committed:
        """A turn's last step: write everything it produced (see :class:`TurnWrite`)
        and give the lock back. Raises :class:`~bot.errors.LockLost` when
        ``write.lease`` no longer holds the lock (nothing of the conversation written).
        On Redis: one round trip, one script under the conversation's hash tag."""

    @abc.abstractmethod
    async def turn_seen(self, conversation_id: str, key: str) -> bool:
        """True while the turn dedupe mark ``key`` of the conversation is kept."""

    @abc.abstractmethod
    async def forget_conversation(self, conversation_id: str) -> None:
        """Erase the conversation: its record and address index, transcript, events,
        outbox, dedupe marks, lock and timers; in the log of all events its events
        become anonymised tombstones (:func:`tombstone`), so KPI counts still add up."""

    @abc.abstractmethod
    async def forget_tickets(self, ticket_ids: Sequence[str]) -> None:
        """Erase tickets whatever their state: record, number, queue place, agent and
        open-ticket indexes, their own event lists and timers."""

    @abc.abstractmethod
    async def forget_contact_record(self, contact: Contact) -> None:
        """Erase the contact and its identity index."""

    async def forget_contact(self, contact_id: str) -> Erasure:
        """Erase a customer (LGPD art. 18, GDPR art. 17): the contact, identities,
        every conversation of its identities (record, transcript, events, outbox,
        dedupe marks), and the tickets those conversations had. Atomic per
        conversation and per ticket batch, not as a whole: run it again after a
        failure. The caller records that an erasure happened (without the data)."""
        contact = await self.get_contact(contact_id)
        if contact is None:
            return Erasure(0, 0, found=False)
        tickets: set[str] = set()
        conversations = 0
        for identity in contact.identities:
            conversation_id = stable_id("cnv", identity.channel, identity.address)
            conversation = await self.get_conversation(conversation_id)
            events = await self.events(conversation_id=conversation_id)
            tickets |= {e.ticket_id for e in events if e.ticket_id is not None}
            if conversation is not None:
                conversations += 1
                tickets |= {t for t in (conversation.ticket_id, conversation.last_ticket_id) if t}
            open_ticket = await self.open_ticket_of(conversation_id)
            if open_ticket is not None:
                tickets.add(open_ticket.id)
            await self.forget_conversation(conversation_id)
        await self.forget_tickets(sorted(tickets))
        await self.forget_contact_record(contact)
        return Erasure(conversations, len(tickets))

    def observe(self, call: Callable[[str, float, bool], None]) -> None:
        """Tell ``call(operation, seconds, failed)`` of every operation on a remote
        backend (metrics: Redis round trips and errors); the memory store has none."""

    async def ping(self) -> None:
        """Raise when the backend is unreachable."""

    async def close(self) -> None:
        """Release connections."""
