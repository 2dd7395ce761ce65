"""The Slack agent workspace: ticket cards in each tier's channel, customer messages
in the card's thread, cards updated as tickets change.

Where a card lives is kept in the store (``set_link``), not in this object, so every
router process agrees on it: ``slack:card:<ticket id>`` → ``channel ts`` of the
ticket's current card, ``slack:thread:<channel>:<ts>`` → ticket number.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.edge import WorkspacePort
from bot.models import EventKind, Message, Ticket, TicketState
from bot.ports import TicketChangeKind, TicketView
from channels.slack import blocks
from channels.slack.config import SlackConfig

log = logging.getLogger(__name__)

#: Links live as long as a ticket may be worked and its CSAT may come back.
CARD_KEY = "slack:card:{ticket_id}"
THREAD_KEY = "slack:thread:{channel}:{ts}"
#: The timer that posts a failed card again: ``slack-card:<ticket id>:<tier>:<attempt>``.
CARD_TIMER = "slack-card"


def web_client(
    token: str,
    *,
    base_url: str | None = None,
    interval: RetryIntervalCalculator | None = None,
) -> AsyncWebClient:
    """A Web API client that retries 429s (after ``Retry-After``), connection errors
    and 500/503s (exponential back-off with jitter by default), so one Slack hiccup
    does not lose a card."""
    interval = interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
    handlers = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
    ]
    if base_url is None:
        return AsyncWebClient(token=token, retry_handlers=handlers)
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=handlers)


class SlackWorkspace:
    """Implements :class:`bot.ports.AgentWorkspace`. Holds the SDK client as an
    attribute; errors propagate to :class:`bot.outbox.Workspaces`, which records them
    (``delivery.failed``) while the ticket stays safe in its queue."""

    def __init__(self, client: AsyncWebClient, config: SlackConfig, port: WorkspacePort) -> None:
        self.client = client
        self.config = config
        self.port = port
        port.on_timer(CARD_TIMER, self.repost_card)

    # -- links --------------------------------------------------------------------------

    async def card_of(self, ticket_id: str) -> tuple[str, str] | None:
        """``(channel, ts)`` of the ticket's current card."""
        value = await self.port.recall(CARD_KEY.format(ticket_id=ticket_id))
        if not value:
            return None
        channel, _, ts = value.partition(" ")
        return channel, ts

    async def ticket_of_thread(self, channel: str, ts: str) -> int | None:
        value = await self.port.recall(THREAD_KEY.format(channel=channel, ts=ts))
        return int(value) if value and value.isdigit() else None

    # -- AgentWorkspace -----------------------------------------------------------------

    async def ticket_opened(self, view: TicketView) -> None:
        try:
            await self._post_card(view)
        except Exception as e:
            # The ticket is safe in its queue; the card comes later (or an event says why
            # not), and the error still reaches Workspaces, which records it.
            await self._card_later(view.ticket, 1, e)
            raise

    async def repost_card(self, key: str) -> None:
        """The ``slack-card:<key>`` timer: post the card of a ticket that has none in its
        tier's channel yet. Nothing to do when the ticket moved on meanwhile (another
        tier, resolved) or a card got there."""
        rest, _, attempt = key.rpartition(":")
        ticket_id, _, tier = rest.partition(":")
        ticket = await self.port.ticket(ticket_id)
        if (
            ticket is None
            or ticket.tier != tier
            or ticket.state not in (TicketState.QUEUED, TicketState.ASSIGNED)
        ):
            return
        found = await self.card_of(ticket.id)
        if found is not None and found[0] == self.config.channel_for(tier, ticket.private):
            return
        previous_tier, actor, reason = await self._escalated_into(ticket)
        view = await self.port.view(
            ticket, full_transcript=True, actor=actor, note=reason, previous_tier=previous_tier
        )
        assignee = self.config.slack_user(ticket.assignee) if ticket.assignee else None
        try:
            await self._post_card(view, assignee)
        except Exception as e:
            await self._card_later(ticket, int(attempt) + 1, e)
            return
        log.info("card of %s posted on retry %s", ticket.label, attempt)

    async def _escalated_into(self, ticket: Ticket) -> tuple[str | None, str | None, str]:
        """(from tier, by whom, why) of the escalation that brought the ticket to its
        tier, from its events, so a card posted late still says where it came from."""
        if len(ticket.tier_history) < 2:
            return None, None, ""
        for event in reversed(await self.port.events(ticket_id=ticket.id)):
            if event.kind == EventKind.ESCALATED and event.data.get("to_tier") == ticket.tier:
                data = event.data
                actor = data.get("agent_name") or data.get("agent")
                return (
                    str(data.get("from_tier") or "") or None,
                    None if actor is None else str(actor),
                    str(data.get("reason") or ""),
                )
        return None, None, ""

    async def _card_later(self, ticket: Ticket, attempt: int, error: Exception) -> None:
        waits = self.config.card_retry_minutes
        if attempt <= len(waits):
            wait = waits[attempt - 1]
            log.warning(
                "Slack card of %s not posted (%s); retry %d in %g min",
                ticket.label,
                error,
                attempt,
                wait,
            )
            await self.port.schedule_in(
                CARD_TIMER, f"{ticket.id}:{ticket.tier}:{attempt}", timedelta(minutes=wait)
            )
            return
        log.error("Slack card of %s never posted; gave up: %s", ticket.label, error)
        await self.port.record(
            EventKind.WORKSPACE_GAVE_UP,
            conversation_id=ticket.conversation_id,
            ticket_id=ticket.id,
            workspace="slack",
            what="ticket card",
            tier=ticket.tier,
            attempts=attempt,
            reason=str(error),
        )

    async def _post_card(self, view: TicketView, assignee: str | None = None) -> None:
        ticket = view.ticket
        channel = self.config.channel_for(ticket.tier, ticket.private)
        if channel is None:  # config validation makes this a tier added after start-up
            raise LookupError(f"no Slack channel for tier {ticket.tier}")
        response = await self.client.chat_postMessage(
            channel=channel,
            text=blocks.card_text(view),
            blocks=blocks.card(view, None, assignee),
            unfurl_links=False,
            unfurl_media=False,
        )
        ts = str(response["ts"])
        posted_channel = str(response.get("channel") or channel)
        await self.port.remember(
            THREAD_KEY.format(channel=posted_channel, ts=ts), str(ticket.number)
        )
        await self.port.remember(CARD_KEY.format(ticket_id=ticket.id), f"{posted_channel} {ts}")

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        if change is TicketChangeKind.SLA_BREACHED:
            await self._overdue(view)
            return
        found = await self.card_of(view.ticket.id)
        if found is None:
            log.warning("no Slack card for %s; %s not shown", view.ticket.label, change.value)
            return
        channel, ts = found
        holder = view.ticket.assignee or view.ticket.offered_to
        assignee = self.config.slack_user(holder) if holder else None
        if change is TicketChangeKind.OFFERED and assignee:  # a ping: the offer is theirs
            await self.client.chat_postMessage(
                channel=channel, thread_ts=ts, text=blocks.offer_line(view, assignee)
            )
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=blocks.card_text(view),
            blocks=blocks.card(view, change, assignee),
        )

    async def _overdue(self, view: TicketView) -> None:
        """The first response is overdue: say so in the card's thread, pinging whoever
        is active in the tier's channel, and mark the card. Without a card (it could not
        be posted) the warning goes to the tier's channel itself: it must be seen."""
        ticket = view.ticket
        owner = ticket.assignee
        text = blocks.overdue_line(view, self.config.slack_user(owner) if owner else None)
        found = await self.card_of(ticket.id)
        channel = self.config.channel_for(ticket.tier, ticket.private)
        if found is None or found[0] != channel:  # no card in this tier's channel yet
            if channel is None:
                raise LookupError(f"no Slack channel for tier {ticket.tier}")
            await self.client.chat_postMessage(channel=channel, text=text)
            return
        channel, ts = found
        await self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text)
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=blocks.card_text(view),
            blocks=blocks.card(view, TicketChangeKind.SLA_BREACHED),
        )

    async def customer_message(self, view: TicketView, message: Message) -> None:
        found = await self.card_of(view.ticket.id)
        if found is None:
            raise LookupError(f"no Slack card for {view.ticket.label}")
        channel, ts = found
        await self.client.chat_postMessage(
            channel=channel,
            thread_ts=ts,
            text=blocks.customer_line(message),
            unfurl_links=False,
            unfurl_media=False,
        )

    # -- for the listeners ---------------------------------------------------------------

    async def tell(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """An ephemeral message only ``user`` sees (refusals, hints)."""
        if thread_ts:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts
            )
        else:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)

    async def permalink(self, ticket_id: str) -> str | None:
        found = await self.card_of(ticket_id)
        if found is None:
            return None
        response = await self.client.chat_getPermalink(channel=found[0], message_ts=found[1])
        link = response.get("permalink")
        return str(link) if link else None
