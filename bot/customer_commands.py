"""What a customer's commands do while a ticket is open (issue 12).

While a human queue owns the conversation every message goes to the agents, and the bot
otherwise stays silent; but the commands README promises "at any time" still work:

- ``status`` always answers, whether the ticket waits in its queue or an agent has it;
- ``cancelar`` / ``cancel`` asks the customer to confirm closing the ticket; confirmed,
  the ticket is closed (it leaves its queue or its agent), agents are told, and the bot
  takes the conversation back;
- ``recomeçar`` / ``start over`` asks the same, then restarts with the greeting menu.

The confirmation is two choices remembered on the conversation; any other reply keeps
the ticket open and goes to the agents like every message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from bot import pending
from bot.commands import Command, detect, resolve_choice
from bot.events import Recorder
from bot.models import (
    Choice,
    Contact,
    Conversation,
    Direction,
    EventKind,
    InboundMessage,
    Message,
    Ticket,
)
from bot.ports import TicketChangeKind
from bot.store.base import ConversationStore, DeskStore
from bot.views import Views
from bot.workspaces import Workspaces
from flows.runner import Option

CLOSE = "ticket:close"
RESTART = "ticket:restart"
KEEP = "ticket:keep"
CONFIRMATIONS = (CLOSE, RESTART, KEEP)

TEXTS: Mapping[str, Mapping[str, str]] = {
    "confirm_cancel": {
        "pt-BR": "Quer mesmo encerrar o chamado {ticket}? A equipe deixará de atender esse pedido.",
        "en": "Do you really want to close ticket {ticket}? The team will stop working on it.",
    },
    "confirm_restart": {
        "pt-BR": "Para recomeçar, vou encerrar o chamado {ticket}. Confirma?",
        "en": "To start over, I'll close ticket {ticket}. Are you sure?",
    },
    "yes_close": {"pt-BR": "Sim, encerrar", "en": "Yes, close it"},
    "yes_restart": {"pt-BR": "Sim, recomeçar", "en": "Yes, start over"},
    "keep": {"pt-BR": "Não, manter aberto", "en": "No, keep it open"},
    "closed": {
        "pt-BR": "Pronto, encerrei o chamado {ticket}. Se precisar, é só escrever.",
        "en": "Done, ticket {ticket} is closed. Write any time you need us.",
    },
    "kept": {
        "pt-BR": "Combinado, o chamado {ticket} continua aberto.",
        "en": "All right, ticket {ticket} stays open.",
    },
}


def text(key: str, locale: str, **values: object) -> str:
    variants = TEXTS[key]
    template = variants.get(locale) or variants["pt-BR"]
    return template.format(**values) if values else template


class Host(Protocol):
    """The turn, as far as these commands need it."""

    conversation: Conversation
    contact: Contact
    inbound: InboundMessage
    message: Message

    @property
    def locale(self) -> str: ...

    async def send(self, text: str, options: Sequence[Option] = ()) -> None: ...

    async def ticket_status(self, number: int | None) -> None: ...

    async def start_flow(
        self, flow_id: str, variables: Mapping[str, str] | None = None
    ) -> None: ...


class TicketCommands:
    def __init__(
        self,
        desk: DeskStore,
        conversations: ConversationStore,
        recorder: Recorder,
        views: Views,
        workspaces: Workspaces,
        greeting_flow: str,
    ) -> None:
        self.desk = desk
        self.conversations = conversations
        self.recorder = recorder
        self.views = views
        self.workspaces = workspaces
        self.greeting_flow = greeting_flow

    async def relay(self, host: Host, ticket: Ticket) -> None:
        """A message while ``ticket`` owns the conversation: agents always get it; a
        command or a confirmation is also answered (see module doc)."""
        offered = host.conversation.pending_choices
        confirming = any(c.id in CONFIRMATIONS for c in offered)
        choice = (
            resolve_choice(host.inbound.text, host.inbound.choice_id, offered)
            if confirming
            else None
        )
        if confirming:
            host.conversation = replace(host.conversation, pending_choices=())
        if self.workspaces:  # a view costs store reads: only when someone listens
            view = await self.views.view(ticket)
            await self.workspaces.customer_message(view, host.message)
        if choice is not None:
            await self._confirmed(host, ticket, choice)
            return
        command = detect(host.inbound.text)
        if command is None:
            return
        if command.command is Command.STATUS:
            await host.ticket_status(command.number)
        elif command.command in (Command.CANCEL, Command.RESTART):
            restart = command.command is Command.RESTART
            locale = host.locale
            options = (
                Option(
                    RESTART if restart else CLOSE,
                    text("yes_restart" if restart else "yes_close", locale),
                ),
                Option(KEEP, text("keep", locale)),
            )
            question = "confirm_restart" if restart else "confirm_cancel"
            await host.send(text(question, locale, ticket=ticket.label), options)

    async def _confirmed(self, host: Host, ticket: Ticket, choice: Choice) -> None:
        locale = host.locale
        if choice.id == KEEP:
            await host.send(text("kept", locale, ticket=ticket.label))
            return
        now = host.inbound.received_at
        change = await self.desk.close_by_customer(ticket.id, now)
        if not change.ok or change.ticket is None:
            return  # an agent resolved it meanwhile: nothing left to close
        closed = change.ticket
        restart = choice.id == RESTART
        await pending.append_line(
            self.conversations,
            Message(
                id=f"{host.message.id}.closed",  # derived: a retried turn writes it once
                conversation_id=closed.conversation_id,
                direction=Direction.SYSTEM,
                text="Closed by the customer" + (" to start over" if restart else ""),
                at=now,
            ),
        )
        await self.recorder.record(
            EventKind.CLOSED_BY_CUSTOMER,
            conversation_id=closed.conversation_id,
            ticket_id=closed.id,
            tier=closed.tier,
            restart=restart,
        )
        host.conversation = replace(host.conversation, ticket_id=None, flow=None, failed_attempts=0)
        await host.send(text("closed", locale, ticket=closed.label))
        view = await self.views.view(closed)
        await self.workspaces.ticket_changed(view, TicketChangeKind.CLOSED_BY_CUSTOMER)
        if restart:
            await host.start_flow(self.greeting_flow)
