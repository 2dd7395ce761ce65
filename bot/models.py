"""The domain model every layer shares.

Frozen dataclasses only: a change is a new value (``dataclasses.replace``), so the
store is the one place where state changes, and no provider type ever crosses into
``bot/``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypedDict, Unpack

from flows.position import FlowPosition

#: Locales Escala speaks to customers in. Brazilian Portuguese first.
LOCALES: tuple[str, ...] = ("pt-BR", "en")
DEFAULT_LOCALE = "pt-BR"

EMPTY: Mapping[str, Any] = MappingProxyType({})


def normalize_locale(value: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Map a provider language code (``pt``, ``pt-br``, ``en-US`` ...) to a locale we speak."""
    if not value:
        return default
    lowered = value.lower()
    if lowered.startswith("pt"):
        return "pt-BR"
    if lowered.startswith("en"):
        return "en"
    return default


class Priority(enum.IntEnum):
    """Ticket priority; a higher value is served first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @classmethod
    def parse(cls, value: str) -> Priority:
        return cls[value.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class TicketState(enum.StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """Queued or assigned: a human queue owns the conversation."""
        return self in (TicketState.QUEUED, TicketState.ASSIGNED)


class Direction(enum.StrEnum):
    """Who wrote a transcript line."""

    INBOUND = "inbound"  # the customer
    BOT = "bot"  # the bot, to the customer
    AGENT = "agent"  # a human agent, to the customer
    NOTE = "note"  # a private agent note, never sent to the customer
    SYSTEM = "system"  # a system line (escalation reason, delivery failure ...)


class Calendar(enum.StrEnum):
    """Which clock a promise runs on: business hours, or every minute of the week."""

    BUSINESS = "business"
    ALWAYS = "24x7"


class BreachAction(enum.StrEnum):
    """What happens when a promise is broken (issue 13), in this order when several."""

    #: Tell the agent workspaces (and record the breach).
    NOTIFY = "notify"
    #: One priority step up (up to urgent), so take-next serves it sooner.
    RAISE_PRIORITY = "raise_priority"
    #: A claimed ticket goes back to its queue (and is offered to the next agent).
    REASSIGN = "reassign"
    #: To the next tier's queue, with the reason "SLA breached".
    ESCALATE = "escalate"


#: The order breach actions run in: escalate last (it ends the stay in the tier).
BREACH_ORDER: tuple[BreachAction, ...] = tuple(BreachAction)


class Role(enum.StrEnum):
    """``router``: registers and routes (classify, pass on) without owning tickets;
    ``resolver``: claims and solves them."""

    RESOLVER = "resolver"
    ROUTER = "router"


class SkillMatch(enum.StrEnum):
    """How take-next uses skills: ``prefer`` serves matching tickets first, then any;
    ``strict`` serves only tickets whose skills the agent has."""

    PREFER = "prefer"
    STRICT = "strict"


class Availability(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Promise(enum.StrEnum):
    """The two promises of a tier."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class SlaTerms:
    """A routing rule's own promise, over its tier's (``None``: the tier's value).

    Carried on the ticket, and in force while the ticket is in the tier the rule sent
    it to; in another tier that tier's terms apply."""

    calendar: Calendar | None = None
    first_response_minutes: int | None = None
    resolution_minutes: int | None = None
    on_first_response_breach: tuple[BreachAction, ...] | None = None
    on_resolution_breach: tuple[BreachAction, ...] | None = None

    @property
    def empty(self) -> bool:
        return self == SlaTerms()


@dataclass(frozen=True)
class Tier:
    """A support tier and its promises: the expected time to a first human response
    and to resolution, counted on its calendar, and what a breach of each does."""

    name: str
    level: int
    first_response_minutes: int
    description: str = ""
    #: ``None``: no resolution promise.
    resolution_minutes: int | None = None
    calendar: Calendar = Calendar.BUSINESS
    on_first_response_breach: tuple[BreachAction, ...] = (BreachAction.NOTIFY,)
    on_resolution_breach: tuple[BreachAction, ...] = (BreachAction.NOTIFY,)
    #: Every agent of a ``router`` tier routes: classifies and passes tickets on.
    role: Role = Role.RESOLVER
    #: ``auto``: a ticket entering the queue is offered to one agent at a time.
    auto_assign: bool = False
    #: How long an offer waits to be accepted before it goes to the next agent.
    offer_seconds: int = 120
    skill_match: SkillMatch = SkillMatch.PREFER


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    tiers: tuple[str, ...]
    max_concurrent: int = 5
    skills: tuple[str, ...] = ()
    role: Role = Role.RESOLVER


class ConsoleRole(enum.StrEnum):
    """What a web console user may do; each role may do all the ones before it may."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def allows(self, needed: ConsoleRole) -> bool:
        order = (ConsoleRole.AGENT, ConsoleRole.SUPERVISOR, ConsoleRole.ADMIN)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class ConsoleUser:
    """Someone who logs in to the web console. ``password_hash`` is an Argon2 hash
    (never the password); ``agent_id`` links an agent login to a configured agent."""

    login: str
    password_hash: str = field(repr=False)
    role: ConsoleRole
    agent_id: str | None = None
    name: str = ""
    #: The UI language they chose; None: the browser's.
    locale: str | None = None


@dataclass(frozen=True)
class Identity:
    """How a contact is reached on one channel (telegram chat id, phone number ...)."""

    channel: str
    address: str


@dataclass(frozen=True)
class Contact:
    id: str
    identities: tuple[Identity, ...]
    locale: str = DEFAULT_LOCALE
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    #: The provider says we can no longer reach them (Telegram 403 ...).
    unreachable: bool = False
    #: They opted out (SMS STOP): nothing more is sent until they opt back in.
    opted_out: bool = False


@dataclass(frozen=True)
class Choice:
    """An option offered to the customer. ``id`` comes back when it is picked."""

    id: str
    label: str


@dataclass(frozen=True)
class Media:
    """Something other than text the customer sent: a photo, a voice note, a location ...

    Only what it is (``kind``: ``photo``, ``document``, ``media`` when the provider
    does not say) and its MIME type when known; never the provider's file URL or id,
    which need the channel's credentials to open.
    """

    kind: str
    content_type: str = ""


class CarrierKeyword(enum.StrEnum):
    """A carrier keyword the channel recognised (SMS/WhatsApp STOP, START, HELP)."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def media_label(media: tuple[Media, ...]) -> str:
    """How media reads in a transcript: ``[photo]``, ``[document: application/pdf]``,
    ``[2 media files: image/jpeg, application/pdf]``."""
    if len(media) == 1 and media[0].kind != "media":
        only = media[0]
        return f"[{only.kind}: {only.content_type}]" if only.content_type else f"[{only.kind}]"
    types = ", ".join(m.content_type or m.kind for m in media)
    noun = "media file" if len(media) == 1 else "media files"
    return f"[{len(media)} {noun}: {types}]"


def media_data(media: tuple[Media, ...]) -> dict[str, Any]:
    """What an event says about media a customer sent (never a provider URL)."""
    kinds = {m.kind for m in media}
    return {
        "media": kinds.pop() if len(kinds) == 1 else "mixed",
        "count": len(media),
        "types": [m.content_type for m in media if m.content_type],
    }


@dataclass(frozen=True)
class InboundMessage:
    """What a channel adapter hands the engine: channel-neutral, provider-free.

    ``choice_id`` is set when the customer pressed a button (Telegram callback,
    Slack action); typed replies (``2``, an option's text) are resolved by the engine.
    ``media``: what came besides ``text`` (which may then be empty). ``keyword``: a
    carrier keyword the channel recognised in ``text``. ``attributes``: contact
    attributes the channel learned with this message (a Telegram deep-link payload).
    ``locale_known``: False when the channel cannot tell the customer's language (SMS,
    WhatsApp): ``locale`` is then its configured default, and the engine follows the
    language the customer writes in (:mod:`bot.language`).
    """

    channel: str
    address: str
    text: str
    provider_message_id: str
    received_at: datetime
    locale: str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    choice_id: str | None = None
    name: str = ""
    media: tuple[Media, ...] = ()
    keyword: CarrierKeyword | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    locale_known: bool = True

    @property
    def transcript_text(self) -> str:
        """The text as agents read it: the customer's words, then what media came."""
        if not self.media:
            return self.text
        label = media_label(self.media)
        return f"{self.text}\n{label}" if self.text.strip() else label


@dataclass(frozen=True)
class OutboundMessage:
    """What the engine asks a channel to send. Choices degrade per channel."""

    text: str
    choices: tuple[Choice, ...] = ()


class ConversationChanges(TypedDict, total=False):
    """The fields :meth:`Conversation.changed` may set: :class:`Conversation`'s, with
    their types (``tests/unit/test_models.py`` keeps the two lists equal)."""

    id: str
    contact_id: str
    channel: str
    address: str
    locale: str
    created_at: datetime
    updated_at: datetime
    ticket_id: str | None
    last_ticket_id: str | None
    flow: FlowPosition | None
    pending_choices: tuple[Choice, ...]
    failed_attempts: int
    tags: tuple[str, ...]
    csat_ticket_id: str | None
    csat_retries: int
    csat_comment_ticket_id: str | None


@dataclass(frozen=True)
class Conversation:
    """One customer on one channel address. The ticket, if any, says who owns it."""

    id: str
    contact_id: str
    channel: str
    address: str
    locale: str
    created_at: datetime
    updated_at: datetime
    #: The open (queued or assigned) ticket, if a human queue owns the conversation.
    ticket_id: str | None = None
    #: The last ticket, kept after it is resolved for status questions and CSAT.
    last_ticket_id: str | None = None
    flow: FlowPosition | None = None
    #: Choices offered in the last bot message, so ``2`` or a label resolves to one.
    pending_choices: tuple[Choice, ...] = ()
    failed_attempts: int = 0
    tags: tuple[str, ...] = ()
    #: Ticket whose CSAT answer we are waiting for, and how many invalid answers so far.
    csat_ticket_id: str | None = None
    csat_retries: int = 0
    #: Ticket that got a low CSAT score: the next message may be a comment on it.
    csat_comment_ticket_id: str | None = None

    def changed(self, **changes: Unpack[ConversationChanges]) -> Conversation:
        """``dataclasses.replace(self, **changes)``, at a sixth of its cost (issue 18: a
        turn changes its conversation about six times, ~5 µs each through ``replace``,
        which reads every field by name and runs the frozen ``__init__``). Equivalent
        because the class has no ``__post_init__`` and no field with ``init=False``;
        mypy checks the names and types of ``changes`` as it does ``replace``'s."""
        new = object.__new__(Conversation)
        fields = vars(new)
        fields.update(vars(self))
        fields.update(changes)
        return new

    @property
    def ticket_in_view(self) -> str | None:
        """The ticket what is sent now concerns: the open one, else the resolved one
        whose CSAT we wait for (its "resolved" message and CSAT question)."""
        return self.ticket_id or self.csat_ticket_id


@dataclass(frozen=True)
class Message:
    """A transcript line."""

    id: str
    conversation_id: str
    direction: Direction
    text: str
    at: datetime
    author: str = ""
    provider_message_id: str = ""


@dataclass(frozen=True)
class TriageDecision:
    """Where a conversation goes and why. ``reasons`` are shown to agents."""

    tier: str
    priority: Priority
    skills: tuple[str, ...]
    private: bool
    reasons: tuple[str, ...]
    rule: str | None = None
    #: True when a rule says "hand off now" (a complex or urgent problem).
    handoff: bool = False
    #: The rule's own promise, over the tier's.
    terms: SlaTerms = SlaTerms()


@dataclass(frozen=True)
class Ticket:
    id: str
    number: int
    conversation_id: str
    tier: str
    priority: Priority
    state: TicketState
    created_at: datetime
    #: When it entered its current queue (age in queue orders take-next).
    queued_at: datetime
    skills: tuple[str, ...] = ()
    private: bool = False
    reasons: tuple[str, ...] = ()
    assignee: str | None = None
    first_response_at: datetime | None = None
    #: The last agent reply (``first_response_at`` is the first one ever).
    replied_at: datetime | None = None
    resolved_at: datetime | None = None
    #: Tiers this ticket has been in, oldest first.
    tier_history: tuple[str, ...] = ()
    csat: int | None = None
    #: The routing rule's promise (in force in the rule's tier, ``tier_history[0]``).
    terms: SlaTerms = SlaTerms()
    #: Breach actions already taken, ``<promise>:<tier>:<queued_at>:<action>``: each
    #: is taken once per stay in a queue (the store checks and adds it atomically).
    breaches: tuple[str, ...] = ()
    #: The agent this queued ticket is offered to (automatic assignment), if any.
    offered_to: str | None = None
    #: Agents offered this ticket during its stay in the current queue, oldest first.
    offers: tuple[str, ...] = ()
    #: The transcript id of the customer message whose turn opened it (a handoff), so a
    #: provider's retry of that message finishes the same handoff instead of opening a
    #: second ticket or being relayed as a new message (issue 11).
    opened_by: str | None = None

    @property
    def label(self) -> str:
        return f"#{self.number}"


@dataclass(frozen=True)
class OutboxItem:
    """A reply decided and stored, waiting for its channel to accept it (issue 11).

    Written in the same atomic store step as the turn that decided it; removed only
    once the provider accepted it or it finally failed (``delivery.failed``).
    """

    id: str
    conversation_id: str
    channel: str
    address: str
    locale: str
    text: str
    choices: tuple[Choice, ...] = ()
    #: The transcript line it is (None for a notice kept out of the transcript).
    message_id: str | None = None
    ticket_id: str | None = None
    created_at: datetime | None = None

    @property
    def outbound(self) -> OutboundMessage:
        return OutboundMessage(self.text, self.choices)


@dataclass(frozen=True)
class Event:
    """An append-only record of a state change; KPIs and reports come from events."""

    id: str
    kind: str
    at: datetime
    conversation_id: str | None = None
    ticket_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


class EventKind(enum.StrEnum):
    #: A customer's data was erased on request (``escala forget``): counts only.
    CONTACT_ERASED = "contact.erased"
    MESSAGE_IN = "message.in"
    KB_ANSWERED = "kb.answered"
    KB_SUGGESTED = "kb.suggested"
    KB_MISSED = "kb.missed"
    FLOW_STARTED = "flow.started"
    FLOW_ENDED = "flow.ended"
    TRIAGED = "triage.decided"
    HANDOFF = "ticket.opened"
    CLAIMED = "ticket.claimed"
    RELEASED = "ticket.released"
    ESCALATED = "ticket.escalated"
    AGENT_REPLY = "ticket.agent_reply"
    NOTE = "ticket.note"
    RESOLVED = "ticket.resolved"
    #: A queued ticket passed its tier's first-response promise with no agent reply.
    SLA_BREACHED = "ticket.sla_breached"
    #: A breach policy raised the ticket's priority (``promise``, ``from``, ``to``).
    PRIORITY_RAISED = "ticket.priority_raised"
    #: A breach policy took a claimed ticket from its owner, back to the queue.
    REASSIGNED = "ticket.reassigned"
    #: A router classified a ticket (tier, skills, priority, private) and passed it on.
    ROUTED = "ticket.routed"
    #: Automatic assignment offered a queued ticket to an agent.
    OFFERED = "ticket.offered"
    #: An offer was not accepted in time (``agent``); the next agent gets it.
    OFFER_EXPIRED = "ticket.offer_expired"
    #: An agent said they are online, away or offline.
    AVAILABILITY = "agent.availability"
    CSAT_ASKED = "csat.asked"
    CSAT_RECORDED = "csat.recorded"
    CSAT_DROPPED = "csat.dropped"
    #: The customer's comment after a low CSAT score (``text``), on the ticket.
    CSAT_COMMENT = "csat.comment"
    #: Small talk answered ("obrigado", "👍"): never a failed attempt (``talk``: its kind).
    SMALLTALK = "conversation.smalltalk"
    #: A low-information message ("sim", "?") out of context: asked to say more.
    CLARIFY_ASKED = "conversation.clarify"
    #: The customer closed their open ticket (``cancel`` or ``restart`` confirmed).
    CLOSED_BY_CUSTOMER = "ticket.closed_by_customer"
    #: Someone asked for a ticket's status without owning it or giving its code.
    STATUS_REFUSED = "ticket.status_refused"
    DELIVERY_FAILED = "delivery.failed"
    #: A provider's final status for a message that reached the customer (delivered, read).
    DELIVERY_STATUS = "delivery.status"
    #: WhatsApp: the approved template went out instead of the text (outside the window).
    DELIVERY_TEMPLATE = "delivery.template"
    #: A workspace could not show a ticket after every retry (a Slack card never posted).
    WORKSPACE_GAVE_UP = "workspace.gave_up"
    CANCELLED = "conversation.cancelled"
    MESSAGE_UNSUPPORTED = "message.unsupported"
    OPTED_OUT = "contact.opted_out"
    OPTED_IN = "contact.opted_in"
    RESTARTED = "conversation.restarted"
    #: A content version (KB, flows, routing) was published, or an earlier one restored.
    CONTENT_PUBLISHED = "content.published"
    CONTENT_ROLLED_BACK = "content.rolled_back"
