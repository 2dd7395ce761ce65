"""Pure Block Kit builders for ticket cards and the escalation modal, and the mrkdwn
escaping that keeps customer text inert.

Customer text is data (DESIGN.md, "Security and data"): every piece of it goes
through :func:`escape` before it reaches a block or a ``text`` field, so ``<!channel>``,
``<@U…>`` and ``<https://…|…>`` arrive as literal characters, never as pings or links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from bot.models import Direction, Message, Ticket, TicketState, Tier
from bot.ports import TicketChangeKind, TicketView

Block = dict[str, Any]

CLAIM = "escala_claim"
ESCALATE = "escala_escalate"
RESOLVE = "escala_resolve"
RELEASE = "escala_release"
ACTIONS = (CLAIM, ESCALATE, RESOLVE, RELEASE)
ESCALATE_VIEW = "escala_escalate_view"
TIER_BLOCK, TIER_INPUT = "tier", "tier"
REASON_BLOCK, REASON_INPUT = "reason", "reason"

#: Slack refuses a section text over 3000 characters.
SECTION_LIMIT = 3000
LINE_LIMIT = 400


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to (``&`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def plain(text: str) -> str:
    """An agent's Slack message as plain text for the customer: ``<url|label>`` becomes
    ``label (url)``, mentions lose their brackets, entities are decoded."""

    def link(found: re.Match[str]) -> str:
        target, label = found.group(1), found.group(2)
        if target.startswith(("@", "#", "!")):
            return label or target
        return f"{label} ({target})" if label and label != target else target

    decoded = _LINK.sub(link, text)
    return decoded.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mask(address: str) -> str:
    """The last 4 characters of a customer address (phone number, chat id)."""
    return "…" + address[-4:] if len(address) > 4 else "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(message: Message) -> str:
    if message.direction is Direction.INBOUND:
        return "customer"
    if message.direction is Direction.NOTE:
        return f"note by {message.author}" if message.author else "note"
    if message.direction is Direction.AGENT:
        return message.author or "agent"
    return message.direction.value


def transcript_text(transcript: Sequence[Message]) -> str:
    """The latest transcript lines that fit in one section, oldest first."""
    lines: list[str] = []
    size = 0
    for message in reversed(transcript):
        line = f"*{escape(_who(message))}:* {escape(_clip(message.text, LINE_LIMIT))}"
        if size + len(line) + 1 > SECTION_LIMIT - 40:
            lines.append(f"_… {len(transcript) - len(lines)} earlier lines_")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(reversed(lines)) or "_(no messages)_"


def _status(view: TicketView, change: TicketChangeKind | None, assignee: str | None) -> str:
    t = view.ticket
    actor = escape(view.actor or "someone")
    if change is TicketChangeKind.ESCALATED:
        return (
            f":arrow_up: Escalated {view.previous_tier} → {t.tier} by {actor}: {escape(view.note)}"
        )
    if t.state is TicketState.QUEUED:
        released = f" (released by {actor})" if change is TicketChangeKind.RELEASED else ""
        if change is TicketChangeKind.ROUTED:
            released = f" (routed by {actor}: {escape(view.note)})"
        if t.offered_to:
            who = f"<@{assignee}>" if assignee else escape(t.offered_to)
            released += f" · offered to {who}: Claim to accept"
        return f":hourglass: Waiting in the {t.tier} queue{released}"
    if t.state is TicketState.ASSIGNED:
        who = f"<@{assignee}>" if assignee else escape(t.assignee or actor)
        return f":raising_hand: Claimed by {who}"
    if change is TicketChangeKind.CLOSED_BY_CUSTOMER:
        return ":no_entry_sign: Closed by the customer"
    score = f" · CSAT {t.csat}/5 " + ":star:" * t.csat if t.csat is not None else ""
    return f":white_check_mark: Resolved by {actor}{score}"


def _button(text: str, action_id: str, ticket: Ticket, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": str(ticket.number),
    }
    if style:
        button["style"] = style
    return button


def _buttons(ticket: Ticket, change: TicketChangeKind | None) -> list[Block]:
    if change is TicketChangeKind.ESCALATED or ticket.state in (
        TicketState.RESOLVED,
        TicketState.CLOSED,
    ):
        return []  # this card is history: the ticket lives on another card, or is done
    if ticket.state is TicketState.QUEUED:
        return [_button("Claim", CLAIM, ticket, "primary"), _button("Escalate", ESCALATE, ticket)]
    return [
        _button("Resolve", RESOLVE, ticket, "primary"),
        _button("Escalate", ESCALATE, ticket),
        _button("Release", RELEASE, ticket),
    ]


def card_text(view: TicketView) -> str:
    """The notification text of a card (what a phone or screen reader shows)."""
    t = view.ticket
    return f"Ticket {t.label} in {t.tier} ({t.priority.label})"


def card(
    view: TicketView, change: TicketChangeKind | None = None, assignee: str | None = None
) -> list[Block]:
    """A ticket card. ``assignee`` is the Slack user id of the agent who has it."""
    t = view.ticket
    conversation = view.conversation
    # An escalated card stays in its old tier's channel: it keeps that tier's name.
    tier = view.previous_tier if change is TicketChangeKind.ESCALATED else t.tier
    flags = " · :lock: private" if t.private else ""
    fields = [
        f"*Priority:* {t.priority.label}{flags}",
        f"*Tier:* {tier}",
        f"*Channel:* {escape(conversation.channel)}",
        f"*Customer:* {escape(mask(conversation.address))}",
    ]
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Ticket {t.label} · {tier}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if view.previous_tier and change is None:
        origin = f"*Escalated from {view.previous_tier}* by {escape(view.actor or 'an agent')}"
        blocks.append(_section(f"{origin}: {escape(view.note)}"))
    if t.reasons:
        reasons = "\n".join(f"• {escape(reason)}" for reason in t.reasons)
        blocks.append(_section(f"*Why:*\n{reasons}"))
    blocks.append(_section(f"*Conversation:*\n{transcript_text(view.transcript)}"))
    status = [{"type": "mrkdwn", "text": _status(view, change, assignee)}]
    if change is TicketChangeKind.SLA_BREACHED:
        status.append({"type": "mrkdwn", "text": f"⚠ {escape(view.note)}"})
    blocks.append({"type": "context", "elements": status})
    buttons = _buttons(t, change)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"ticket_{t.number}", "elements": buttons})
    return blocks


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}}


def overdue_line(view: TicketView, assignee: str | None = None) -> str:
    """The SLA warning in a card's thread. ``<!here>`` on purpose: this is our own text,
    and the point is that the agents active in the tier's channel see it now."""
    t = view.ticket
    promise = view.tier.first_response_minutes
    if t.state is TicketState.ASSIGNED and t.assignee:  # a claim is no answer (issue 13)
        owner = f"<@{assignee}>" if assignee else escape(t.assignee)
        todo = f"{owner} holds it: reply, or release it."
    else:
        todo = "Claim it or escalate."
    return (
        f":warning: <!here> {t.label} in {t.tier}: {escape(view.note)}, "
        f"the promise is {promise} min. {todo}"
    )


def offer_line(view: TicketView, user: str) -> str:
    """Automatic assignment pings the agent a ticket is offered to (issue 13)."""
    return (
        f":inbox_tray: <@{user}> {view.ticket.label} is offered to you: press Claim to take it,"
        " or it goes to the next agent."
    )


def customer_line(message: Message) -> str:
    """A customer message as a thread reply."""
    return f"*customer:* {escape(message.text)}"


def escalate_modal(
    ticket: Ticket, tiers: Sequence[Tier], suggested: str | None, metadata: dict[str, str]
) -> Block:
    """The modal asking where to escalate and why. ``metadata`` returns on submission."""
    options = [
        {
            "text": {"type": "plain_text", "text": f"{t.name} — {t.description}"[:75]},
            "value": t.name,
        }
        for t in tiers
        if t.name != ticket.tier
    ]
    select: Block = {"type": "static_select", "action_id": TIER_INPUT, "options": options}
    initial = next((o for o in options if o["value"] == suggested), None)
    if initial is not None:
        select["initial_option"] = initial
    return {
        "type": "modal",
        "callback_id": ESCALATE_VIEW,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": f"Escalate {ticket.label}"},
        "submit": {"type": "plain_text", "text": "Escalate"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": TIER_BLOCK,
                "label": {"type": "plain_text", "text": "To tier"},
                "element": select,
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason (shown to the next tier)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 1000,
                },
            },
        ],
    }
