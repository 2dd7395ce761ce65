"""Ticket status is private: a short access code per ticket (issue 12).

Ticket numbers are short, human and sequential, so anyone can guess one: before issue
12, ``status 1081`` from another account told the queue and place of someone else's
private billing ticket. Now:

- the handoff confirmation gives the ticket's code with its number (``#1042, código
  K7P2``): 4 characters from an alphabet without look-alikes (no 0/O, 1/I/L);
- ``status 1042`` from the contact whose conversation owns the ticket answers as before;
- from anyone else it needs the code (``status 1042 K7P2``, any case); without the right
  code the answer is the same whether ticket 1042 exists or not, so it reveals nothing
  about any ticket, and a ``ticket.status_refused`` event is recorded.

The code is derived from the ticket's internal id, which is random (``UuidIds``) and
never shown to customers: nothing extra to store, and the same code on every process.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from bot.models import Contact, Conversation, Ticket
from bot.store.base import ConversationStore

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 4
_TOKEN = re.compile(rf"\b[A-Za-z0-9]{{{LENGTH}}}\b")

TEXTS: Mapping[str, Mapping[str, str]] = {
    "locked": {
        "pt-BR": (
            "Para consultar o chamado {ticket} preciso também do código de acesso que "
            "enviamos quando ele foi aberto. Escreva, por exemplo: status {number} K7P2."
        ),
        "en": (
            "To look up ticket {ticket} I also need the access code we sent when it was "
            "opened. Type, for example: status {number} K7P2."
        ),
    },
    "code_label": {"pt-BR": "código", "en": "code"},
}


def access_code(ticket: Ticket) -> str:
    """The ticket's access code (see module doc)."""
    digest = hashlib.blake2b(ticket.id.encode(), digest_size=8, person=b"escala-code").digest()
    value = int.from_bytes(digest, "big")
    chars = []
    for _ in range(LENGTH):
        value, index = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


def text(key: str, locale: str, **values: object) -> str:
    variants = TEXTS[key]
    template = variants.get(locale) or variants["pt-BR"]
    return template.format(**values) if values else template


def code_given(message: str, ticket: Ticket) -> bool:
    """Whether ``message`` carries ``ticket``'s code (as a word of its own, any case)."""
    expected = access_code(ticket)
    return any(hmac.compare_digest(token.upper(), expected) for token in _TOKEN.findall(message))


async def may_see(
    conversations: ConversationStore,
    ticket: Ticket,
    contact: Contact,
    current: Conversation,
    message: str,
) -> bool:
    """Whether the customer who wrote ``message`` may hear ``ticket``'s status: it is
    their own conversation's ticket, or the message gives its code."""
    if ticket.conversation_id == current.id:
        return True
    owner = await conversations.get_conversation(ticket.conversation_id)
    if owner is not None and owner.contact_id == contact.id:
        return True
    return code_given(message, ticket)
