"""What a turn has produced so far, written by the store in one step when it ends.

A turn (one customer message, under its conversation's lock) no longer writes as it
goes: its transcript lines, events, replies (outbox items), timers and the saved
conversation collect in a :class:`Pending` and :meth:`bot.store.base.Store.commit_turn`
writes them at the end, atomically for the conversation (issue 18: one store step per
turn; issue 11: a reply is stored with the turn that decided it, or not at all).

The parts that record things (:class:`~bot.events.Recorder`,
:class:`~bot.outbox.Outbox`, :class:`~bot.timers.Timers`) look up the current
pending write here, so the flows, triage and handoff code is the same inside a turn
and outside one (an agent's reply writes at once). Work that must see the committed
state, or talks to the network (agent workspaces), is queued with :meth:`later` and
runs after the commit, with the lock given back.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from bot.models import Message
from bot.store.base import ConversationStore, TurnWrite

After = Callable[[], Awaitable[None]]


@dataclass
class Pending:
    write: TurnWrite
    #: Run in order once the write is committed (workspace notifications ...).
    after: list[After] = field(default_factory=list)
    #: False once the turn is over: a task spawned in it must not keep collecting.
    active: bool = True

    def later(self, action: After) -> None:
        self.after.append(action)


_CURRENT: contextvars.ContextVar[Pending | None] = contextvars.ContextVar(
    "escala_pending", default=None
)


def current(conversation_id: str | None = None) -> Pending | None:
    """The pending write of the turn running in this task, if any; with
    ``conversation_id``, only when the turn is that conversation's."""
    pending = _CURRENT.get()
    if pending is None or not pending.active:
        return None
    if conversation_id is not None and pending.write.conversation_id != conversation_id:
        return None
    return pending


@contextlib.contextmanager
def collecting(write: TurnWrite) -> Iterator[Pending]:
    """Within: writes of ``write.conversation_id`` collect in the returned
    :class:`Pending` instead of reaching the store."""
    pending = Pending(write)
    token = _CURRENT.set(pending)
    try:
        yield pending
    finally:
        pending.active = False
        _CURRENT.reset(token)


async def append_line(conversations: ConversationStore, message: Message) -> None:
    """A transcript line: with the turn of its conversation when one is running here
    (written in its commit), else at once."""
    turn = current(message.conversation_id)
    if turn is not None:
        turn.write.messages.append(message)
    else:
        await conversations.append_message(message)
