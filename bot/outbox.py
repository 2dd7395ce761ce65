"""Messages to customers: stored first, then delivered by whichever process can
(issue 11: a durable outbox).

A reply the engine decides is an :class:`~bot.models.OutboxItem`, written to the
store with the transcript line it is, in the same atomic step as the rest of its turn
(:mod:`bot.pending`); outside a turn (an agent's reply) it is written at once. Only
then is it handed to its channel's sender, and it leaves the store only when the
provider accepted it, or it finally failed (a ``delivery.failed`` event agents see).

Delivery per conversation is ordered and single: the process that wrote the items
takes the conversation's *delivery lease* in the same step and sends them at once;
anyone else finds them through a safety-net timer (``outbox:<conversation id>``, due
one lease later), so a process killed with replies queued loses none: the lease
expires, the timer fires on a surviving process, and that process sends them, in
order. The bound: a reply the provider accepted just before its process died,
before the store heard of it, is sent again by the next process (at least once;
twice only in that case).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from bot import pending
from bot.clock import Clock, Ids
from bot.errors import DeliveryError, DeliveryInterrupted, StoreError
from bot.events import Recorder
from bot.models import (
    Contact,
    Conversation,
    Direction,
    Message,
    OutboundMessage,
    OutboxItem,
)
from bot.ports import ChannelSender, Done, QueueingSender
from bot.store.base import ContactStore, OutboxAck, Store, TurnWrite
from bot.timers import Timers

log = logging.getLogger(__name__)

#: The safety-net timer's kind: ``outbox:<conversation id>``.
OUTBOX_TIMER = "outbox"


@dataclass
class _AckGroup:
    """Consecutive items of one conversation handed to queueing senders together: each
    ends on its own, and the last to end acks all of them in one store step. A crash
    in between resends the ones sent (at least once, as the module doc says)."""

    waiting: int
    members: list[str] = field(default_factory=list)  # handed over so far
    ids: list[str] = field(default_factory=list)  # ended, to ack
    ended: int = 0
    interrupted: bool = False
    timer: tuple[str, datetime] | None = None


@dataclass
class _TurnLines:
    """The ids of the lines one turn writes: ``<inbound id>.1``, ``.2`` ..."""

    base: str
    count: int = 0
    active: bool = True


_TURN_LINES: contextvars.ContextVar[_TurnLines | None] = contextvars.ContextVar(
    "escala_turn_lines", default=None
)


class Outbox:
    """Stores replies and delivers them (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        contacts: ContactStore,
        recorder: Recorder,
        clock: Clock,
        ids: Ids,
        timers: Timers,
        *,
        lease_seconds: float = 30.0,
        wait_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._contacts = contacts
        self._recorder = recorder
        self._clock = clock
        self._ids = ids
        self._timers = timers
        self.lease_seconds = lease_seconds
        #: This process's delivery-lease token (one for every conversation it delivers).
        self.token = ids.new("obx")
        self._senders: dict[str, ChannelSender] = {}
        #: The channels whose sender queues (decided once: a runtime Protocol check
        #: costs ~15 µs, twice per reply, issue 18).
        self._queueing: set[str] = set()
        #: Conversations this process is delivering now (their lease is ours).
        self._busy: dict[str, int] = {}
        self._acks: list[tuple[OutboxAck, asyncio.Future[int]]] = []
        self._acker: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        #: Items this process handed to a sender and has not heard back about: a later
        #: look at the outbox (which still holds them) must not send them again.
        self._in_flight: set[str] = set()
        #: How long :meth:`deliver` waits for a plain sender before going on behind.
        self.wait_seconds = wait_seconds
        timers.on(OUTBOX_TIMER, self._due)

    def register(self, channel: str, sender: ChannelSender) -> None:
        self._senders[channel] = sender
        if isinstance(sender, QueueingSender):
            self._queueing.add(channel)
        else:
            self._queueing.discard(channel)

    @contextlib.contextmanager
    def turn(self, inbound_id: str) -> Iterator[None]:
        """Within: the transcript lines :meth:`send` writes get ids derived from the
        inbound message's, in order. A turn retried after a store failure makes the
        same lines with the same ids, and the store writes each once."""
        lines = _TurnLines(inbound_id)
        token = _TURN_LINES.set(lines)
        try:
            yield
        finally:
            lines.active = False  # a task spawned in the turn must not keep counting
            _TURN_LINES.reset(token)

    def _line_id(self) -> str:
        lines = _TURN_LINES.get()
        if lines is None or not lines.active:
            return self._ids.new("msg")
        lines.count += 1
        return f"{lines.base}.{lines.count}"

    # -- storing --------------------------------------------------------------------------

    async def send(
        self,
        conversation: Conversation,
        message: OutboundMessage,
        *,
        direction: Direction = Direction.BOT,
        author: str = "",
        contact: Contact | None = None,
    ) -> None:
        """Record ``message`` in the transcript and the outbox (with the turn, inside
        one), then deliver it; a contact who opted out or cannot be reached gets the
        transcript line and a ``delivery.failed`` event instead.

        ``contact``: the conversation's contact when the caller has just read it (a
        turn does, under the conversation's lock), saving a store round trip.
        """
        record = Message(
            id=self._line_id(),
            conversation_id=conversation.id,
            direction=direction,
            text=message.text,
            at=self._clock.now(),
            author=author,
        )
        if contact is None or contact.id != conversation.contact_id:
            contact = await self._contacts.get_contact(conversation.contact_id)
        item: OutboxItem | None = None
        reason = self._blocked(contact, conversation.channel)
        if reason is None:
            item = OutboxItem(
                id=f"out.{record.id}",
                conversation_id=conversation.id,
                channel=conversation.channel,
                address=conversation.address,
                locale=conversation.locale,
                text=message.text,
                choices=message.choices,
                message_id=record.id,
                ticket_id=conversation.ticket_in_view,
                created_at=record.at,
            )
        await self._store_reply(conversation.id, record, item)
        if reason is not None:
            await self._recorder.delivery_failed(
                reason,
                conversation_id=conversation.id,
                ticket_id=conversation.ticket_in_view,
                message_id=record.id,
                channel=conversation.channel,
            )

    async def notice(
        self,
        conversation_id: str,
        channel: str,
        address: str,
        message: OutboundMessage,
        contact: Contact,
    ) -> None:
        """A reply outside the conversation's turns (a carrier keyword's answer, the
        "text only" reply to media), kept out of the transcript like the message it
        answers; never sent to a contact who opted out or cannot be reached."""
        if contact.opted_out or contact.unreachable:
            return
        item = OutboxItem(
            id=f"out.{self._line_id()}",
            conversation_id=conversation_id,
            channel=channel,
            address=address,
            locale=contact.locale,
            text=message.text,
            choices=message.choices,
            created_at=self._clock.now(),
        )
        await self._store_reply(conversation_id, None, item)

    def _blocked(self, contact: Contact | None, channel: str) -> str | None:
        if contact is not None and (contact.opted_out or contact.unreachable):
            return "not sent: contact " + ("opted out" if contact.opted_out else "unreachable")
        if channel not in self._senders:
            return f"no sender for channel {channel}"
        return None

    async def _store_reply(
        self, conversation_id: str, record: Message | None, item: OutboxItem | None
    ) -> None:
        turn = pending.current(conversation_id)
        write = turn.write if turn is not None else TurnWrite(conversation_id, unlock=False)
        if record is not None:
            write.messages.append(record)
        if item is not None:
            write.outbox.append(item)
            self.prepare(write)
        if turn is None and (record is not None or item is not None):
            committed = await self._store.commit_turn(write)
            await self.deliver(write, committed.outbox_leased)

    def prepare(self, write: TurnWrite) -> None:
        """Ask for the delivery lease and set the safety-net timer with ``write``."""
        write.outbox_token = self.token
        write.outbox_lease_seconds = self.lease_seconds
        key = f"{OUTBOX_TIMER}:{write.conversation_id}"
        write.timers[key] = self._clock.now() + timedelta(seconds=self.lease_seconds)

    # -- delivering -----------------------------------------------------------------------

    async def deliver(self, write: TurnWrite, leased: bool) -> None:
        """After ``write`` is committed: send its items, when this process took the
        conversation's delivery lease with it (else its holder, or the timer, will).

        Waits up to ``wait_seconds`` for the sender (a queueing sender returns at once;
        a plain one answers when the provider did), then lets delivery go on in the
        background: a slow provider never holds a webhook open for long."""
        if not write.outbox or not leased:
            return
        due = write.timers.get(f"{OUTBOX_TIMER}:{write.conversation_id}")
        task = asyncio.create_task(self._run(write.conversation_id, list(write.outbox), due))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        done, _ = await asyncio.wait((task,), timeout=self.wait_seconds)
        if task in done:
            task.result()  # a store error reaches the caller's log, as before

    async def _due(self, conversation_id: str) -> None:
        """The safety-net timer: deliver what a process (maybe dead) left behind."""
        again = self._clock.now() + timedelta(seconds=self.lease_seconds)
        if conversation_id in self._busy:
            await self._timers.schedule(OUTBOX_TIMER, conversation_id, again)
            return
        items = await self._store.take_outbox(conversation_id, self.token, self.lease_seconds)
        if items is None:  # another process holds the lease: look again after it
            await self._timers.schedule(OUTBOX_TIMER, conversation_id, again)
            return
        if items:
            log.info("outbox: delivering %d reply(ies) left in %s", len(items), conversation_id)
            await self._timers.schedule(OUTBOX_TIMER, conversation_id, again)
            await self._run(conversation_id, items, again)

    def _hold(self, conversation_id: str) -> None:
        self._busy[conversation_id] = self._busy.get(conversation_id, 0) + 1
        self._start_renewer()

    def _let_go(self, conversation_id: str) -> None:
        count = self._busy.pop(conversation_id, 1) - 1
        if count > 0:
            self._busy[conversation_id] = count

    async def _run(
        self, conversation_id: str, items: list[OutboxItem], due: datetime | None
    ) -> None:
        """Send ``items`` (the head of the conversation's outbox, lease held) in order,
        then whatever was added meanwhile, until the outbox is empty."""
        self._hold(conversation_id)
        try:
            while items := [i for i in items if i.id not in self._in_flight]:
                left = await self._send_all(conversation_id, items, due)
                if left is None or left == 0:
                    return
                taken = await self._store.take_outbox(
                    conversation_id, self.token, self.lease_seconds
                )
                items = taken or []
        finally:
            self._let_go(conversation_id)

    async def _send_all(
        self, conversation_id: str, items: Sequence[OutboxItem], due: datetime | None
    ) -> int | None:
        """Send each item; how many remain in the store after the acks (None: stopped,
        the rest is left for the lease's next holder)."""
        timer = None
        if due is not None:
            timer = (f"{OUTBOX_TIMER}:{conversation_id}", due)
        acked: list[str] = []
        left: int | None = None
        group: _AckGroup | None = None
        for n, item in enumerate(items):
            last = n == len(items) - 1
            sender = self._senders.get(item.channel)
            if item.channel in self._queueing:
                # Retried in the background: the item is acked when it ends, together
                # with the queued items next to it (one store round trip for a turn's
                # replies, issue 18). Acks of the ones sent inline so far go first, to
                # keep the store's order.
                if acked:
                    await self._ack(conversation_id, acked, None)
                    acked = []
                if group is None:
                    group = _AckGroup(self._queued_run(items, n))
                self._hold(conversation_id)  # until it ends: the lease is renewed meanwhile
                self._in_flight.add(item.id)
                await cast(QueueingSender, sender).enqueue(
                    item.address,
                    item.outbound,
                    item.locale,
                    self._on_done(item, group),
                )
                group.members.append(item.id)
                if last:
                    group.timer = timer  # the batch's last ack settles the safety-net timer
                if len(group.members) == group.waiting:
                    group = None  # the run ends here: the next queued item starts another
                if last:
                    return None  # the last ack (in _on_done) tells what is left
                continue
            error = await self._attempt(sender, item)
            if isinstance(error, DeliveryInterrupted):
                break
            if error is not None:
                await self._failed(item, error.reason)
            acked.append(item.id)
        if acked:
            left = await self._ack(conversation_id, acked, timer)
        return left

    async def _attempt(
        self, sender: ChannelSender | None, item: OutboxItem
    ) -> DeliveryError | None:
        if sender is None:
            return DeliveryError(item.channel, f"no sender for channel {item.channel}")
        try:
            await sender.send(item.address, item.outbound, item.locale)
        except DeliveryError as e:
            return e
        except Exception as e:  # a sender's bug must not keep the reply forever
            log.exception("%s sender crashed", item.channel)
            return DeliveryError(item.channel, f"unexpected error: {type(e).__name__}")
        return None

    def _queued_run(self, items: Sequence[OutboxItem], start: int) -> int:
        """How many items from ``start`` on go to queueing senders, one after another."""
        count = 0
        for item in items[start:]:
            if item.channel not in self._queueing:
                break
            count += 1
        return count

    def _on_done(self, item: OutboxItem, group: _AckGroup) -> Done:
        async def done(error: DeliveryError | None) -> None:
            try:
                if isinstance(error, DeliveryInterrupted):
                    group.interrupted = True  # left in the store: the next holder sends it
                else:
                    if error is not None:
                        await self._failed(item, error.reason)
                    group.ids.append(item.id)
                group.ended += 1
                if group.ended < group.waiting or not group.ids:
                    return  # the run's last item acks them all (still in flight till then)
                # items left behind keep the safety-net timer
                timer_now = None if group.interrupted else group.timer
                left = await self._ack(item.conversation_id, list(group.ids), timer_now)
                if left and self._busy.get(item.conversation_id, 0) <= 1:
                    # More arrived meanwhile (another writer's items) and none of this
                    # process's are still on their way (they would see to it): keep
                    # going now, whichever way these came, not when the timer fires.
                    task = asyncio.create_task(self._more(item.conversation_id))
                    _BACKGROUND.add(task)
                    task.add_done_callback(_BACKGROUND.discard)
            except StoreError:  # stays in the outbox: sent again by the next holder
                log.exception("outbox: could not record how %s ended", item.id)
            finally:
                if group.ended >= group.waiting:
                    self._in_flight.difference_update(group.members)
                self._let_go(item.conversation_id)

        return done

    async def _more(self, conversation_id: str) -> None:
        """Items another writer added while this process held the lease."""
        items = await self._store.take_outbox(conversation_id, self.token, self.lease_seconds)
        if items:  # _run skips the ones already handed to the sender here
            await self._run(conversation_id, items, None)

    async def _ack(
        self, conversation_id: str, ids: list[str], timer: tuple[str, datetime] | None
    ) -> int:
        """Acks are grouped as a database groups commits: while one batch is on its way
        to the store, those that arrive wait and go together in the next (one round
        trip for all; on a busy process, well under one per message). Nothing waits for
        a timer: an ack alone goes at once."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks.append((OutboxAck(conversation_id, self.token, ids, timer), waiter))
        if self._acker is None or self._acker.done():
            self._acker = asyncio.create_task(self._send_acks(), name="escala-outbox-acks")
        return await waiter

    async def _send_acks(self) -> None:
        while self._acks:
            batch, self._acks = self._acks, []
            try:
                lefts = await self._store.ack_outboxes([ack for ack, _ in batch])
            except Exception as e:  # each waiter hears it (a StoreError: logged there)
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(e)
                continue
            for (_, waiter), left in zip(batch, lefts, strict=True):
                if not waiter.done():
                    waiter.set_result(left)

    async def _failed(self, item: OutboxItem, reason: str) -> None:
        await self._recorder.delivery_failed(
            reason,
            conversation_id=item.conversation_id,
            ticket_id=item.ticket_id,
            message_id=item.message_id,
            channel=item.channel,
            text=item.text[:80],
        )

    # -- the lease, renewed while this process delivers ------------------------------

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="escala-outbox-lease")

    async def _renew(self) -> None:
        while self._busy:
            await asyncio.sleep(self.lease_seconds / 3)
            busy = list(self._busy)
            try:  # every lease this process holds, in one store step
                renewed = await self._store.renew_outboxes(busy, self.token, self.lease_seconds)
            except StoreError:
                log.warning("outbox: %d delivery lease(s) not renewed", len(busy))
                continue
            for conversation_id, held in zip(busy, renewed, strict=True):
                if not held:
                    log.warning("outbox: lease of %s lost", conversation_id)

    @property
    def idle(self) -> bool:
        """Nothing is being delivered or acknowledged by this process now."""
        return not self._deliveries and (self._acker is None or self._acker.done())

    async def close(self) -> None:
        """Stop delivering: replies not yet accepted stay in the store, for the next
        process (the lease expires)."""
        for task in list(self._deliveries):
            task.cancel()
        if self._deliveries:
            await asyncio.wait(self._deliveries)
        if self._acker is not None:  # acks on their way: let them land
            await asyncio.wait((self._acker,))
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer


_BACKGROUND: set[asyncio.Task[None]] = set()
