"""The terminal channel behind ``escala chat``: you are the customer, and with
``/agent ...`` commands you are the agents too. Reads stdin line by line, so a
journey can be scripted through a pipe."""

from __future__ import annotations

import itertools
import re
import shlex
import uuid
from collections.abc import AsyncIterator
from typing import TextIO

from bot import kpis
from bot.desk import parse_routing
from bot.edge import Edge
from bot.models import Availability, InboundMessage, Message, OutboundMessage, Ticket
from bot.ports import TicketChangeKind, TicketView

CHANNEL = "console"
#: A word shaped like a tier name ("N9", "L2"), read as the escalation target.
TIER_LIKE = re.compile(r"[A-Z]{1,3}\d{1,2}")
ADDRESS = "local"

HELP = """\
Type as the customer. Agent commands (the ticket defaults to this chat's ticket):
  /agent queue                 queue depth and oldest wait per tier
  /agent claim [N]             claim ticket N          /agent next   claim the best waiting
  /agent reply TEXT            answer the customer     /agent note TEXT   private note
  /agent escalate [TIER] WHY   escalate (default: the next tier) with a reason
  /agent release               give the ticket back    /agent resolve   resolve (asks CSAT)
  /agent route [N] [TIER] [priority=P] [skills=a,b] [private=yes|no]
                               routers: classify a waiting ticket and pass it on
  /agent online | away | offline   your availability (only online agents are offered tickets)
  /agent ticket [N]            ticket details and transcript
  /agent stats [7d|30d]        KPIs per tier (deflection, response, SLA, CSAT ...)
  /agent as ID                 act as another agent    /agent who   list agents
  /help   /quit"""


class Console:
    """Customer channel and agent workspace in one terminal."""

    def __init__(
        self,
        edge: Edge,
        out: TextIO,
        locale: str,
        agent_id: str,
        echo: bool = True,
        locale_known: bool = True,
    ) -> None:
        """``locale_known``: False when nobody said which language the customer speaks
        (``escala chat`` without ``--locale``): ``locale`` is then where the
        conversation starts, and replies follow the language the customer writes in."""
        self.edge = edge
        self.echo = echo
        self.out = out
        self.locale = locale
        self.locale_known = locale_known
        self.agent_id = agent_id
        # Message ids unique across runs: on a Redis store a second `escala chat` must
        # not find its "console-1" already seen (and dropped) from the run before.
        self._run = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        edge.register_sender(CHANNEL, self)
        edge.add_workspace(self)

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # -- ChannelSender ---------------------------------------------------------------

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        lines = message.text.splitlines() or [""]
        self.say(f"bot> {lines[0]}")
        for line in lines[1:]:
            self.say(f"     {line}" if line else "")
        for number, choice in enumerate(message.choices, start=1):
            self.say(f"     {number}) {choice.label}")

    # -- AgentWorkspace --------------------------------------------------------------

    async def ticket_opened(self, view: TicketView) -> None:
        t = view.ticket
        flags = " PRIVATE" if t.private else ""
        origin = (
            f" (escalated from {view.previous_tier}: {view.note})" if view.previous_tier else ""
        )
        self.say(
            f"[{t.tier} queue] new ticket {t.label}, priority {t.priority.label}{flags}{origin}"
        )
        for reason in t.reasons:
            self.say(f"[{t.tier} queue]   why: {reason}")

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        t = view.ticket
        if change is TicketChangeKind.SLA_BREACHED:  # said where the ticket waits
            self.say(f"[{t.tier} queue] {t.label} {view.note}")
            return
        if change is TicketChangeKind.OFFERED:
            self.say(f"[{t.tier} queue] {t.label} offered to {view.actor}: claim it to accept")
            return
        detail = {
            TicketChangeKind.CLAIMED: f"claimed by {view.actor}",
            TicketChangeKind.RELEASED: f"released by {view.actor}, back in {t.tier}",
            TicketChangeKind.ESCALATED: f"escalated {view.previous_tier} → {t.tier}",
            TicketChangeKind.RESOLVED: f"resolved by {view.actor}",
            TicketChangeKind.CSAT: f"CSAT {t.csat}/5",
            TicketChangeKind.ROUTED: f"routed by {view.actor}: {view.note}",
            TicketChangeKind.CLOSED_BY_CUSTOMER: "closed by the customer",
        }[change]
        self.say(f"[agents] {t.label} {detail}")

    async def customer_message(self, view: TicketView, message: Message) -> None:
        self.say(f"[{view.ticket.label} thread] customer: {message.text}")

    # -- the loop ----------------------------------------------------------------------

    async def run(self, lines: AsyncIterator[str]) -> None:
        self.say("Escala chat: you are the customer on the console channel. /help for commands.")
        async for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if line == "/help":
                self.say(HELP)
            elif line.startswith("/agent"):
                await self.agent_command(line.removeprefix("/agent").strip())
            else:
                await self.customer(line)

    async def customer(self, text: str) -> None:
        if self.echo:  # a piped script shows what the customer said; a terminal already did
            self.say(f"you> {text}")
        await self.edge.receive(
            InboundMessage(
                channel=CHANNEL,
                address=ADDRESS,
                text=text,
                provider_message_id=f"console-{self._run}-{next(self._ids)}",
                received_at=self.edge.now(),
                locale=self.locale,
                locale_known=self.locale_known,
            )
        )

    async def agent_command(self, command: str) -> None:
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        if not words:
            self.say(HELP)
            return
        verb, args = words[0], words[1:]
        desk = self.edge.desk
        if verb == "queue":
            for stat in await desk.queues():
                wait = (
                    f", oldest waiting {_minutes(stat.oldest_wait.total_seconds())}"
                    if stat.oldest_wait
                    else ""
                )
                breach = " (SLA breached)" if stat.breaching else ""
                self.say(f"[desk] {stat.tier}: {stat.depth} waiting{wait}{breach}")
            return
        if verb == "stats":
            days = kpis.period_days(args[0]) if args else None
            if args and days is None:
                self.say("[desk] usage: /agent stats [7d|30d] (no period: everything kept)")
                return
            for line in kpis.render(await self.edge.report(days=days)):
                self.say(f"[desk] {line}")
            return
        if verb == "who":
            for agent in desk.agents.values():
                me = " (you)" if agent.id == self.agent_id else ""
                state = await desk.availability(agent.id)
                skills = f", skills {', '.join(agent.skills)}" if agent.skills else ""
                self.say(
                    f"[desk] {agent.id}: {agent.name}, tiers {'/'.join(agent.tiers)}{skills},"
                    f" {agent.role.value}, {state.value}{me}"
                )
            return
        if verb in {a.value for a in Availability}:
            self._result((await desk.set_availability(self.agent_id, Availability(verb))).message)
            return
        if verb == "as":
            if not args or desk.agent(args[0]) is None:
                self.say(f"[desk] unknown agent; agents: {', '.join(desk.agents)}")
            else:
                self.agent_id = args[0]
                self.say(f"[desk] you are now {desk.agents[args[0]].name}")
            return
        if verb == "next":
            self._result((await desk.take_next(self.agent_id)).message)
            return
        text_verbs = {"reply", "note"}
        number: int | None = None
        rest = args
        if verb not in text_verbs and args and args[0].lstrip("#").isdigit():
            number, rest = int(args[0].lstrip("#")), args[1:]
        if number is None:
            number = await self._current_ticket()
        if number is None:
            self.say("[desk] no ticket in this chat yet; give its number")
            return
        if verb == "claim":
            self._result((await desk.claim(self.agent_id, number)).message)
        elif verb == "reply":
            self._result((await desk.reply(self.agent_id, number, " ".join(rest))).message)
        elif verb == "note":
            self._result((await desk.note(self.agent_id, number, " ".join(rest))).message)
        elif verb == "escalate":
            tier = None
            if rest and (rest[0] in desk.tiers or TIER_LIKE.fullmatch(rest[0])):
                # "N9" is a tier name, unknown or not: the desk refuses an unknown one
                # instead of escalating to the next tier with "N9" in the reason
                tier, rest = rest[0], rest[1:]
            self._result((await desk.escalate(self.agent_id, number, tier, " ".join(rest))).message)
        elif verb == "route":
            routing = parse_routing(rest, desk.tiers.names())
            if isinstance(routing, str):
                self._result(routing)
            else:
                self._result((await desk.route(self.agent_id, number, routing)).message)
        elif verb == "release":
            self._result((await desk.release(self.agent_id, number)).message)
        elif verb == "resolve":
            self._result((await desk.resolve(self.agent_id, number)).message)
        elif verb == "ticket":
            await self._show(await desk.ticket(number))
        else:
            self.say(f"[desk] unknown agent command '{verb}'\n{HELP}")

    def _result(self, message: str) -> None:
        self.say(f"[desk] {message}")

    async def _current_ticket(self) -> int | None:
        ticket = await self.edge.current_ticket(CHANNEL, ADDRESS)
        return ticket.number if ticket else None

    async def _show(self, ticket: Ticket | None) -> None:
        if ticket is None:
            self.say("[desk] no such ticket")
            return
        view = await self.edge.view(ticket, full_transcript=True)
        self.say(
            f"[desk] {ticket.label} {ticket.state.value} in {ticket.tier}, priority "
            f"{ticket.priority.label}, assignee {ticket.assignee or '-'}, "
            f"tiers {' → '.join(ticket.tier_history)}"
        )
        for message in view.transcript:
            self.say(
                f"[desk]   {message.direction.value:>8} {message.author or '':>8}: {message.text}"
            )


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


class ConsoleSpec:
    """The ``console`` entry point: the terminal channel ``escala chat`` runs."""

    name = CHANNEL

    def terminal(
        self,
        edge: Edge,
        out: TextIO,
        *,
        locale: str,
        agent_id: str,
        echo: bool,
        locale_known: bool = True,
    ) -> Console:
        return Console(edge, out, locale, agent_id, echo=echo, locale_known=locale_known)


channel = ConsoleSpec()
