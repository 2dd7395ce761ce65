"""What agents see of a ticket, gathered once for every workspace."""

from __future__ import annotations

from bot.models import Ticket
from bot.ports import TicketView
from bot.store.base import ContactStore, ConversationStore
from bot.tiers import TierMap


class Views:
    def __init__(
        self,
        conversations: ConversationStore,
        contacts: ContactStore,
        tiers: TierMap,
        card_context_messages: int,
    ) -> None:
        self._conversations = conversations
        self._contacts = contacts
        self._tiers = tiers
        self._context = card_context_messages

    async def view(
        self,
        ticket: Ticket,
        *,
        actor: str | None = None,
        note: str = "",
        previous_tier: str | None = None,
        full_transcript: bool = False,
    ) -> TicketView:
        conversation = await self._conversations.get_conversation(ticket.conversation_id)
        if conversation is None:  # a ticket always belongs to a stored conversation
            raise LookupError(f"conversation {ticket.conversation_id} of {ticket.label} missing")
        contact = await self._contacts.get_contact(conversation.contact_id)
        limit = None if full_transcript else self._context
        transcript = await self._conversations.transcript(conversation.id, limit=limit)
        return TicketView(
            ticket=ticket,
            tier=self._tiers.tier(ticket.tier),
            conversation=conversation,
            contact=contact,
            transcript=transcript,
            actor=actor,
            note=note,
            previous_tier=previous_tier,
        )
