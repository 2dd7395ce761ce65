"""Ticket news fanned out to every agent workspace (Slack, the web console, the
terminal console)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot import pending
from bot.events import Recorder
from bot.models import Message
from bot.ports import AgentWorkspace, TicketChangeKind, TicketView

log = logging.getLogger(__name__)


class Workspaces:
    """A failing workspace never breaks the customer's journey: the ticket is already
    safe in its queue, so the error is logged and recorded as a delivery failure."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._workspaces: list[AgentWorkspace] = []

    def add(self, workspace: AgentWorkspace) -> None:
        self._workspaces.append(workspace)

    def __bool__(self) -> bool:
        """Whether any workspace listens (else a turn skips building ticket views)."""
        return bool(self._workspaces)

    def _deferred(self, view: TicketView, action: Callable[[], Awaitable[None]]) -> bool:
        """Inside a turn of the view's conversation: tell the workspaces once it is
        committed, with the lock given back (no network call holds the lock)."""
        turn = pending.current(view.conversation.id)
        if turn is None:
            return False
        turn.later(action)
        return True

    async def ticket_opened(self, view: TicketView) -> None:
        if self._deferred(view, lambda: self.ticket_opened(view)):
            return
        for workspace in self._workspaces:
            try:
                await workspace.ticket_opened(view)
            except Exception as e:  # a workspace outage must not lose the customer's turn
                await self._failed(view, workspace, "ticket_opened", e)

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        if self._deferred(view, lambda: self.ticket_changed(view, change)):
            return
        for workspace in self._workspaces:
            try:
                await workspace.ticket_changed(view, change)
            except Exception as e:
                await self._failed(view, workspace, f"ticket_changed:{change}", e)

    async def customer_message(self, view: TicketView, message: Message) -> None:
        if self._deferred(view, lambda: self.customer_message(view, message)):
            return
        for workspace in self._workspaces:
            try:
                await workspace.customer_message(view, message)
            except Exception as e:
                await self._failed(view, workspace, "customer_message", e)

    async def _failed(
        self, view: TicketView, workspace: AgentWorkspace, what: str, error: Exception
    ) -> None:
        name = type(workspace).__name__
        log.exception("workspace %s failed on %s for ticket %s", name, what, view.ticket.label)
        await self._recorder.delivery_failed(
            str(error),
            conversation_id=view.conversation.id,
            ticket_id=view.ticket.id,
            workspace=name,
            what=what,
        )
