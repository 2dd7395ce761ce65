"""Store timers and the sweeper that fires them.

A timer is a store entry (``Store.schedule``) named ``<kind>:<key>``: ``sla:<ticket
id>:<tier>`` for a first-response deadline, ``slack-card:...`` for a card to post
again. It lives in the store, so it survives a restart, and ``Store.pop_due`` hands a
due timer to exactly one caller, so any number of router processes can sweep the
same store and each timer fires once. The same name is the same timer: scheduling it
again moves it.

The sweeper runs in ``escala serve`` and ``escala chat``: every ``interval`` seconds it
pops what is due by the injected clock and calls the handler registered for the
timer's kind. Tests call :meth:`Timers.sweep` after moving a fake clock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot import pending
from bot.clock import Clock
from bot.store import Store

log = logging.getLogger(__name__)

#: Called with the timer's key (the part after ``<kind>:``) when it is due.
Handler = Callable[[str], Awaitable[None]]

#: A timer whose handler failed, or that this process has no handler for, is put back
#: this much later rather than lost (another process, or the store, may be back then).
RETRY_LATER = timedelta(minutes=1)


class Timers:
    def __init__(self, store: Store, clock: Clock, *, batch: int = 100) -> None:
        self.store = store
        self.clock = clock
        self.batch = batch
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(key)`` for every due ``<kind>:<key>`` timer."""
        if ":" in kind:
            raise ValueError(f"a timer kind has no ':': {kind!r}")
        self._handlers[kind] = handler

    async def schedule(self, kind: str, key: str, due_at: datetime) -> None:
        """Set the timer ``<kind>:<key>`` (moving it when it is already set); inside a
        turn, with the turn's write (:mod:`bot.pending`)."""
        turn = pending.current()
        if turn is not None:
            turn.write.timers[f"{kind}:{key}"] = due_at
            return
        await self.store.schedule(f"{kind}:{key}", due_at)

    async def schedule_in(self, kind: str, key: str, delay: timedelta) -> None:
        await self.schedule(kind, key, self.clock.now() + delay)

    async def sweep(self) -> int:
        """Fire every timer due now (in batches); how many were handled.

        Each timer is taken with a lease: ``pop_due`` moves it ``RETRY_LATER`` ahead
        instead of removing it, and it is cancelled once its handler returned. A process
        killed mid-sweep, a failing handler, or a kind this process has no handler for
        leave the lease in place, so the timer fires again then, wherever a sweeper
        runs: at least once, never lost. Handlers must therefore be idempotent."""
        fired = 0
        while True:
            now = self.clock.now()
            lease = now + RETRY_LATER
            due = await self.store.pop_due(now, self.batch, lease_until=lease)
            for timer_id in due:
                await self._fire(timer_id, lease)
            fired += len(due)
            if len(due) < self.batch:
                return fired

    async def _fire(self, timer_id: str, lease: datetime) -> None:
        kind, _, key = timer_id.partition(":")
        handler = self._handlers.get(kind)
        if handler is None:
            log.warning(
                "no handler for timer %s in this process; back in %s", timer_id, RETRY_LATER
            )
            return
        try:
            await handler(key)
        except Exception:  # one timer's failure must not stop the others, nor be lost
            log.exception("timer %s failed; retrying in %s", timer_id, RETRY_LATER)
            return
        # Done: drop the lease, unless the handler moved the timer (then it stays).
        try:
            await self.store.cancel_timer(timer_id, lease)
        except Exception:  # the lease fires once more; handlers are idempotent
            log.warning("timer %s handled; its lease could not be dropped", timer_id)

    # -- the background sweeper ----------------------------------------------------------

    def start(self, interval_seconds: float) -> None:
        """Sweep every ``interval_seconds`` in a background task until :meth:`stop`."""
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(interval_seconds), name="escala-timers")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop sweeping. A sweep in progress finishes first; past ``grace_seconds`` it
        is cancelled, and the timers it had taken but not handled keep their leases, so
        they fire again ``RETRY_LATER`` after, wherever a sweeper runs (:meth:`sweep`)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            log.warning("timer sweep still busy after %ss; cancelled", grace_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, interval_seconds: float) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:  # the store is down: say so, and try again next round
                log.warning("timer sweep failed; retrying in %ss", interval_seconds, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_seconds)
