"""The two doors of the engine: customer channels and agent workspaces.

Adapters in ``channels/`` implement these protocols; the engine knows no provider.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.errors import DeliveryError
from bot.models import Contact, Conversation, Message, OutboundMessage, Ticket, Tier


class ChannelSender(Protocol):
    """Sends to one customer channel (Telegram, SMS, WhatsApp, console ...)."""

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        """Deliver ``message`` to ``address`` or raise :class:`~bot.errors.DeliveryError`.

        The sender renders choices its own way (buttons, numbered lines) and splits
        text at its channel's limit; retries of transient failures are its own job.
        """
        ...


#: Told how a queued send ended: None when the provider accepted every part, else
#: the final :class:`~bot.errors.DeliveryError` (a :class:`~bot.errors.DeliveryInterrupted`
#: when the sender stopped before trying: the reply is neither sent nor failed).
Done = Callable[[DeliveryError | None], Awaitable[None]]


@runtime_checkable
class QueueingSender(Protocol):
    """A sender that retries in the background (``channels.sending.RetryingSender``):
    the durable outbox hands it a reply and hears later how it ended, so a webhook
    never waits for a provider's retries."""

    async def enqueue(
        self, address: str, message: OutboundMessage, locale: str, done: Done
    ) -> None:
        """Queue ``message`` behind the address's earlier ones; ``done`` is called
        exactly once when it is delivered, finally failed, or interrupted."""
        ...


class TicketChangeKind(enum.StrEnum):
    CLAIMED = "claimed"
    RELEASED = "released"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CSAT = "csat"
    #: The customer closed the ticket themselves (``cancelar`` / ``recomeçar``, confirmed).
    CLOSED_BY_CUSTOMER = "closed_by_customer"
    #: Still waiting in its queue past the tier's first-response promise (``note``
    #: says for how long). Sent once per stay in a tier's queue.
    SLA_BREACHED = "sla_breached"
    #: Automatic assignment offers the queued ticket to ``actor`` (an agent id's name):
    #: they accept by claiming it.
    OFFERED = "offered"
    #: A router classified the ticket (``note`` says what changed) in its tier.
    ROUTED = "routed"


@dataclass(frozen=True)
class TicketView:
    """What an agent needs to see about a ticket, gathered once for every workspace."""

    ticket: Ticket
    tier: Tier
    conversation: Conversation
    contact: Contact | None
    transcript: Sequence[Message]
    #: The agent (display name) who caused the change, if any.
    actor: str | None = None
    #: Why (escalation reason ...), shown to agents.
    note: str = ""
    #: For an escalation: the tier it came from.
    previous_tier: str | None = None


class AgentWorkspace(Protocol):
    """Where agents see and work tickets (Slack, the local console)."""

    async def ticket_opened(self, view: TicketView) -> None:
        """A ticket entered a tier's queue (handoff, or escalation into a new tier)."""
        ...

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        """Claimed, released, escalated away, resolved, CSAT received, or the first
        response is overdue."""
        ...

    async def customer_message(self, view: TicketView, message: Message) -> None:
        """A customer wrote in a conversation a human queue owns."""
        ...
