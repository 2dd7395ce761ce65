"""Reading a CSAT answer the way customers write it (issue 12).

After a resolution we ask "from 1 to 5". People answer "5", "nota 4!", "five",
"cinco", "⭐⭐⭐⭐", "👍", "4 - demorou mas resolveu". :func:`parse` reads:

- the first number written anywhere in the reply ("nota 4", "4/5", "dou 5"): 1 to 5 is
  a score; any other number ("7", "10", "0") is *out of range*;
- number words: um/uma, dois/duas, três, quatro, cinco; one, two, three, four, five;
- stars: the count of ⭐ / ★ ("⭐⭐⭐" is 3; more than 5 is out of range);
- thumbs: 👍 is 5, 👎 is 1.

A reply that gives no score is asked once more; a second miss ends the survey with a
polite word, and a CSAT reply never opens a ticket. A reply that is plainly a new
request (three or more meaningful words, two in a question, no score, not small talk)
ends the survey
silently and is handled as a new message. After a low score (1 or 2) the customer may
add a comment: the next message, unless it is small talk or low information, is
recorded on the ticket (a ``csat.comment`` event and a system line in the transcript,
:data:`COMMENT_MAX` characters).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bot import i18n, pending, smalltalk
from bot.commands import detect
from bot.events import Recorder
from bot.models import (
    Choice,
    Conversation,
    Direction,
    EventKind,
    InboundMessage,
    Message,
)
from bot.ports import TicketChangeKind
from bot.store.base import ConversationStore, DeskStore
from bot.views import Views
from bot.workspaces import Workspaces
from flows.runner import Option
from kb.lowinfo import is_low_information
from kb.normalize import STOP_WORDS, fold

LOW_SCORE = 2
COMMENT_MAX = 1000
#: Meaningful words from which a reply without a score is a new request, not an answer.
NEW_REQUEST_WORDS = 3
#: Choice ids of the 1..5 buttons: ``csat:4``.
CHOICE = i18n.CSAT_CHOICE

NUMBER_WORDS: Mapping[str, int] = {
    "um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "zero": 0, "seis": 6, "sete": 7, "oito": 8, "nove": 9, "dez": 10,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
ARTICLES = frozenset({"um", "uma", "one"})
SCORE_WORDS = frozenset({"nota", "dou", "score", "give", "rate", "rating"})
_NUMBER = re.compile(r"\d+")
_STARS = re.compile(r"[⭐★🌟]")


class Read(enum.Enum):
    SCORE = "score"
    OUT_OF_RANGE = "out_of_range"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Answer:
    read: Read
    score: int | None = None


def parse(text: str) -> Answer:
    """What ``text`` says as a CSAT answer (see module doc)."""
    numbers = _NUMBER.findall(text)
    if numbers:
        return _ranged(int(numbers[0]))
    stars = len(_STARS.findall(text))
    if stars:
        return _ranged(stars)
    if "👍" in text:
        return Answer(Read.SCORE, 5)
    if "👎" in text:
        return Answer(Read.SCORE, 1)
    words = fold(text).split()
    for i, word in enumerate(words):
        if word not in NUMBER_WORDS:
            continue
        # "um", "uma" and "one" are articles too: "foi uma ótima ajuda" gives no score
        if word in ARTICLES and len(words) > 2 and (i == 0 or words[i - 1] not in SCORE_WORDS):
            continue
        return _ranged(NUMBER_WORDS[word])
    return Answer(Read.NOTHING)


def _ranged(value: int) -> Answer:
    return Answer(Read.SCORE, value) if 1 <= value <= 5 else Answer(Read.OUT_OF_RANGE)


TEXTS: Mapping[str, Mapping[str, str]] = {
    "out_of_range": {
        "pt-BR": "A nota vai de 1 (muito insatisfeito) a 5 (muito satisfeito). Qual nota você dá?",
        "en": "The score goes from 1 (very unsatisfied) to 5 (very satisfied). What score do you give?",
    },
    "dropped": {
        "pt-BR": "Tudo bem, sem problemas! Obrigado pelo contato. Se precisar, é só escrever.",
        "en": "No problem at all! Thanks for reaching out. Write any time you need us.",
    },
    "ask_comment": {
        "pt-BR": (
            "Sinto muito que não foi uma boa experiência. Se quiser, conte em uma mensagem "
            "o que podemos melhorar."
        ),
        "en": "I'm sorry it wasn't a good experience. If you like, tell us in one message what we could do better.",
    },
    "comment_thanks": {
        "pt-BR": "Obrigado, registrei seu comentário no chamado.",
        "en": "Thank you, your comment is on the ticket.",
    },
}


def text(key: str, locale: str) -> str:
    variants = TEXTS[key]
    return variants.get(locale) or variants["pt-BR"]


class Host(Protocol):
    """The turn, as far as the survey needs it."""

    conversation: Conversation
    inbound: InboundMessage
    message: Message

    @property
    def locale(self) -> str: ...

    async def send(self, text: str, options: Sequence[Option] = ()) -> None: ...


def options(locale: str) -> tuple[Option, ...]:
    """The 1..5 buttons of the CSAT question."""
    return tuple(Option(c.id, c.label) for c in i18n.csat_choices(locale))


def says_something_else(message: str) -> bool:
    """A reply that is a new request rather than an answer to the survey: three or more
    meaningful words (two in a question), no score, no small talk ("meu pedido novo não
    chegou", "qual o prazo de entrega?")."""
    words = [w for w in fold(message).split() if w not in STOP_WORDS]
    enough = NEW_REQUEST_WORDS - (1 if "?" in message else 0)  # a question asks something
    return len(words) >= enough and smalltalk.classify(message) is None


class Survey:
    """The CSAT question's answers, and the optional comment after a low score."""

    def __init__(
        self,
        desk: DeskStore,
        conversations: ConversationStore,
        recorder: Recorder,
        views: Views,
        workspaces: Workspaces,
    ) -> None:
        self.desk = desk
        self.conversations = conversations
        self.recorder = recorder
        self.views = views
        self.workspaces = workspaces

    async def comment(self, host: Host) -> bool:
        """The message after a low score: a comment for the ticket unless it is small
        talk or low information ("não", "obrigado"). True when it was taken as one."""
        ticket_id = host.conversation.csat_comment_ticket_id
        assert ticket_id is not None
        host.conversation = replace(host.conversation, csat_comment_ticket_id=None)
        message = host.inbound.text.strip()
        if (
            not message
            or smalltalk.classify(message) is not None
            or is_low_information(message)
            or detect(message) is not None
        ):
            return False
        comment = message[:COMMENT_MAX]
        await pending.append_line(
            self.conversations,
            Message(
                # derived from the customer's line: a retried turn writes it once
                id=f"{host.message.id}.csat",
                conversation_id=host.conversation.id,
                direction=Direction.SYSTEM,
                text=f"CSAT comment: {comment}",
                at=host.inbound.received_at,
            ),
        )
        await self.recorder.record(
            EventKind.CSAT_COMMENT,
            conversation_id=host.conversation.id,
            ticket_id=ticket_id,
            text=comment,
        )
        await host.send(text("comment_thanks", host.locale))
        return True

    async def answer(self, host: Host, choice: Choice | None) -> bool:
        """Read the CSAT answer. True when the message was about the survey (a score,
        a re-ask, the polite end); False when it is a new request to handle as usual."""
        conversation = host.conversation
        ticket_id = conversation.csat_ticket_id
        assert ticket_id is not None
        if choice is not None and choice.id.startswith(CHOICE):
            read = Answer(Read.SCORE, int(choice.id.removeprefix(CHOICE)))
        else:
            read = parse(host.inbound.text)
        if read.read is Read.SCORE and read.score is not None:
            await self._record(host, ticket_id, read.score)
            return True
        if read.read is Read.NOTHING and (
            detect(host.inbound.text) is not None or says_something_else(host.inbound.text)
        ):
            # Not an answer but a command or the next problem: the survey ends quietly.
            host.conversation = replace(conversation, csat_ticket_id=None, csat_retries=0)
            await self.recorder.record(
                EventKind.CSAT_DROPPED, conversation_id=conversation.id, ticket_id=ticket_id
            )
            return False
        if conversation.csat_retries == 0:
            host.conversation = replace(conversation, csat_retries=1)
            key = "out_of_range" if read.read is Read.OUT_OF_RANGE else None
            question = text(key, host.locale) if key else i18n.text("csat_retry", host.locale)
            await host.send(question, options(host.locale))
            return True
        # Asked twice: thank them and stop asking; never a ticket (issue 12).
        host.conversation = replace(conversation, csat_ticket_id=None, csat_retries=0)
        await self.recorder.record(
            EventKind.CSAT_DROPPED, conversation_id=conversation.id, ticket_id=ticket_id
        )
        await host.send(text("dropped", host.locale))
        return True

    async def _record(self, host: Host, ticket_id: str, score: int) -> None:
        change = await self.desk.record_csat(ticket_id, score)
        low = score <= LOW_SCORE and change.ok
        host.conversation = replace(
            host.conversation,
            csat_ticket_id=None,
            csat_retries=0,
            csat_comment_ticket_id=ticket_id if low else None,
        )
        tier = change.ticket.tier if change.ticket else None
        await self.recorder.record(
            EventKind.CSAT_RECORDED,
            conversation_id=host.conversation.id,
            ticket_id=ticket_id,
            score=score,
            tier=tier,
        )
        await host.send(i18n.text("csat_thanks", host.locale))
        if low:
            await host.send(text("ask_comment", host.locale))
        if change.ticket is not None:
            view = await self.views.view(change.ticket)
            await self.workspaces.ticket_changed(view, TicketChangeKind.CSAT)
