"""One customer message, handled under its conversation's lock.

A :class:`Turn` decides, in this order (DESIGN.md, "One message's journey"):

1. a human queue owns the conversation → relay to the agents (the bot stays silent);
2. we asked for CSAT → record the score;
3. a global command (talk to a human, ticket status, cancel, start over);
4. an active flow step;
5. a picked KB suggestion, a flow trigger, or tier 0 (KB answer / suggest / miss),
   with triage deciding whether the problem goes straight to a human tier.

It is also the flows' host: everything a flow may do to the world goes through it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot import access_code, i18n, pending, smalltalk
from bot.commands import Command, CommandMatch, detect, resolve_choice
from bot.csat import Survey
from bot.customer_commands import TicketCommands
from bot.events import Recorder
from bot.handoff import Handoff
from bot.models import (
    Choice,
    Contact,
    Conversation,
    Direction,
    EventKind,
    InboundMessage,
    Message,
    OutboundMessage,
    Priority,
    Ticket,
    TriageDecision,
    media_data,
)
from bot.outbox import Outbox
from bot.settings import EngineSettings
from bot.status import TicketStatus
from bot.store.base import ConversationStore, DeskStore, Lease
from bot.triage import Triage, TriageContext
from bot.triage_text import ExampleHit
from bot.views import Views
from bot.workspaces import Workspaces
from flows.loader import FlowSet
from flows.position import FlowPosition
from flows.runner import FlowReply, FlowRunner, Option
from kb.lowinfo import is_low_information
from kb.matcher import KbDecision, Matcher
from kb.model import KbEntry, KnowledgeBase

KB_CHOICE = "kb:"
KB_NONE = "kb:none"
#: How many recent customer messages triage reads when a handoff is asked for.
TRIAGE_CONTEXT_MESSAGES = 3


class Outcome(enum.StrEnum):
    """What happened to an inbound message (for adapters and tests)."""

    DUPLICATE = "duplicate"
    RELAYED = "relayed"
    HANDLED = "handled"
    #: A carrier keyword (opt-out, opt-in, help), answered outside the conversation's flow.
    KEYWORD = "keyword"
    #: Media the bot cannot read, outside a ticket: the customer is asked for text.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class TurnParts:
    """What a turn is built from (assembled once by :mod:`bot.app`)."""

    conversations: ConversationStore
    desk: DeskStore
    recorder: Recorder
    outbox: Outbox
    workspaces: Workspaces
    views: Views
    status: TicketStatus
    handoff: Handoff
    kb: KnowledgeBase
    matcher: Matcher
    flows: FlowSet
    runner: FlowRunner
    triage: Triage
    settings: EngineSettings


class Turn:
    """One customer message, handled under its conversation's lock.

    It is also the :class:`flows.runner.FlowHost`: everything a flow may do to the
    world goes through here.
    """

    def __init__(
        self,
        parts: TurnParts,
        conversation: Conversation,
        contact: Contact,
        inbound: InboundMessage,
        message: Message,
        lease: Lease,
        open_ticket: Ticket | None,
        recent: Sequence[Message] = (),
    ) -> None:
        self.parts = parts
        self.open_ticket = open_ticket
        #: The transcript's last lines before this message (read with the lock; a
        #: store may decode them only when read: only a handoff does).
        self.recent = recent
        self.conversation = conversation
        self.contact = contact
        self.inbound = inbound
        self.message = message
        self.lease = lease
        self._sent = 0
        #: The ``[human_request]`` example this message was close to, if any.
        self._human_hit: ExampleHit | None = None

    # -- FlowHost --------------------------------------------------------------------

    @property
    def locale(self) -> str:
        return self.conversation.locale

    @property
    def channel(self) -> str:
        return self.conversation.channel

    @property
    def tags(self) -> tuple[str, ...]:
        return self.conversation.tags

    def attribute(self, name: str) -> str | None:
        return self.contact.attributes.get(name)

    async def send(self, text: str, options: Sequence[Option] = ()) -> None:
        await self._send_choices(text, tuple(Choice(o.id, o.label) for o in options))

    async def _send_choices(self, text: str, choices: tuple[Choice, ...]) -> None:
        self._sent += 1
        if choices:
            self.conversation = self.conversation.changed(pending_choices=choices)
        await self.parts.outbox.send(
            self.conversation, OutboundMessage(text, choices), contact=self.contact
        )

    async def add_tags(self, tags: Sequence[str]) -> None:
        merged = tuple(dict.fromkeys((*self.conversation.tags, *tags)))
        self.conversation = self.conversation.changed(tags=merged)

    async def handoff(self, tier: str | None, priority: str | None, reason: str) -> None:
        if tier is not None:
            decision = TriageDecision(
                tier=tier,
                priority=Priority.parse(priority) if priority else Priority.NORMAL,
                skills=(),
                private=False,
                reasons=(reason,) if reason else (),
                rule=f"flow:{self.conversation.flow.flow_id if self.conversation.flow else '?'}",
                handoff=True,
            )
        else:
            decision = await self._triage_for_handoff()
            heard = (
                (f"asked in their words: {self._human_hit.explain()}",) if self._human_hit else ()
            )
            if reason or heard:
                # one line per reason: the flow's and the rule's are often the same words
                reasons = tuple(r for r in dict.fromkeys((reason, *heard, *decision.reasons)) if r)
                decision = replace(decision, reasons=reasons)
            if priority:
                decision = replace(decision, priority=Priority.parse(priority))
        await self._handoff(decision)

    async def ticket_status(self, number: int | None) -> None:
        if number is None:
            ticket_id = self.conversation.ticket_id or self.conversation.last_ticket_id
            ticket = await self.parts.desk.get_ticket(ticket_id) if ticket_id else None
        else:
            ticket = await self.parts.desk.find_ticket(number)
            if ticket is None or not await access_code.may_see(
                self.parts.conversations, ticket, self.contact, self.conversation, self.inbound.text
            ):
                # the same answer whether #number exists or not: it reveals no ticket
                await self._event(EventKind.STATUS_REFUSED, number=number)
                locked = access_code.text("locked", self.locale, ticket=f"#{number}", number=number)
                await self.send(locked)
                return
        status = await self.parts.status.text(ticket, self.locale, number)
        await self.send(status)

    async def kb_answer(self, query: str) -> bool:
        decision = self.parts.matcher.match(query)
        if decision.outcome != "answer" or decision.entry_id is None:
            return False
        entry = self.parts.kb.get(decision.entry_id)
        if entry is None:
            return False
        await self.send(self._answer_text(entry))
        await self._event(EventKind.KB_ANSWERED, entry=entry.id, score=decision.score)
        return True

    # -- the decision order ---------------------------------------------------------

    async def run(self) -> Outcome:
        # Who owns the conversation comes from the store's atomic open-ticket index, not
        # from the conversation's own ticket_id: a router killed between opening a ticket
        # and saving the conversation leaves a queued ticket the conversation does not
        # point to, and this message must still go to that ticket (issue 3).
        conversation = self.conversation
        ticket = self.open_ticket  # read with the rest of the turn's start (Store.begin_turn)
        if ticket is not None and ticket.opened_by == self.message.id:
            # This very message opened the ticket, and its turn failed before it was
            # committed (issue 11): the provider's retry finishes that handoff, so the
            # customer still gets the ticket number, instead of a relay to agents.
            await self._handed_off(ticket, rule=None)
            return Outcome.HANDLED
        if ticket is not None:
            self.conversation = conversation.changed(ticket_id=ticket.id, last_ticket_id=ticket.id)
            return await self._relay(ticket)
        if conversation.ticket_id is not None:  # (replace only what changes: issue 18)
            self.conversation = conversation.changed(ticket_id=None)
        if self.inbound.media:  # the words are handled; what came with them, only noted
            await self._event(EventKind.MESSAGE_UNSUPPORTED, **media_data(self.inbound.media))

        offered = self.conversation.pending_choices
        if offered:
            self.conversation = self.conversation.changed(pending_choices=())
        choice = resolve_choice(self.inbound.text, self.inbound.choice_id, offered)

        if (
            choice is None
            and any(c.id == KB_NONE for c in offered)
            and smalltalk.is_negative(self.inbound.text)
        ):
            # "não" / "no" to suggestions means "none of these" (issue 12)
            choice = next(c for c in offered if c.id == KB_NONE)
        survey = Survey(
            self.parts.desk,
            self.parts.conversations,
            self.parts.recorder,
            self.parts.views,
            self.parts.workspaces,
        )
        if self.conversation.csat_comment_ticket_id is not None and await survey.comment(self):
            return Outcome.HANDLED
        if self.conversation.csat_ticket_id is not None and await survey.answer(self, choice):
            return Outcome.HANDLED

        command = None if choice else detect(self.inbound.text) or self._asks_for_human()
        if command is not None:
            await self._command(command)
        elif self.conversation.flow is not None:
            sent_before = self._sent
            await self._resume_flow(self.conversation.flow, choice)
            handed_off = self.conversation.ticket_id is not None
            if self.conversation.flow is None and self._sent == sent_before and not handed_off:
                # The flow gave up on this reply without a word (it was not an answer
                # to its question): treat it as a new message rather than lose it.
                await self._fresh(None)
        else:
            await self._fresh(choice)
        return Outcome.HANDLED

    async def _fresh(self, choice: Choice | None) -> None:
        """A message outside any flow: a picked suggestion, a flow trigger, or tier 0."""
        if choice is not None and choice.id.startswith(KB_CHOICE):
            await self._picked_suggestion(choice)
        elif (flow_id := smalltalk.flow_trigger(self.parts.flows, self.inbound.text)) is not None:
            await self.start_flow(flow_id)
        elif not await self._small_talk():
            await self._tier0()

    async def _small_talk(self) -> bool:
        """Small talk gets a friendly word, a low-information message a request for
        more; neither is a failed attempt nor reaches the KB (issue 12)."""
        kind = smalltalk.classify(self.inbound.text)
        if kind is not None:
            await self._event(EventKind.SMALLTALK, talk=kind.value)
        elif is_low_information(self.inbound.text):
            kind = smalltalk.Kind.CLARIFY
            await self._event(EventKind.CLARIFY_ASKED)
        else:
            return False
        await self.send(smalltalk.reply(kind, self.locale))
        return True

    def _asks_for_human(self) -> CommandMatch | None:
        """A request for a person in the customer's own words ("quero conversar com uma
        pessoa"), read with the routing file's ``[human_request]`` examples."""
        self._human_hit = self.parts.triage.human_request(self.inbound.text)
        return CommandMatch(Command.HUMAN) if self._human_hit else None

    async def _relay(self, ticket: Ticket) -> Outcome:
        """A human queue owns the conversation: agents get the message; the bot answers
        only the customer's commands (:mod:`bot.customer_commands`)."""
        commands = TicketCommands(
            self.parts.desk,
            self.parts.conversations,
            self.parts.recorder,
            self.parts.views,
            self.parts.workspaces,
            self.parts.settings.greeting_flow,
        )
        await commands.relay(self, ticket)
        return Outcome.RELAYED

    def _later(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the turn is committed, with the lock given back: agent
        workspaces see the stored state, and no network call holds the lock."""
        if not self.parts.workspaces:
            return  # nobody to tell: no view to build
        turn = pending.current(self.conversation.id)
        if turn is None:
            raise RuntimeError("a turn's actions run inside its pending write")
        turn.later(action)

    async def _command(self, match: CommandMatch) -> None:
        settings = self.parts.settings
        if match.command is Command.HUMAN:
            self.conversation = self.conversation.changed(flow=None)
            if self.parts.flows.get(settings.human_flow) is not None:
                await self.start_flow(settings.human_flow)
            else:
                await self.handoff(None, None, "customer asked for a human")
        elif match.command is Command.STATUS:
            self.conversation = self.conversation.changed(flow=None)
            if self.parts.flows.get(settings.status_flow) is not None:
                variables = {"ticket_number": str(match.number)} if match.number else {}
                await self.start_flow(settings.status_flow, variables)
            else:
                await self.ticket_status(match.number)
        elif match.command is Command.CANCEL:
            had_flow = self.conversation.flow is not None
            self.conversation = self.conversation.changed(flow=None)
            await self._event(EventKind.CANCELLED, flow=had_flow)
            await self.send(
                i18n.text("cancelled" if had_flow else "nothing_to_cancel", self.locale)
            )
        elif match.command is Command.RESTART:
            self.conversation = self.conversation.changed(flow=None, failed_attempts=0)
            await self._event(EventKind.RESTARTED)
            await self.start_flow(settings.greeting_flow)

    async def start_flow(self, flow_id: str, variables: Mapping[str, str] | None = None) -> None:
        await self._event(EventKind.FLOW_STARTED, flow=flow_id)
        self.conversation = self.conversation.changed(flow=FlowPosition(flow_id, ""))
        position = await self.parts.runner.start(flow_id, self, variables)
        await self._flow_moved(flow_id, position)

    async def _resume_flow(self, position: FlowPosition, choice: Choice | None) -> None:
        reply = FlowReply(self.inbound.text, choice.id if choice else None)
        moved = await self.parts.runner.resume(position, reply, self)
        await self._flow_moved(position.flow_id, moved)

    async def _flow_moved(self, flow_id: str, position: FlowPosition | None) -> None:
        self.conversation = self.conversation.changed(flow=position)
        if position is None:
            await self._event(EventKind.FLOW_ENDED, flow=flow_id)

    async def _picked_suggestion(self, choice: Choice) -> None:
        if choice.id == KB_NONE:
            self.conversation = self.conversation.changed(
                failed_attempts=self.conversation.failed_attempts + 1
            )
            await self._event(EventKind.KB_MISSED, reason="none of the suggestions")
            context = self._triage_context(await self._recent_text(), None, False)
            decision = self.parts.triage.decide(replace(context, kb_outcome="none"))
            if decision.handoff:
                await self._handoff(decision)
            else:
                await self.send(i18n.text("not_understood", self.locale))
            return
        entry = self.parts.kb.get(choice.id.removeprefix(KB_CHOICE))
        if entry is None:
            await self._tier0()
            return
        await self._answer(entry.id, score=None)

    async def _tier0(self) -> None:
        decision = self.parts.matcher.match(self.inbound.text)
        if decision.outcome == "none":
            self.conversation = self.conversation.changed(
                failed_attempts=self.conversation.failed_attempts + 1
            )
        triage = self.parts.triage.decide(self._triage_context(self.inbound.text, decision, False))
        if triage.handoff:
            await self._handoff(triage)
        elif decision.outcome == "answer" and decision.entry_id is not None:
            await self._answer(decision.entry_id, decision.score)
        elif decision.outcome == "suggest":
            await self._suggest(decision)
        else:
            await self._event(EventKind.KB_MISSED, score=decision.score)
            await self.send(i18n.text("not_understood", self.locale))

    async def _answer(self, entry_id: str, score: float | None) -> None:
        entry = self.parts.kb.get(entry_id)
        if entry is None:
            return
        if self.conversation.failed_attempts:
            self.conversation = self.conversation.changed(failed_attempts=0)
        await self._event(EventKind.KB_ANSWERED, entry=entry.id, score=score)
        if entry.flow and self.parts.flows.get(entry.flow) is not None:
            await self.start_flow(entry.flow, {"kb_entry": entry.id})
            return
        await self.send(self._answer_text(entry))
        after = self.parts.settings.after_answer_flow
        if after and self.parts.flows.get(after) is not None:
            await self.start_flow(after, {"kb_entry": entry.id})

    def _answer_text(self, entry: KbEntry) -> str:
        """The entry's answer in the customer's locale or, when it has none, in the
        language it has, saying so in the customer's (issue 19: a pt-BR-only entry can
        answer an English question)."""
        return i18n.in_language(
            entry.answer(self.locale), entry.answer_locale(self.locale), self.locale
        )

    async def _suggest(self, decision: KbDecision) -> None:
        options = [
            Option(f"{KB_CHOICE}{s.entry_id}", entry.title(self.locale))
            for s in decision.suggestions
            if (entry := self.parts.kb.get(s.entry_id)) is not None
        ]
        options.append(Option(KB_NONE, i18n.text("none_of_these", self.locale)))
        await self._event(
            EventKind.KB_SUGGESTED, entries=[s.entry_id for s in decision.suggestions]
        )
        await self.send(i18n.text("suggest", self.locale), options)

    async def _triage_for_handoff(self) -> TriageDecision:
        context = self._triage_context(await self._recent_text(), None, True)
        return self.parts.triage.decide(context)

    async def _recent_text(self) -> str:
        """The last few customer messages: what triage reads when a handoff is asked for
        ("talk to a human" usually follows the message that says what is wrong)."""
        transcript = (*self.recent, self.message)  # read with the lock: no round trip
        inbound = [m.text for m in transcript if m.direction is Direction.INBOUND]
        return "\n".join(inbound[-TRIAGE_CONTEXT_MESSAGES:]) or self.inbound.text

    async def _handoff(self, decision: TriageDecision) -> None:
        await self._event(
            EventKind.TRIAGED,
            tier=decision.tier,
            priority=decision.priority.label,
            rule=decision.rule,
            reasons=list(decision.reasons),
        )
        ticket = await self.parts.handoff.open(self.conversation, decision, self.message.id)
        await self._handed_off(ticket, decision.rule)

    async def _handed_off(self, ticket: Ticket, rule: str | None) -> None:
        """The handoff's outcome for the conversation: the ticket owns it, the customer
        is told the number, agents hear of it once the turn is committed."""
        self.conversation = await self.parts.handoff.confirm(
            self.conversation, ticket, self.locale, rule=rule, contact=self.contact
        )

        async def tell_agents() -> None:
            view = await self.parts.views.view(ticket, full_transcript=True)
            await self.parts.workspaces.ticket_opened(view)

        self._later(tell_agents)

    async def _event(
        self, kind: EventKind, *, ticket_id: str | None = None, **data: object
    ) -> None:
        await self.parts.recorder.record(
            kind,
            conversation_id=self.conversation.id,
            ticket_id=ticket_id or self.conversation.ticket_id,
            **data,
        )

    def _triage_context(
        self, text: str, decision: KbDecision | None, requested_human: bool
    ) -> TriageContext:
        """What triage reads about this turn: the text, the KB's outcome, the customer."""
        kb = self.parts.kb
        entry = kb.get(decision.entry_id) if decision and decision.entry_id else None
        return TriageContext(
            text=text,
            channel=self.conversation.channel,
            now=self.inbound.received_at,
            kb_outcome=decision.outcome if decision else None,
            kb_category=entry.category if entry else None,
            failed_attempts=self.conversation.failed_attempts,
            contact_attributes=self.contact.attributes,
            requested_human=requested_human,
        )
