"""Redis store: production state for many router processes (one server, Sentinel or Cluster).

Every operation that must be atomic is one command (``SET NX PX``, ``INCR``) or one
Lua script (:mod:`bot.store.lua`); nothing here reads, changes and writes back in
Python. Records are JSON (:mod:`bot.store.codec`).

Key layout (``<p>`` is the prefix, ``escala`` by default). A ``{...}`` part is a
Redis Cluster hash tag: keys that one script touches share one, so they live in one
slot.

==============================  =========  ============================================
key                             type       holds
==============================  =========  ============================================
``<p>:seen:<key>``              string     dedupe mark, ``PX`` ttl
``<p>:contact:<id>``            string     contact JSON
``<p>:identity:<ch>:<addr>``    string     contact id
``<p>:address:<ch>:<addr>``     string     conversation id
``<p>:{c:<id>}:conversation``   string     conversation JSON
``<p>:{c:<id>}:lock``           string     current lease token, ``PX`` ttl
``<p>:{c:<id>}:fence``          string     ``INCR`` source of lease tokens (never expires)
``<p>:{c:<id>}:messages``       list       recent (hot) transcript, message JSON, oldest first
``<p>:{c:<id>}:archive``        list       older transcript, capped, oldest first
``<p>:{c:<id>}:bytes``          string     bytes of hot + archive (the byte cap's counter)
``<p>:{c:<id>}:events``         list       the conversation's events, capped
``<p>:{c:<id>}:seen:<key>``     string     a turn's dedupe mark (provider message id), ``PX`` ttl
``<p>:{c:<id>}:outbox``         list       replies not yet accepted by their channel, in order
``<p>:{c:<id>}:outbox_lease``   string     token of the process delivering them, ``PX`` ttl
``<p>:{t:<id>}:events``         list       the ticket's events, capped
``<p>:events:stream``           stream     every event (field ``e``: JSON), ``MAXLEN ~ events_cap``
``<p>:{q}:ticket_number``       string     ``INCR`` counter (starts at 1001)
``<p>:{q}:opened_by``           hash       inbound message id -> the ticket its handoff opened
``<p>:{q}:tickets``             hash       ticket id -> ticket JSON
``<p>:{q}:numbers``             hash       ticket number -> ticket id
``<p>:{q}:scores``              hash       ticket id -> its queue score (kept for release)
``<p>:{q}:open_by_conversation`` hash      conversation id -> its queued/assigned ticket id
``<p>:{q}:queue:<tier>``        zset       waiting ticket members, by queue score
``<p>:{q}:resolved``            zset       resolved ticket ids, by resolved time in µs
``<p>:{q}:agent:<agent>``       set        ids of tickets assigned to the agent
``<p>:{q}:last_assigned``       hash       agent -> ``assign_seq`` at their last assignment
``<p>:{q}:assign_seq``          string     ``INCR`` order of assignments (longest idle)
``<p>:{q}:availability``        hash       agent -> online / away / offline
``<p>:link:<key>``              string     an adapter's link (Slack card of a ticket ...)
``<p>:timers``                  zset       timer id, score = due time in µs since 1970
==============================  =========  ============================================

Every ticket, queue and agent-index key shares the ``{q}`` tag, so the ticket scripts
can update a ticket, its queue and the agent index in one atomic step on Cluster too.
The price is one hot slot for the desk; it is acceptable because each queue
operation is O(log n) and there are a handful per customer message, far below what
one Redis node serves. The scripts build the queue and agent key names from the
``{q}`` prefix (the tier or the assignee is only known inside the script), which is
safe on Cluster because those keys are in the declared keys' slot.

An event is appended to the event stream and to up to two lists in one pipeline
(not a transaction: they live in different slots). The stream (issue 14) is capped
with ``XADD ... MAXLEN ~ events_cap``: Redis drops the oldest entries in whole
radix-tree nodes (``stream-node-max-entries``, 100 by default), so it keeps at least
the last ``events_cap`` events and at most about 100 more, at O(1) cost per append.
``events()`` with no filter, reports and exports read it; consumer groups
(``XREADGROUP``) read it continuously. The per-conversation and per-ticket lists keep
the last ``conversation_events_cap``. (Before issue 14 the log was a list at
``<p>:events``; it is no longer written and can be deleted.)

Transcripts are bounded (issue 3): the append script keeps the last
``transcript_hot_messages`` in ``messages`` and moves the overflow, in the same
step, to ``archive``, which keeps its last ``transcript_archive_messages`` (0: the
overflow is dropped). ``transcript()`` reads archive then hot in one script.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast, overload

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from bot.clock import stable_id
from bot.errors import LockLost, StoreError, StoreUnavailable
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
    Ticket,
    TicketState,
)
from bot.store import lua
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
    OutboxAck,
    PublishResult,
    Routing,
    SkillFilter,
    Store,
    StreamEntry,
    StreamInfo,
    TicketChange,
    TurnStart,
    TurnWrite,
    tombstone,
)
from bot.store.codec import format_datetime, from_json, to_json
from bot.store.content_codec import (
    draft_from_json,
    draft_to_json,
    files_to_json,
    meta_to_json,
    version_from_json,
)
from bot.store.memory import DEFAULT_EVENTS_STREAM_CAP
from bot.store.packing import OneTimeoutPipeline, hiredis_packing

P = ParamSpec("P")
T = TypeVar("T")

#: Queue scores count µs from here, so priority and age fit one exact double.
QUEUE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
#: Width of one priority band in µs (2**51 µs is about 71 years after QUEUE_EPOCH).
PRIORITY_SPAN = 2**51
TOP_PRIORITY = int(max(Priority))
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Defaults of the bounds (``[store]`` in the settings file).
DEFAULT_HOT_MESSAGES = 500
DEFAULT_ARCHIVE_MESSAGES = 5000
DEFAULT_CONVERSATION_EVENTS = 2000
#: Bytes of transcript kept per conversation (0: no cap); README gives the worst case.
DEFAULT_TRANSCRIPT_BYTES = 1_048_576
INDEXED_CACHE = 100_000  # conversation ids remembered as address-indexed, per process
_MICROSECOND = timedelta(microseconds=1)


def queue_micros(when: datetime) -> int:
    """µs between :data:`QUEUE_EPOCH` and ``when``; refused outside one priority band."""
    micros = (when - QUEUE_EPOCH) // _MICROSECOND
    if not 0 <= micros < PRIORITY_SPAN:
        raise ValueError(f"{when.isoformat()} is outside the queue's time range")
    return micros


def queue_score(priority: Priority, queued_at: datetime) -> int:
    """One zset score for (priority desc, queued_at asc). Below 2**53, so exact as a double.

    Ties (same priority and µs) are broken by the member, ``<number:016d>:<id>``.
    """
    return (TOP_PRIORITY - int(priority)) * PRIORITY_SPAN + queue_micros(queued_at)


def unix_micros(when: datetime) -> int:
    return (when - UNIX_EPOCH) // _MICROSECOND


def _reachable(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """The one place where a Redis connection problem becomes :class:`StoreUnavailable`,
    and where each operation is timed for metrics (:meth:`RedisStore.observe`)."""
    operation = method.__name__

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        observer: Callable[[str, float, bool], None] | None = getattr(args[0], "_observer", None)
        start = time.perf_counter() if observer is not None else 0.0
        failed = True
        try:
            result = await method(*args, **kwargs)
            failed = False
            return result
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            raise StoreUnavailable(f"redis unreachable: {e}") from e
        finally:
            if observer is not None:
                observer(operation, time.perf_counter() - start, failed)

    return call


log = logging.getLogger(__name__)


class _Decoded(Sequence[Message]):
    """A turn's recent transcript lines, decoded when read: only a handoff reads them
    (:meth:`bot.turn.Turn._recent_text`), so a turn that answers decodes none of the
    dozen lines :meth:`RedisStore.begin_turn` brings (issue 18: a tenth of the store's
    CPU per message). A line that is not a stored message raises ``ValueError`` when
    read, as it would have when the turn began."""

    __slots__ = ("_decoded", "_raws")

    def __init__(self, raws: Sequence[str | bytes]) -> None:
        self._raws = raws
        self._decoded: tuple[Message, ...] | None = None

    def _messages(self) -> tuple[Message, ...]:
        if self._decoded is None:
            self._decoded = tuple(from_json(Message, raw) for raw in self._raws)
        return self._decoded

    def __len__(self) -> int:
        return len(self._raws)

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Message]: ...
    def __getitem__(self, index: int | slice) -> Message | Sequence[Message]:
        return self._messages()[index]

    def __iter__(self) -> Iterator[Message]:
        return iter(self._messages())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Decoded):
            return self._messages() == other._messages()
        return self._messages() == other

    def __hash__(self) -> int:
        return hash(self._messages())

    def __repr__(self) -> str:
        return repr(self._messages())


#: How long :meth:`RedisStore.listen` waits for Redis to confirm a subscription.
SUBSCRIBE_SECONDS = 10.0


class _Signals:
    """Pub/sub for one store: one connection for every topic this process listens to
    (not one per listener), a task that hands each message to the topic's
    :class:`Listening`, and subscriptions kept in step with the listeners.

    ``listen`` returns once Redis confirmed the subscription, so nothing published
    afterwards is missed. redis-py subscribes again by itself after a reconnect.
    """

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._pubsub: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._listening: dict[str, set[Listening]] = {}
        self._subscribed: set[str] = set()
        self._confirm: dict[str, list[asyncio.Future[None]]] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, topic: str) -> Listening:
        key = self._keys.signal(topic)
        listening = Listening(topic, lambda listening: self._stopped(key, listening))
        self._listening.setdefault(key, set()).add(listening)
        try:
            await self._sync(key)
        except BaseException:
            listening.close()
            raise
        return listening

    def _stopped(self, key: str, listening: Listening) -> None:
        listeners = self._listening.get(key)
        if listeners is None:
            return
        listeners.discard(listening)
        if not listeners:
            del self._listening[key]
            task = asyncio.get_running_loop().create_task(self._sync(key))
            self._tasks.add(task)
            task.add_done_callback(self._unsubscribed)

    def _unsubscribed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not unsubscribe: %s", task.exception())

    async def _sync(self, key: str) -> None:
        """Subscribe to ``key`` when someone listens to it, unsubscribe when nobody does;
        serialized, so a quick close-then-listen cannot end unsubscribed."""
        async with self._lock:
            wanted = key in self._listening
            if wanted == (key in self._subscribed):
                return
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            if not wanted:
                self._subscribed.discard(key)
                await self._pubsub.unsubscribe(key)
                return
            confirmed = asyncio.get_running_loop().create_future()
            self._confirm.setdefault(key, []).append(confirmed)
            await self._pubsub.subscribe(key)
            if self._pump is None:
                self._pump = asyncio.create_task(self._run(), name="redis-signals")
            try:
                await asyncio.wait_for(confirmed, SUBSCRIBE_SECONDS)
            except TimeoutError:
                raise redis.exceptions.TimeoutError(
                    f"no SUBSCRIBE confirmation for {key}"
                ) from None
            self._subscribed.add(key)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                log.warning("redis pub/sub connection lost (%s); reconnecting", e)
                await asyncio.sleep(backoff)  # let Redis come back; redis-py resubscribes
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None:
                continue
            kind = _text(message["type"])
            key = _text(message["channel"])
            if kind == "subscribe":
                for future in self._confirm.pop(key, []):
                    if not future.done():
                        future.set_result(None)
            elif kind == "message":
                payload = _text(message["data"])
                for listening in list(self._listening.get(key, ())):
                    listening.put(payload)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None


def _record_start(record_id: str) -> str:
    """How a stored record with this id starts after its ``{`` (codec: ``"id"`` first,
    written by orjson, as :func:`bot.store.codec.to_json` writes it): how the scripts
    find a record without decoding it."""
    return '"id":' + orjson.dumps(record_id).decode()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


#: Entries read per ``XRANGE`` when the whole stream is read.
STREAM_PAGE = 1000


def _entries(raw: Sequence[Any]) -> list[StreamEntry]:
    """``XRANGE`` replies (``[(id, {field: value})]``) as stream entries."""
    return [StreamEntry(_text(position), _event(fields)) for position, fields in raw]


def _event(fields: Any) -> Event:
    value = fields.get(b"e", fields.get("e"))
    return from_json(Event, value)


def _group_entries(reply: Any) -> tuple[list[StreamEntry], list[str]]:
    """An ``XREADGROUP`` reply as (entries, positions of entries the cap dropped)."""
    kept: list[StreamEntry] = []
    dropped: list[str] = []
    for _stream, messages in reply or ():
        for position, fields in messages:
            if fields:
                kept.append(StreamEntry(_text(position), _event(fields)))
            else:
                dropped.append(_text(position))
    return kept, dropped


class Keys:
    """Names of every key the store uses (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"bad key prefix {prefix!r}: must be non-empty, without braces")
        self.prefix = prefix
        self.desk = f"{prefix}:{{q}}:"  # ticket scripts build their keys from this
        self.tickets = f"{self.desk}tickets"
        self.numbers = f"{self.desk}numbers"
        self.scores = f"{self.desk}scores"
        self.open_by_conversation = f"{self.desk}open_by_conversation"
        self.resolved = f"{self.desk}resolved"
        self.last_assigned = f"{self.desk}last_assigned"
        self.availability = f"{self.desk}availability"
        # Under the desk's tag, so the handoff's desk step numbers and opens in one script.
        self.ticket_number = f"{self.desk}ticket_number"
        self.opened_by = f"{self.desk}opened_by"
        self.events = f"{prefix}:events:stream"
        self.timers = f"{prefix}:timers"
        #: The pub/sub channel every appended event is published on (:meth:`follow`).
        self.live_events = f"{prefix}:events:live"
        self.users = f"{prefix}:users"
        # Content versions (issue 16): one hash tag, so the publish script is one slot.
        self.content_live = f"{prefix}:{{content}}:live"
        self.content_meta = f"{prefix}:{{content}}:meta"
        self.content_files = f"{prefix}:{{content}}:files"
        self.content_drafts = f"{prefix}:{{content}}:drafts"

    def seen(self, key: str) -> str:
        return f"{self.prefix}:seen:{key}"

    def signal(self, topic: str) -> str:
        return f"{self.prefix}:signal:{topic}"

    def hits(self, key: str) -> str:
        return f"{self.prefix}:hits:{key}"

    def link(self, key: str) -> str:
        return f"{self.prefix}:link:{key}"

    def contact(self, contact_id: str) -> str:
        return f"{self.prefix}:contact:{contact_id}"

    def identity(self, identity: Identity) -> str:
        return f"{self.prefix}:identity:{identity.channel}:{identity.address}"

    def address(self, channel: str, address: str) -> str:
        return f"{self.prefix}:address:{channel}:{address}"

    def _conversation(self, conversation_id: str, what: str) -> str:
        return f"{self.prefix}:{{c:{conversation_id}}}:{what}"

    def conversation(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "conversation")

    def lock(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "lock")

    def fence(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "fence")

    def messages(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "messages")

    def archive(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "archive")

    def conversation_events(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "events")

    def turn_seen(self, conversation_id: str, key: str) -> str:
        return self._conversation(conversation_id, f"seen:{key}")

    def outbox(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "outbox")

    def outbox_lease(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "outbox_lease")

    def transcript_bytes(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "bytes")

    def conversation_keys(self, conversation_id: str) -> list[str]:
        """Every fixed-name key of the conversation's tag (not the dedupe marks)."""
        return [
            self._conversation(conversation_id, what)
            for what in (
                "conversation", "lock", "fence", "messages", "archive", "events",
                "outbox", "outbox_lease", "bytes",
            )
        ]  # fmt: skip

    def ticket_events(self, ticket_id: str) -> str:
        return f"{self.prefix}:{{t:{ticket_id}}}:events"

    def queue(self, tier: str) -> str:
        return f"{self.desk}queue:{tier}"

    def agent(self, agent_id: str) -> str:
        return f"{self.desk}agent:{agent_id}"


#: How long an outbox ack waits for a turn's pipeline to ride on
#: (:meth:`RedisStore.ack_outboxes`).
ACK_RIDE_SECONDS = 0.01
#: An ack's script keys and arguments, and its timer cancel's arguments (if any).
_QueuedAck = tuple[list[str], list[str | int], list[str | int] | None]
#: Acks waiting for a pipeline, each batch with the future its caller awaits.
_Riders = list[tuple[Sequence[OutboxAck], asyncio.Future[list[int]]]]
#: Riders queued on a pipeline: the future, its queued acks, how many replies they take.
_QueuedRiders = list[tuple[asyncio.Future[list[int]], list[_QueuedAck], int]]
#: A turn step waiting for its group's pipeline: its commands, and who gets their replies.
_GroupEntry = tuple[list[Any], asyncio.Future[list[Any]]]


class RedisStore(Store):
    """The store on ``redis.asyncio``. It owns ``client``: :meth:`close` closes it.

    ``client`` may be any ``redis.asyncio.Redis``: one from a URL (:meth:`from_url`),
    or a Sentinel-managed master (``Sentinel(...).master_for(name)``).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "escala",
        first_ticket_number: int = 1001,
        events_cap: int = DEFAULT_EVENTS_STREAM_CAP,
        conversation_events_cap: int = DEFAULT_CONVERSATION_EVENTS,
        transcript_hot_messages: int = DEFAULT_HOT_MESSAGES,
        transcript_archive_messages: int = DEFAULT_ARCHIVE_MESSAGES,
        transcript_max_bytes: int = DEFAULT_TRANSCRIPT_BYTES,
        conversation_ttl_seconds: float | None = None,
    ) -> None:
        for name, value, least in (
            ("events_cap", events_cap, 1),
            ("conversation_events_cap", conversation_events_cap, 1),
            ("transcript_hot_messages", transcript_hot_messages, 1),
            ("transcript_archive_messages", transcript_archive_messages, 0),
        ):
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self.redis = client
        #: A Redis Cluster client (checked once: ``isinstance`` against redis-py's
        #: class costs about a microsecond, and every turn step asks).
        self._cluster = isinstance(client, aioredis.RedisCluster)
        self.keys = Keys(prefix)
        self._first_ticket_number = first_ticket_number
        self._events_cap = events_cap
        self._conversation_events_cap = conversation_events_cap
        self._hot_messages = transcript_hot_messages
        self._archive_messages = transcript_archive_messages
        self._max_bytes = max(0, transcript_max_bytes)
        self._ttl_ms = (
            None if conversation_ttl_seconds is None else round(conversation_ttl_seconds * 1000)
        )
        self._scripts = {
            name: client.register_script(source) for name, source in lua.SCRIPTS.items()
        }
        self._observer: Callable[[str, float, bool], None] | None = None
        # Conversations whose address index this process has written: the index never
        # changes, so it is written once per process, not on every save (a round trip
        # per customer message saved).
        self._indexed: OrderedDict[str, None] = OrderedDict()
        self._signals = _Signals(client, self.keys)
        #: Outbox acks waiting to ride on the next turn's pipeline (see :meth:`ack_outboxes`).
        self.ack_ride_seconds = ACK_RIDE_SECONDS
        self._riders: _Riders = []
        self._ride_timer: asyncio.TimerHandle | None = None
        self._alone: set[asyncio.Task[None]] = set()
        #: Turn steps waiting to share the next pipeline (:meth:`_grouped`), and the
        #: callback that sends them.
        self._group: list[_GroupEntry] = []
        self._group_handle: asyncio.Handle | None = None
        #: Groups sent and not answered yet (at most one: the next forms meanwhile).
        self._groups_out = 0
        #: Steps share pipelines (group commit); off: each step is its own pipeline.
        self.group_steps = True

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "escala",
        first_ticket_number: int = 1001,
        events_cap: int = DEFAULT_EVENTS_STREAM_CAP,
        conversation_events_cap: int = DEFAULT_CONVERSATION_EVENTS,
        transcript_hot_messages: int = DEFAULT_HOT_MESSAGES,
        transcript_archive_messages: int = DEFAULT_ARCHIVE_MESSAGES,
        transcript_max_bytes: int = DEFAULT_TRANSCRIPT_BYTES,
        conversation_ttl_seconds: float | None = None,
        max_connections: int = 50,
        pool_timeout: float = 5.0,
        cluster: bool = False,
        **client_options: Any,
    ) -> RedisStore:
        """A store on a new client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        A burst of more than ``max_connections`` concurrent operations waits (up to
        ``pool_timeout`` seconds) for a free connection instead of failing at once.
        """
        client: aioredis.Redis
        if cluster:
            # Redis Cluster (issue 18): every script touches the keys of one hash tag,
            # so each runs on the node of that slot; pipelines are split per node.
            cluster_client = aioredis.RedisCluster.from_url(
                url, max_connections=max_connections, **client_options
            )
            client = cast(aioredis.Redis, cluster_client)  # the same command API here
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **client_options
            )
            # the same connections (TCP, TLS or Unix socket), commands packed in C
            pool.connection_class = hiredis_packing(pool.connection_class)
            client = aioredis.Redis.from_pool(pool)
        return cls(
            client,
            prefix=prefix,
            first_ticket_number=first_ticket_number,
            events_cap=events_cap,
            conversation_events_cap=conversation_events_cap,
            transcript_hot_messages=transcript_hot_messages,
            transcript_archive_messages=transcript_archive_messages,
            transcript_max_bytes=transcript_max_bytes,
            conversation_ttl_seconds=conversation_ttl_seconds,
        )

    def observe(self, call: Callable[[str, float, bool], None]) -> None:
        self._observer = call

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    def _queue_script(
        self, pipe: Any, script: str, keys: Sequence[str], args: Sequence[str | int]
    ) -> None:
        """EVALSHA in a pipeline without redis-py's SCRIPT EXISTS round trip first; a
        ``NoScriptError`` reply (Redis restarted) is handled by :meth:`_script_reply`."""
        # execute_command, not pipe.evalsha: redis-py refuses the latter in a cluster
        # pipeline, while routing the former by its keys works (they share one slot).
        pipe.execute_command("EVALSHA", self._scripts[script].sha, len(keys), *keys, *args)

    async def _script_reply(
        self, reply: Any, script: str, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        if isinstance(reply, redis.exceptions.NoScriptError):
            return await self._run(script, keys, args)  # loads the script, runs it once
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _publish(self, pipe: Any, raw: str) -> None:
        """PUBLISH on the live channel, in ``pipe`` (a cluster pipeline refuses it: there
        :meth:`_published_on_cluster` publishes after the pipeline)."""
        if not self._cluster:
            pipe.publish(self.keys.live_events, raw)

    async def _published_on_cluster(self, raws: Sequence[str]) -> None:
        if self._cluster and raws:
            await self.redis.publish(self.keys.live_events, "\n".join(raws))

    def _log_events(self, raws: Sequence[str]) -> tuple[list[str], list[str | int]]:
        """The ``log_events`` script's keys and arguments for ``raws``: the event stream,
        and the live channel (not on a cluster: see :meth:`_published_on_cluster`)."""
        channel = "" if self._cluster else self.keys.live_events
        return [self.keys.events], [self._events_cap, channel, *raws]

    def _queue_events(
        self, pipe: Any, events: Sequence[Event], raws: Sequence[str]
    ) -> tuple[list[str], list[str | int]] | None:
        """The writes of a turn's events outside the conversation's slot (the event
        stream and the live channel in one script, :data:`lua.LOG_EVENTS`; the
        per-ticket lists), queued on ``pipe``; ``raws`` are the events encoded once, as
        the commit script has them. The live channel gets them in one message, a line
        each (compact JSON has no raw newline). Answers the script's keys and
        arguments, queued first (``None``: no events)."""
        if not raws:
            return None
        log_keys, log_args = self._log_events(raws)
        self._queue_script(pipe, "log_events", log_keys, log_args)
        for event, raw in zip(events, raws, strict=True):
            if event.ticket_id is not None:
                key = self.keys.ticket_events(event.ticket_id)
                pipe.rpush(key, raw)
                pipe.ltrim(key, -self._conversation_events_cap, -1)
        return log_keys, log_args

    # -- the turn's two steps (issue 18) -----------------------------------------------

    @_reachable
    async def begin_turn(
        self,
        conversation_id: str,
        seen_key: str,
        identity: Identity,
        lock_ttl_seconds: float,
        recent: int = 12,
    ) -> TurnStart | None:
        # One round trip: the lock and the conversation's reads in one script under its
        # tag, with the contact and the open ticket (other slots) pipelined beside it.
        keys = self.keys
        begin_keys = [
            keys.lock(conversation_id),
            keys.fence(conversation_id),
            keys.conversation(conversation_id),
            keys.turn_seen(conversation_id, seen_key),
            keys.messages(conversation_id),
        ]
        begin_args: list[str | int] = [max(1, round(lock_ttl_seconds * 1000)), max(recent, 0)]
        guessed = stable_id("ct", identity.channel, identity.address)
        ticket_keys = [keys.tickets, keys.open_by_conversation]
        ticket_args: list[str | int] = [keys.desk, conversation_id]
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue_script(pipe, "begin_turn", begin_keys, begin_args)
            pipe.get(keys.identity(identity))
            pipe.get(keys.contact(guessed))
            self._queue_script(pipe, "open_ticket_of", ticket_keys, ticket_args)
            begun, contact_id, raw_contact, raw_ticket = await self._execute(pipe)
        begun = await self._script_reply(begun, "begin_turn", begin_keys, begin_args)
        for reply in (contact_id, raw_contact):
            if isinstance(reply, Exception):
                raise reply
        state = _text(begun[0])
        if state == "locked":
            return None
        contact: Contact | None = None
        if contact_id is not None:
            if _text(contact_id) == guessed and raw_contact is not None:
                contact = from_json(Contact, raw_contact)
            else:  # merged into another contact: one more read, rare
                contact = await self.get_contact(_text(contact_id))
        raw_ticket = await self._script_reply(
            raw_ticket, "open_ticket_of", ticket_keys, ticket_args
        )
        if state == "seen":
            raw = begun[1] if len(begun) > 1 else None
            conversation = None if raw is None else from_json(Conversation, raw)
            ticket = None if raw_ticket is None else from_json(Ticket, raw_ticket)
            return TurnStart(True, contact, conversation, ticket)
        raw_conversation = begun[2] if len(begun) > 2 else None
        return TurnStart(
            seen=False,
            contact=contact,
            conversation=None
            if raw_conversation is None
            else from_json(Conversation, raw_conversation),
            open_ticket=None if raw_ticket is None else from_json(Ticket, raw_ticket),
            lease=Lease(conversation_id, int(begun[1])),
            recent=_Decoded(begun[3:]),
        )

    def _commit_script(
        self, write: TurnWrite, raw_events: Sequence[str]
    ) -> tuple[list[str], list[str | int]]:
        cid = write.conversation_id
        keys = self.keys
        script_keys = [
            keys.lock(cid),
            keys.conversation(cid),
            keys.messages(cid),
            keys.archive(cid),
            keys.conversation_events(cid),
            keys.outbox(cid),
            keys.outbox_lease(cid),
            keys.turn_seen(cid, write.seen_key or ""),
            keys.transcript_bytes(cid),
            keys.fence(cid),
        ]
        lease = write.lease
        args: list[str | int] = [
            "" if lease is None else lease.token,
            "" if write.conversation is None else to_json(write.conversation),
            "" if write.seen_key is None else max(1, write.seen_ttl_seconds * 1000),
            "1" if write.unlock else "",
            self._hot_messages,
            self._archive_messages,
            self._conversation_events_cap,
            RECENT_IDS,
            write.outbox_token or "",
            max(1, round(write.outbox_lease_seconds * 1000)),
            len(write.messages),
            len(write.events),
            len(write.outbox),
            "" if self._ttl_ms is None else self._ttl_ms,
            self._max_bytes,
        ]
        for message in write.messages:
            args += [to_json(message), _record_start(message.id)]
        args += raw_events
        args += [to_json(item) for item in write.outbox]
        return script_keys, args

    @_reachable
    async def commit_turn(self, write: TurnWrite) -> Committed:
        for event in write.events:
            if event.conversation_id != write.conversation_id:
                raise ValueError(f"event {event.id} is not of {write.conversation_id}")
        raw_events = [to_json(event) for event in write.events]  # encoded once
        script_keys, args = self._commit_script(write, raw_events)
        index = write.conversation is not None and write.conversation.id not in self._indexed
        at = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            # Timers first (the outbox's safety net among them): a timer whose turn did
            # not commit only fires for nothing; an item without its timer would wait.
            if write.timers:
                at += 1
                pipe.zadd(self.keys.timers, {t: unix_micros(at) for t, at in write.timers.items()})
            if write.contact is not None:
                at += 1 + len(write.contact.identities)
                pipe.set(self.keys.contact(write.contact.id), to_json(write.contact))
                for identity in write.contact.identities:
                    pipe.set(self.keys.identity(identity), write.contact.id)
            if index and write.conversation is not None:
                at += 1
                c = write.conversation
                pipe.set(self.keys.address(c.channel, c.address), c.id)
            saved = write.conversation
            if self._ttl_ms is not None and saved is not None:
                # Retention: what identifies the customer outside the conversation's
                # tag expires with it when they stay away (issue 11).
                at += 3
                identity = Identity(saved.channel, saved.address)
                pipe.pexpire(self.keys.contact(saved.contact_id), self._ttl_ms)
                pipe.pexpire(self.keys.identity(identity), self._ttl_ms)
                pipe.pexpire(self.keys.address(saved.channel, saved.address), self._ttl_ms)
            self._queue_script(pipe, "commit_turn", script_keys, args)
            # The global and per-ticket logs live in other slots: same round trip, after.
            logged = self._queue_events(pipe, write.events, raw_events)
            replies = await self._execute(pipe)
        await self._published_on_cluster(raw_events)
        scripts = (at, at + 1) if logged is not None else (at,)  # their replies: below
        for n, reply in enumerate(replies):
            if n not in scripts and isinstance(reply, Exception):
                raise reply
        done = await self._script_reply(replies[at], "commit_turn", script_keys, args)
        if logged is not None:  # after the commit, as queued (a restarted Redis: run again)
            await self._script_reply(replies[at + 1], "log_events", *logged)
        if not int(done[0]):
            assert write.lease is not None
            raise LockLost(write.conversation_id, write.lease.token)
        if index and write.conversation is not None:
            self._remember_indexed(write.conversation.id)
        return Committed(outbox_leased=bool(int(done[1])))

    @_reachable
    async def turn_seen(self, conversation_id: str, key: str) -> bool:
        return bool(await self.redis.exists(self.keys.turn_seen(conversation_id, key)))

    @_reachable
    async def open_handoff(self, ticket: Ticket) -> Ticket:
        if ticket.state is not TicketState.QUEUED:
            raise ValueError(f"a new ticket must be queued, not {ticket.state}")
        raw = await self._run(
            "open_handoff",
            [
                *self._desk_keys(),
                self.keys.opened_by,
                self.keys.ticket_number,
                self.keys.queue(ticket.tier),
            ],
            [
                self.keys.desk,
                to_json(ticket),
                queue_score(ticket.priority, ticket.queued_at),
                self._first_ticket_number,
            ],
        )
        return from_json(Ticket, raw)

    # -- the outbox (issue 11) ----------------------------------------------------------

    @_reachable
    async def take_outbox(
        self, conversation_id: str, token: str, lease_seconds: float, limit: int = 100
    ) -> list[OutboxItem] | None:
        raws = await self._run(
            "take_outbox",
            [self.keys.outbox(conversation_id), self.keys.outbox_lease(conversation_id)],
            [token, max(1, round(lease_seconds * 1000)), limit],
        )
        if raws is None:
            return None
        return [from_json(OutboxItem, raw) for raw in raws]

    @_reachable
    async def ack_outbox(
        self,
        conversation_id: str,
        token: str,
        item_ids: Sequence[str],
        timer: tuple[str, datetime] | None = None,
    ) -> int:
        ack_keys = [self.keys.outbox(conversation_id), self.keys.outbox_lease(conversation_id)]
        ack_args: list[str | int] = [token, *map(_record_start, item_ids)]
        if timer is None:
            return int(await self._run("ack_outbox", ack_keys, ack_args))
        cancel_args: list[str | int] = [timer[0], unix_micros(timer[1])]
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue_script(pipe, "ack_outbox", ack_keys, ack_args)
            # The timer is cancelled only if still at this due time: a later turn's
            # items moved it, so it stays for them even when these acks emptied the list.
            self._queue_script(pipe, "cancel_timer", [self.keys.timers], cancel_args)
            left, cancelled = await pipe.execute(raise_on_error=False)
        left = await self._script_reply(left, "ack_outbox", ack_keys, ack_args)
        if int(left) == 0:
            await self._script_reply(cancelled, "cancel_timer", [self.keys.timers], cancel_args)
        return int(left)

    @_reachable
    async def ack_outboxes(self, acks: Sequence[OutboxAck]) -> list[int]:
        """Acks ride on the next turn's pipeline (:meth:`begin_turn`, :meth:`commit_turn`)
        when one goes within :attr:`ack_ride_seconds`, else go alone: on a busy process
        delivering replies costs no round trip of its own (issue 18). The wait only
        delays the bookkeeping, never a reply; a crash within it resends those replies,
        as a crash between sending and acking always could (at least once)."""
        if not acks:
            return []
        waiter: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        if self.ack_ride_seconds <= 0:
            await self._ride_alone([(acks, waiter)])
        else:
            self._wait_for_ride([(acks, waiter)])
        return await waiter

    def _wait_for_ride(self, riders: _Riders, *, first: bool = False) -> None:
        """``riders`` wait for the next turn's pipeline (``first``: ahead of those
        waiting), or go alone after :attr:`ack_ride_seconds`."""
        self._riders = [*riders, *self._riders] if first else [*self._riders, *riders]
        if self._ride_timer is None:
            self._ride_timer = asyncio.get_running_loop().call_later(
                self.ack_ride_seconds, self._send_riders_alone
            )

    def _take_riders(self) -> _Riders:
        riders, self._riders = self._riders, []
        if self._ride_timer is not None:
            self._ride_timer.cancel()
            self._ride_timer = None
        return riders

    def _send_riders_alone(self) -> None:
        """No turn came by in time: the waiting acks go in a pipeline of their own."""
        self._ride_timer = None
        riders = self._take_riders()
        if riders:
            task = asyncio.create_task(self._ride_alone(riders), name="escala-redis-acks")
            self._alone.add(task)
            task.add_done_callback(self._alone.discard)

    async def _ride_alone(self, riders: _Riders) -> None:
        try:
            async with self._many_replies_pipeline() as pipe:
                queued = self._queue_riders(pipe, riders)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as e:
            self._riders_failed([waiter for _, waiter in riders], e)
            if not isinstance(e, Exception):
                raise
            return
        await self._settle_riders(queued, replies)

    async def _execute(self, pipe: Any) -> list[Any]:
        """``pipe.execute`` for a turn's step, with the acks waiting to ride queued after
        its commands and settled from its replies: the step's own replies come back."""
        riders = self._take_riders()
        queued = self._queue_riders(pipe, riders)
        try:
            replies: list[Any] = await self._grouped(pipe)
        except Exception as e:  # Redis failed them with the turn
            self._riders_failed([waiter for _, waiter in riders], e)
            raise
        except BaseException:
            # The turn was cancelled, not the acks: they wait for another ride (an ack
            # is idempotent, so one that reached Redis anyway changes nothing again).
            if riders:
                self._wait_for_ride(riders, first=True)
            raise
        if not riders:
            return replies
        await self._settle_riders(queued, replies)
        return replies[: len(replies) - sum(n for _, _, n in queued)]

    async def _grouped(self, pipe: Any) -> list[Any]:
        """``pipe``'s replies, its commands sent in one pipeline with those of the other
        turn steps waiting with it (group commit, issue 18).

        Under load many turns reach their store step at once; each paid redis-py's
        pipeline (a pooled connection, its send, its reads: ~0.2 ms of CPU) and a round
        trip. Together they pay one. While a group is out, the steps that come form the
        next one, sent as soon as its answer is in: the busier the process, the larger
        the groups, and an idle one sends a lone step at once. A step waits at most one
        group's round trip for company.

        Each step's commands stay together and in order, and every script is still
        atomic on its own keys. A step cancelled before its group is sent is left out;
        a Redis failure fails every step of the group, as it would each alone. On Redis
        Cluster, where a pipeline is split per node, each step keeps its own."""
        if not self.group_steps or self._cluster:
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._group.append((list(pipe.command_stack), waiter))
        pipe.command_stack.clear()
        self._schedule_group()
        return await waiter

    def _schedule_group(self) -> None:
        """The waiting steps go at the end of this loop iteration, unless a group is
        out: then when its answer is in."""
        if self._group and self._group_handle is None and not self._groups_out:
            self._group_handle = asyncio.get_running_loop().call_soon(self._send_group)

    def _send_group(self) -> None:
        self._group_handle = None
        group = [entry for entry in self._group if not entry[1].cancelled()]
        self._group = []
        if not group:
            return
        self._groups_out += 1
        task = asyncio.create_task(self._run_group(group), name="escala-redis-group")
        self._alone.add(task)
        task.add_done_callback(self._alone.discard)
        waiters = [waiter for _, waiter in group]

        def abandoned(_: asyncio.Future[list[Any]]) -> None:
            # Every step was cancelled (shutdown, a client gone): the pipeline is
            # cancelled with them, as each step's own would have been.
            if all(w.cancelled() for w in waiters):
                task.cancel()

        for waiter in waiters:
            waiter.add_done_callback(abandoned)

    async def _run_group(self, group: list[_GroupEntry]) -> None:
        try:
            async with self._many_replies_pipeline() as pipe:
                for stack, _ in group:
                    pipe.command_stack.extend(stack)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as e:
            self._group_done()
            error = e if isinstance(e, Exception) else StoreUnavailable("store step interrupted")
            for _, waiter in group:
                if not waiter.done():
                    waiter.set_exception(error)
            if not isinstance(e, Exception):
                raise
            return
        at = 0
        for stack, waiter in group:
            if not waiter.done():
                waiter.set_result(replies[at : at + len(stack)])
            at += len(stack)
        # After the results: the turns they wake run first, and their next steps join.
        self._group_done()

    def _many_replies_pipeline(self) -> Any:
        """For a group of steps or of acks: many replies, read under one timeout. On
        Cluster, redis-py's own (a pipeline there is split per node)."""
        redis = self.redis
        if self._cluster:
            return redis.pipeline(transaction=False)
        return OneTimeoutPipeline(redis.connection_pool, redis.response_callbacks, False, None)

    def _group_done(self) -> None:
        self._groups_out -= 1
        self._schedule_group()

    def _queue_acks(self, pipe: Any, acks: Sequence[OutboxAck]) -> list[_QueuedAck]:
        """The acks' scripts queued on ``pipe``; :meth:`_ack_reply` reads each reply."""
        queued: list[_QueuedAck] = []
        for ack in acks:
            ack_keys = [
                self.keys.outbox(ack.conversation_id),
                self.keys.outbox_lease(ack.conversation_id),
            ]
            ack_args: list[str | int] = [ack.token, *map(_record_start, ack.item_ids)]
            self._queue_script(pipe, "ack_outbox", ack_keys, ack_args)
            cancel_args: list[str | int] | None = None
            if ack.timer is not None:
                cancel_args = [ack.timer[0], unix_micros(ack.timer[1])]
                self._queue_script(pipe, "cancel_timer", [self.keys.timers], cancel_args)
            queued.append((ack_keys, ack_args, cancel_args))
        return queued

    async def _ack_reply(self, queued: _QueuedAck, replies: Iterator[Any]) -> int:
        ack_keys, ack_args, cancel_args = queued
        left = int(await self._script_reply(next(replies), "ack_outbox", ack_keys, ack_args))
        if cancel_args is not None:
            cancelled = next(replies)
            if left == 0:  # as in ack_outbox: the timer goes with the last item
                await self._script_reply(cancelled, "cancel_timer", [self.keys.timers], cancel_args)
        return left

    def _queue_riders(self, pipe: Any, riders: _Riders) -> _QueuedRiders:
        """Riders' acks queued on ``pipe`` after what is there; with each rider, its
        queued acks and how many replies they take."""
        out: _QueuedRiders = []
        for acks, waiter in riders:
            queued = self._queue_acks(pipe, acks)
            out.append((waiter, queued, sum(1 + (c is not None) for _, _, c in queued)))
        return out

    async def _settle_riders(self, riders: _QueuedRiders, replies: Sequence[Any]) -> None:
        """Each rider's waiter gets its acks' results (or its error) from the last
        replies of the pipeline they rode on."""
        at = len(replies) - sum(n for _, _, n in riders)
        for waiter, queued, n in riders:
            mine = iter(replies[at : at + n])
            at += n
            try:
                lefts = [await self._ack_reply(q, mine) for q in queued]
            except Exception as e:
                self._riders_failed([waiter], e)
                continue
            if not waiter.done():
                waiter.set_result(lefts)

    @staticmethod
    def _riders_failed(waiters: Sequence[asyncio.Future[list[int]]], error: BaseException) -> None:
        """The waiters hear ``error`` as :func:`_reachable` would have said it."""
        if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            error = StoreUnavailable(f"redis unreachable: {error}")
        elif not isinstance(error, Exception):
            error = StoreUnavailable(f"acknowledgement interrupted: {type(error).__name__}")
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    @_reachable
    async def renew_outboxes(
        self, conversation_ids: Sequence[str], token: str, lease_seconds: float
    ) -> list[bool]:
        if not conversation_ids:
            return []
        args: list[str | int] = [token, max(1, round(lease_seconds * 1000))]
        keys = [[self.keys.outbox_lease(cid)] for cid in conversation_ids]
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease_keys in keys:  # one script per conversation: one slot each
                self._queue_script(pipe, "renew_outbox", lease_keys, args)
            replies = await pipe.execute(raise_on_error=False)
        return [
            bool(await self._script_reply(reply, "renew_outbox", lease_keys, args))
            for reply, lease_keys in zip(replies, keys, strict=True)
        ]

    @_reachable
    async def outbox(self, conversation_id: str) -> list[OutboxItem]:
        raws = await self.redis.lrange(self.keys.outbox(conversation_id), 0, -1)
        return [from_json(OutboxItem, raw) for raw in raws]

    @_reachable
    async def forget_conversation(self, conversation_id: str) -> None:
        conversation = await self.get_conversation(conversation_id)
        # The event stream cannot be edited in place: the conversation's entries are
        # deleted and appended again as tombstones (their time kept in the event).
        found: list[tuple[str, Event]] = []
        after: str | None = None
        while page := await self.read_stream(after, 1000):
            found += [
                (e.position, e.event) for e in page if e.event.conversation_id == conversation_id
            ]
            after = page[-1].position
        if found:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xdel(self.keys.events, *[position for position, _ in found])
                for _, event in found:
                    pipe.xadd(self.keys.events, {"e": to_json(tombstone(event))})
                await pipe.execute()
        marks = [
            key
            async for key in self.redis.scan_iter(
                match=self.keys.turn_seen(conversation_id, "*"), count=1000
            )
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in [*self.keys.conversation_keys(conversation_id), *marks]:
                pipe.delete(key)  # one key per command: fine on a cluster too
            if conversation is not None:
                pipe.delete(self.keys.address(conversation.channel, conversation.address))
            pipe.zrem(self.keys.timers, f"outbox:{conversation_id}")
            pipe.hdel(self.keys.open_by_conversation, conversation_id)
            await pipe.execute()
        self._indexed.pop(conversation_id, None)

    @_reachable
    async def forget_tickets(self, ticket_ids: Sequence[str]) -> None:
        if not ticket_ids:
            return
        await self._run(
            "forget_tickets",
            [*self._desk_keys(), self.keys.opened_by, self.keys.resolved],
            [self.keys.desk, *ticket_ids],
        )
        timers: list[Any] = []
        for ticket_id in ticket_ids:  # every timer kind names its ticket (sla, offers ...)
            timers += [
                member
                async for member, _ in self.redis.zscan_iter(
                    self.keys.timers, match=f"*{ticket_id}*", count=1000
                )
            ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for ticket_id in ticket_ids:
                pipe.delete(self.keys.ticket_events(ticket_id))
            if timers:
                pipe.zrem(self.keys.timers, *timers)
            await pipe.execute()

    @_reachable
    async def forget_contact_record(self, contact: Contact) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.contact(contact.id))
            for identity in contact.identities:
                pipe.delete(self.keys.identity(identity))
            await pipe.execute()

    # -- dedupe and numbering -------------------------------------------------

    @_reachable
    async def mark_seen(self, key: str, ttl_seconds: int) -> bool:
        # ttl_seconds is [engine] dedupe_ttl_seconds: the mark expires by itself (PX).
        return bool(await self.redis.set(self.keys.seen(key), 1, nx=True, px=ttl_seconds * 1000))

    @_reachable
    async def is_seen(self, key: str) -> bool:
        return bool(await self.redis.exists(self.keys.seen(key)))

    @_reachable
    async def next_ticket_number(self) -> int:
        # INCR counts from 1; the offset keeps numbers readable (#1001) and still unique.
        return int(await self.redis.incr(self.keys.ticket_number)) + self._first_ticket_number - 1

    # -- contacts and conversations -------------------------------------------

    @_reachable
    async def get_contact(self, contact_id: str) -> Contact | None:
        raw = await self.redis.get(self.keys.contact(contact_id))
        return None if raw is None else from_json(Contact, raw)

    @_reachable
    async def find_contact(self, identity: Identity) -> Contact | None:
        contact_id = await self.redis.get(self.keys.identity(identity))
        return None if contact_id is None else await self.get_contact(_text(contact_id))

    @_reachable
    async def save_contact(self, contact: Contact) -> None:
        # The contact first, then its indexes: an index never points at nothing.
        # Separate keys (slots), so a pipeline rather than a transaction.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.contact(contact.id), to_json(contact))
            for identity in contact.identities:
                pipe.set(self.keys.identity(identity), contact.id)
            await pipe.execute()

    @_reachable
    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        raw = await self.redis.get(self.keys.conversation(conversation_id))
        return None if raw is None else from_json(Conversation, raw)

    @_reachable
    async def find_conversation(self, channel: str, address: str) -> Conversation | None:
        conversation_id = await self.redis.get(self.keys.address(channel, address))
        return (
            None if conversation_id is None else await self.get_conversation(_text(conversation_id))
        )

    @_reachable
    async def save_conversation(self, conversation: Conversation, lease: Lease) -> None:
        if lease.conversation_id != conversation.id:
            raise LockLost(conversation.id, lease.token)
        saved = await self._run(
            "save_conversation",
            [self.keys.lock(conversation.id), self.keys.conversation(conversation.id)],
            [lease.token, to_json(conversation)],
        )
        if not saved:
            raise LockLost(conversation.id, lease.token)
        # The address index lives in another slot; written after a fenced save, and
        # idempotent (a conversation never changes channel or address).
        if conversation.id in self._indexed:
            self._indexed.move_to_end(conversation.id)
            return
        await self.redis.set(
            self.keys.address(conversation.channel, conversation.address), conversation.id
        )
        self._remember_indexed(conversation.id)

    def _remember_indexed(self, conversation_id: str) -> None:
        self._indexed[conversation_id] = None
        self._indexed.move_to_end(conversation_id)
        if len(self._indexed) > INDEXED_CACHE:
            self._indexed.popitem(last=False)

    # -- transcript and events --------------------------------------------------

    @_reachable
    async def append_message(self, message: Message) -> None:
        conversation_id = message.conversation_id
        await self._run(
            "append_message",
            [
                self.keys.messages(conversation_id),
                self.keys.archive(conversation_id),
                self.keys.transcript_bytes(conversation_id),
            ],
            [
                to_json(message),
                self._hot_messages,
                self._archive_messages,
                _record_start(message.id),
                RECENT_IDS,
                self._max_bytes,
            ],
        )

    @_reachable
    async def transcript(self, conversation_id: str, limit: int | None = None) -> list[Message]:
        if limit is not None and limit <= 0:
            return []
        raws = await self._run(
            "transcript",
            [self.keys.messages(conversation_id), self.keys.archive(conversation_id)],
            ["" if limit is None else limit],
        )
        return [from_json(Message, raw) for raw in raws]

    @_reachable
    async def append_event(self, event: Event) -> None:
        raw = to_json(event)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self.keys.events, {"e": raw}, maxlen=self._events_cap, approximate=True)
            for key in (
                None
                if event.conversation_id is None
                else self.keys.conversation_events(event.conversation_id),
                None if event.ticket_id is None else self.keys.ticket_events(event.ticket_id),
            ):
                if key is not None:
                    pipe.rpush(key, raw)
                    pipe.ltrim(key, -self._conversation_events_cap, -1)
            self._publish(pipe, raw)
            await pipe.execute()
        await self._published_on_cluster([raw])

    @asynccontextmanager
    async def follow(self) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.live_events)
        except redis.exceptions.RedisError as e:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise StoreUnavailable(str(e)) from e

        async def feed() -> AsyncIterator[Event]:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        # one message per turn: its events, a line each
                        for line in message["data"].splitlines():
                            yield from_json(Event, line)
            except redis.exceptions.RedisError as e:
                raise StoreUnavailable(str(e)) from e

        try:
            yield feed()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @_reachable
    async def recent_events(self, limit: int) -> list[Event]:
        if limit <= 0:
            return []
        newest_first = await self.redis.xrevrange(self.keys.events, count=limit) or []
        return [entry.event for entry in _entries(list(reversed(newest_first)))]

    # -- content versions -------------------------------------------------------------

    @_reachable
    async def live_content_version(self) -> int:
        raw = await self.redis.get(self.keys.content_live)
        return int(raw) if raw is not None else 0

    @_reachable
    async def content_version(self, number: int) -> ContentVersion | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.content_meta, str(number))
            pipe.hget(self.keys.content_files, str(number))
            meta, files = await pipe.execute()
        if meta is None:
            return None
        return version_from_json(_text(meta), _text(files) if files is not None else None)

    @_reachable
    async def content_history(self, limit: int = 50) -> list[ContentVersion]:
        live = await self.live_content_version()
        numbers = [str(n) for n in range(live, max(live - limit, 0), -1)]
        if not numbers:
            return []
        metas = await self.redis.hmget(self.keys.content_meta, numbers)
        return [version_from_json(_text(m), None) for m in metas if m is not None]

    @_reachable
    async def publish_content(self, expected_live: int, version: ContentVersion) -> PublishResult:
        number = expected_live + 1
        ok, live = await self._scripts["publish_content"](
            keys=[self.keys.content_live, self.keys.content_meta, self.keys.content_files],
            args=[expected_live, meta_to_json(version, number), files_to_json(version.files)],
        )
        return PublishResult(ok=bool(ok), number=number if ok else 0, live=int(live))

    @_reachable
    async def save_draft(self, draft: ContentDraft) -> None:
        await self.redis.hset(self.keys.content_drafts, draft.owner, draft_to_json(draft))

    @_reachable
    async def get_draft(self, owner: str) -> ContentDraft | None:
        raw = await self.redis.hget(self.keys.content_drafts, owner)
        return draft_from_json(_text(raw)) if raw is not None else None

    @_reachable
    async def discard_draft(self, owner: str) -> bool:
        return bool(await self.redis.hdel(self.keys.content_drafts, owner))

    # -- console users --------------------------------------------------------------

    @_reachable
    async def save_user(self, user: ConsoleUser) -> None:
        await self.redis.hset(self.keys.users, user.login, to_json(user))

    @_reachable
    async def get_user(self, login: str) -> ConsoleUser | None:
        raw = await self.redis.hget(self.keys.users, login)
        return None if raw is None else from_json(ConsoleUser, raw)

    @_reachable
    async def delete_user(self, login: str) -> bool:
        return bool(await self.redis.hdel(self.keys.users, login))

    @_reachable
    async def users(self) -> list[ConsoleUser]:
        raws = await self.redis.hgetall(self.keys.users)
        found = [from_json(ConsoleUser, raw) for raw in raws.values()]
        return sorted(found, key=lambda u: u.login)

    @_reachable
    async def events(
        self, *, conversation_id: str | None = None, ticket_id: str | None = None
    ) -> list[Event]:
        if conversation_id is None and ticket_id is None:
            found: list[Event] = []
            after: str | None = None
            while page := await self.read_stream(after, STREAM_PAGE):
                found += [entry.event for entry in page]
                after = page[-1].position
            return found
        key = (
            self.keys.conversation_events(conversation_id)
            if conversation_id is not None
            else self.keys.ticket_events(str(ticket_id))
        )
        found = [from_json(Event, raw) for raw in await self.redis.lrange(key, 0, -1)]
        if ticket_id is not None:
            found = [e for e in found if e.ticket_id == ticket_id]
        return found

    @_reachable
    async def read_stream(self, after: str | None = None, count: int = 1000) -> list[StreamEntry]:
        if count <= 0:
            return []
        low = "-" if after is None else f"({after}"
        return _entries(await self.redis.xrange(self.keys.events, low, "+", count=count) or [])

    @_reachable
    async def stream_info(self) -> StreamInfo:
        try:
            info = await self.redis.xinfo_stream(self.keys.events)
        except redis.exceptions.ResponseError:  # no stream yet
            return StreamInfo(0, 0, self._events_cap, None)
        info = {_text(k): v for k, v in info.items()}
        length = int(info["length"])
        first = _entries([info["first-entry"]]) if info.get("first-entry") else []
        # entries-added: Redis 7.0+; on 6.2 nothing is known to be trimmed.
        added = int(info.get("entries-added", length))
        return StreamInfo(length, added, self._events_cap, first[0] if first else None)

    @_reachable
    async def create_group(self, group: str) -> None:
        try:
            await self.redis.xgroup_create(self.keys.events, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    @_reachable
    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_seconds: float | None = None
    ) -> list[StreamEntry]:
        key = self.keys.events
        try:
            pending = await self.redis.xreadgroup(group, consumer, {key: "0"}, count=count)
            kept, dropped = _group_entries(pending)
            if dropped:  # trimmed by the cap before they were acknowledged
                await self.redis.xack(key, group, *dropped)
            if kept:
                return kept
            block = None if not block_seconds else max(1, round(block_seconds * 1000))
            new = await self.redis.xreadgroup(group, consumer, {key: ">"}, count=count, block=block)
        except redis.exceptions.ResponseError as e:
            if "NOGROUP" in str(e):
                raise StoreError(f"no consumer group {group!r} on the event stream") from e
            raise
        return _group_entries(new)[0]

    @_reachable
    async def ack(self, group: str, positions: Sequence[str]) -> int:
        if not positions:
            return 0
        return int(await self.redis.xack(self.keys.events, group, *positions))

    @_reachable
    async def group_position(self, group: str) -> str | None:
        try:
            groups = await self.redis.xinfo_groups(self.keys.events)
        except redis.exceptions.ResponseError:  # no stream
            return None
        for info in groups:
            info = {_text(k): v for k, v in info.items()}
            if _text(info["name"]) == group:
                return _text(info["last-delivered-id"])
        return None

    # -- tickets and queues -------------------------------------------------------

    def _change(self, reply: list[Any]) -> TicketChange:
        error = _text(reply[0])
        ticket = from_json(Ticket, reply[1]) if len(reply) > 1 else None
        before = from_json(Ticket, reply[2]) if len(reply) > 2 else None
        return TicketChange(ticket, ChangeError(error) if error else None, before)

    @_reachable
    async def open_ticket(self, ticket: Ticket) -> None:
        if ticket.state is not TicketState.QUEUED:
            raise ValueError(f"a new ticket must be queued, not {ticket.state}")
        await self._run(
            "open_ticket",
            [*self._desk_keys(), self.keys.queue(ticket.tier)],
            [self.keys.desk, to_json(ticket), queue_score(ticket.priority, ticket.queued_at)],
        )

    @_reachable
    async def open_ticket_of(self, conversation_id: str) -> Ticket | None:
        raw = await self._run(
            "open_ticket_of",
            [self.keys.tickets, self.keys.open_by_conversation],
            [self.keys.desk, conversation_id],
        )
        return None if raw is None else from_json(Ticket, raw)

    @_reachable
    async def get_ticket(self, ticket_id: str) -> Ticket | None:
        raw = await self.redis.hget(self.keys.tickets, ticket_id)
        return None if raw is None else from_json(Ticket, raw)

    @_reachable
    async def find_ticket(self, number: int) -> Ticket | None:
        ticket_id = await self.redis.hget(self.keys.numbers, str(number))
        return None if ticket_id is None else await self.get_ticket(_text(ticket_id))

    def _desk_keys(self) -> list[str]:
        return [
            self.keys.tickets,
            self.keys.numbers,
            self.keys.scores,
            self.keys.open_by_conversation,
        ]

    @_reachable
    async def claim(
        self,
        ticket_id: str,
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        tiers: Sequence[str] = (),
    ) -> TicketChange:
        reply = await self._run(
            "claim",
            [*self._desk_keys(), self.keys.agent(agent_id)],
            [self.keys.desk, ticket_id, agent_id, "" if max_open is None else max_open, *tiers],
        )
        return self._change(reply)

    @_reachable
    async def take_next(
        self,
        tiers: Sequence[str],
        agent_id: str,
        now: datetime,
        max_open: int | None = None,
        skills: SkillFilter | None = None,
    ) -> TicketChange:
        strict = skills.strict_tiers if skills is not None else ()
        reply = await self._run(
            "take_next",
            [*self._desk_keys(), self.keys.agent(agent_id), *map(self.keys.queue, tiers)],
            [
                self.keys.desk,
                agent_id,
                "" if max_open is None else max_open,
                "0" if skills is None else "1",
                "" if skills is None else "\n".join(skills.skills),
                SKILL_SCAN,
                len(tiers),
                *tiers,
                *("1" if tier in strict else "0" for tier in tiers),
            ],
        )
        return self._change(reply)

    @_reachable
    async def escalate(
        self,
        ticket_id: str,
        to_tier: str,
        now: datetime,
        *,
        expect: Ticket | None = None,
    ) -> TicketChange:
        expected: list[str | int] = []
        if expect is not None:
            expected = [expect.tier, expect.assignee or ""]
        reply = await self._run(
            "escalate",
            [*self._desk_keys(), self.keys.queue(to_tier)],
            [self.keys.desk, ticket_id, to_tier, *self._moving(now), *expected],
        )
        return self._change(reply)

    @_reachable
    async def release(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        reply = await self._run(
            "release",
            [*self._desk_keys(), self.keys.agent(agent_id)],
            [self.keys.desk, ticket_id, agent_id],
        )
        return self._change(reply)

    @_reachable
    async def resolve(self, ticket_id: str, agent_id: str, now: datetime) -> TicketChange:
        reply = await self._run(
            "resolve",
            [*self._desk_keys(), self.keys.agent(agent_id), self.keys.resolved],
            [self.keys.desk, ticket_id, agent_id, format_datetime(now), unix_micros(now)],
        )
        return self._change(reply)

    @_reachable
    async def close_by_customer(self, ticket_id: str, now: datetime) -> TicketChange:
        reply = await self._run(
            "close_by_customer",
            [*self._desk_keys(), self.keys.resolved],
            [self.keys.desk, ticket_id, format_datetime(now), unix_micros(now)],
        )
        return self._change(reply)

    @_reachable
    async def prune_tickets(self, resolved_before: datetime, limit: int = 500) -> list[str]:
        if limit <= 0:
            return []
        pruned = [
            _text(ticket_id)
            for ticket_id in await self._run(
                "prune_tickets",
                [self.keys.tickets, self.keys.numbers, self.keys.scores, self.keys.resolved],
                [self.keys.desk, unix_micros(resolved_before), limit],
            )
        ]
        if pruned:
            # Each ticket's event list is in its own slot: deleted after the atomic step
            # (a crash in between leaves only an orphan event list, never a half ticket).
            async with self.redis.pipeline(transaction=False) as pipe:
                for ticket_id in pruned:
                    pipe.delete(self.keys.ticket_events(ticket_id))
                await pipe.execute()
        return pruned

    @_reachable
    async def mark_first_response(
        self,
        ticket_id: str,
        now: datetime,
        *,
        agent_id: str | None = None,
        tier: str | None = None,
    ) -> TicketChange:
        reply = await self._run(
            "mark_first_response",
            self._desk_keys(),
            [self.keys.desk, ticket_id, format_datetime(now), agent_id or "", tier or ""],
        )
        return self._change(reply)

    def _moving(self, now: datetime) -> list[str | int]:
        """The arguments ``move_to_tier`` needs: now, its queue µs, the score's parts."""
        return [format_datetime(now), queue_micros(now), TOP_PRIORITY, PRIORITY_SPAN]

    @_reachable
    async def breach_step(
        self,
        ticket_id: str,
        breach: Breach,
        action: BreachAction,
        now: datetime,
        to_tier: str | None = None,
    ) -> TicketChange:
        replied = "" if breach.replied_at is None else format_datetime(breach.replied_at)
        reply = await self._run(
            "breach_step",
            self._desk_keys(),
            [
                self.keys.desk,
                ticket_id,
                breach.mark(action),
                breach.promise.value,
                breach.tier,
                format_datetime(breach.queued_at),
                replied,
                action.value,
                *self._moving(now),
                to_tier or "",
            ],
        )
        return self._change(reply)

    @_reachable
    async def route(self, ticket_id: str, routing: Routing, now: datetime) -> TicketChange:
        private = "" if routing.private is None else ("1" if routing.private else "0")
        reply = await self._run(
            "route",
            self._desk_keys(),
            [
                self.keys.desk,
                ticket_id,
                routing.tier or "",
                "" if routing.priority is None else int(routing.priority),
                "" if routing.skills is None else json.dumps(list(routing.skills)),
                private,
                *self._moving(now),
            ],
        )
        return self._change(reply)

    @_reachable
    async def move_offer(
        self, ticket_id: str, queued_at: datetime, current: str | None, to: str | None
    ) -> TicketChange:
        reply = await self._run(
            "move_offer",
            self._desk_keys(),
            [self.keys.desk, ticket_id, format_datetime(queued_at), current or "", to or ""],
        )
        return self._change(reply)

    @_reachable
    async def agent_loads(self, agent_ids: Sequence[str]) -> dict[str, AgentLoad]:
        if not agent_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.scard(self.keys.agent(agent_id))
            pipe.hmget(self.keys.last_assigned, list(agent_ids))
            replies = await pipe.execute()
        counts, last = replies[:-1], replies[-1]
        return {
            agent_id: AgentLoad(int(count), int(seq or 0))
            for agent_id, count, seq in zip(agent_ids, counts, last, strict=True)
        }

    @_reachable
    async def set_availability(self, agent_id: str, state: Availability) -> None:
        await self.redis.hset(self.keys.availability, agent_id, state.value)

    @_reachable
    async def availability(self, agent_id: str) -> Availability | None:
        value = await self.redis.hget(self.keys.availability, agent_id)
        return None if value is None else Availability(_text(value))

    @_reachable
    async def availabilities(self) -> dict[str, Availability]:
        found = await self.redis.hgetall(self.keys.availability)
        return {_text(k): Availability(_text(v)) for k, v in found.items()}

    @_reachable
    async def record_csat(self, ticket_id: str, score: int) -> TicketChange:
        reply = await self._run(
            "record_csat", self._desk_keys(), [self.keys.desk, ticket_id, int(score)]
        )
        return self._change(reply)

    @_reachable
    async def queue(self, tier: str) -> list[Ticket]:
        raws = await self._run(
            "queue", [self.keys.tickets, self.keys.queue(tier)], [self.keys.desk, tier]
        )
        return [from_json(Ticket, raw) for raw in raws]

    @_reachable
    async def assigned(self, agent_id: str) -> list[Ticket]:
        raws = await self._run("assigned", [self.keys.tickets, self.keys.agent(agent_id)], [])
        tickets = [from_json(Ticket, raw) for raw in raws]
        return sorted(tickets, key=lambda t: t.number)

    # -- links kept for adapters ---------------------------------------------------------

    @_reachable
    async def set_link(self, key: str, value: str) -> None:
        await self.redis.set(self.keys.link(key), value)

    @_reachable
    async def get_link(self, key: str) -> str | None:
        value = await self.redis.get(self.keys.link(key))
        return None if value is None else _text(value)

    # -- locks and timers -----------------------------------------------------------

    @_reachable
    async def try_lock(self, conversation_id: str, ttl_seconds: float) -> Lease | None:
        token = await self._run(
            "try_lock",
            [self.keys.lock(conversation_id), self.keys.fence(conversation_id)],
            [max(1, round(ttl_seconds * 1000))],
        )
        return None if token is None else Lease(conversation_id, int(token))

    @_reachable
    async def unlock(self, lease: Lease) -> None:
        await self._run("unlock", [self.keys.lock(lease.conversation_id)], [lease.token])

    @_reachable
    async def schedule(self, timer_id: str, due_at: datetime) -> None:
        await self.redis.zadd(self.keys.timers, {timer_id: unix_micros(due_at)})

    @_reachable
    async def pop_due(
        self, now: datetime, limit: int = 100, lease_until: datetime | None = None
    ) -> list[str]:
        if limit <= 0:
            return []
        lease = "" if lease_until is None else unix_micros(lease_until)
        popped = await self._run("pop_due", [self.keys.timers], [unix_micros(now), limit, lease])
        return [_text(timer_id) for timer_id in popped]

    @_reachable
    async def cancel_timer(self, timer_id: str, due_at: datetime) -> bool:
        removed = await self._run(
            "cancel_timer", [self.keys.timers], [timer_id, unix_micros(due_at)]
        )
        return bool(removed)

    @_reachable
    async def ping(self) -> None:
        await self.redis.ping()

    @_reachable
    async def load_scripts(self) -> None:
        """Load every script (one pipeline), so the first turn does not pay for it.
        Redis forgets them on restart; each call then loads its own (NOSCRIPT)."""
        if isinstance(self.redis, aioredis.RedisCluster):
            for source in lua.SCRIPTS.values():  # SCRIPT LOAD goes to every primary
                await self.redis.script_load(source)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for source in lua.SCRIPTS.values():
                pipe.script_load(source)
            await pipe.execute()

    async def close(self) -> None:
        while self._group or self._alone:  # waiting steps go now, after any group out
            if self._group_handle is not None:
                self._group_handle.cancel()
                self._group_handle = None
            if self._group and not self._groups_out:
                self._send_group()
            await asyncio.gather(*self._alone, return_exceptions=True)
        riders = self._take_riders()
        if riders:  # acks still waiting for a ride go now, before the client closes
            await self._ride_alone(riders)
        await asyncio.gather(*self._alone, return_exceptions=True)
        await self._signals.close()
        await self.redis.aclose()

    # -- signals and counters -----------------------------------------------------------

    @_reachable
    async def publish(self, topic: str, payload: str) -> None:
        await self.redis.publish(self.keys.signal(topic), payload)

    @_reachable
    async def listen(self, topic: str) -> Listening:
        return await self._signals.listen(topic)

    @_reachable
    async def hit(self, key: str, window_seconds: int) -> int:
        return int(await self._run("hit", [self.keys.hits(key)], [window_seconds * 1000]))
