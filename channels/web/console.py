"""The agent console and the supervisor desk, as pages on the web :class:`Site`.

Agents: the inbox (their tiers' queues, their tickets, what they resolved lately,
availability), the ticket page (live transcript, triage reasons, contact, notes,
reply, claim / take next / escalate / release / resolve, CSAT). Supervisors: the
desk board and the KPI reports. Every action is a POST to the one
:class:`~bot.desk.Desk` through the Edge, as Slack and ``escala chat`` do; this
module only renders and translates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import kpis
from bot.desk import DeskResult
from bot.models import (
    Agent,
    Availability,
    ConsoleRole,
    ConsoleUser,
    Direction,
    EventKind,
    Ticket,
    TicketState,
)
from bot.users import UserError
from channels.web import i18n
from channels.web.charts import bar_chart
from channels.web.live import desk_signal, ticket_signal
from channels.web.site import LOCALE, USER, Site

#: Longest reply, note or reason accepted from a form (a customer channel splits).
MAX_TEXT = 4000
#: Events read to find an agent's recently resolved tickets.
RECENT_EVENTS = 2000
#: Longest report range (days): the log is read whole for it.
MAX_REPORT_DAYS = 366


@dataclass(frozen=True)
class Row:
    """A ticket as a list row shows it."""

    ticket: Ticket
    contact: str
    channel: str
    deadline: datetime | None
    overdue: bool


class Console:
    def __init__(self, site: Site, recent_resolved: int) -> None:
        self.site = site
        self.edge = site.edge
        self.recent_resolved = recent_resolved
        get, post = site.get, site.post
        get("/", ConsoleRole.AGENT)(self.home)
        get("/inbox", ConsoleRole.AGENT, name="inbox")(self.inbox)
        get("/inbox/lists", ConsoleRole.AGENT)(self.inbox_lists)
        get("/live", ConsoleRole.AGENT)(self.live)
        post("/availability", ConsoleRole.AGENT)(self.set_availability)
        post("/take-next", ConsoleRole.AGENT)(self.take_next)
        get("/tickets/{number:\\d+}", ConsoleRole.AGENT)(self.ticket)
        get("/tickets/{number:\\d+}/live", ConsoleRole.AGENT)(self.ticket_live)
        get("/tickets/{number:\\d+}/events", ConsoleRole.AGENT)(self.ticket_events)
        post("/tickets/{number:\\d+}/{action:[a-z]+}", ConsoleRole.AGENT)(self.act)
        get("/board", ConsoleRole.SUPERVISOR)(self.board)
        get("/board/live", ConsoleRole.SUPERVISOR)(self.board_live)
        get("/reports", ConsoleRole.SUPERVISOR)(self.reports)
        get("/users", ConsoleRole.ADMIN)(self.users)
        post("/users/{login}/remove", ConsoleRole.ADMIN)(self.remove_user)

    # -- helpers ------------------------------------------------------------------------

    def agent_of(self, user: ConsoleUser) -> Agent | None:
        return self.edge.desk.agent(user.agent_id) if user.agent_id else None

    def tiers_of(self, user: ConsoleUser) -> tuple[str, ...]:
        agent = self.agent_of(user)
        if agent is not None and user.role is ConsoleRole.AGENT:
            return agent.tiers
        return self.edge.tiers.names()  # supervisors see every queue

    async def row(self, ticket: Ticket) -> Row:
        view = await self.edge.view(ticket)
        contact = view.contact.name if view.contact and view.contact.name else ""
        waiting = ticket.first_response_at is None or ticket.first_response_at < ticket.queued_at
        deadline = None
        if waiting and ticket.state is TicketState.QUEUED:  # business hours counted there
            deadline = self.edge.desk.first_response_due(ticket)
        return Row(
            ticket=ticket,
            contact=contact or view.conversation.address,
            channel=view.conversation.channel,
            deadline=deadline,
            overdue=deadline is not None and deadline <= self.edge.now(),
        )

    def may_see(self, user: ConsoleUser, ticket: Ticket) -> bool:
        """Sensitive tickets (billing, health ...) only for their tier, their agent and
        supervisors; others for every agent."""
        if user.role.allows(ConsoleRole.SUPERVISOR) or not ticket.private:
            return True
        agent = self.agent_of(user)
        return agent is not None and (ticket.tier in agent.tiers or ticket.assignee == agent.id)

    async def load(self, request: web.Request) -> Ticket:
        ticket = await self.edge.desk.ticket(int(request.match_info["number"]))
        if ticket is None:
            raise web.HTTPNotFound(text="no such ticket\n")
        if not self.may_see(request[USER], ticket):
            raise web.HTTPForbidden(text="not allowed\n")
        return ticket

    async def flash(
        self, request: web.Request, result: DeskResult, done: str, **values: Any
    ) -> None:
        locale = request[LOCALE]
        if result.ok:
            message = i18n.text(done, locale, **values)
        else:
            message = i18n.text("refused", locale, reason=translate_refusal(result.message, locale))
        session = await get_session(request)
        session["flash"] = ["ok" if result.ok else "error", message]

    async def take_flash(self, request: web.Request) -> list[str] | None:
        session = await get_session(request)
        flash = session.pop("flash", None)
        return flash if isinstance(flash, list) else None

    def common(self, request: web.Request) -> dict[str, Any]:
        return {"now": self.edge.now(), "duration": i18n.duration}

    # -- inbox --------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(self.site.url("/inbox"))

    async def inbox(self, request: web.Request) -> web.StreamResponse:
        user = request[USER]
        context = await self.inbox_context(user)
        agent = self.agent_of(user)
        context.update(
            self.common(request),
            flash=await self.take_flash(request),
            availability=await self.edge.desk.availability(agent.id) if agent else None,
            agent=agent,
            states=list(Availability),
        )
        return aiohttp_jinja2.render_template("inbox.html", request, context)

    async def inbox_lists(self, request: web.Request) -> web.StreamResponse:
        context = await self.inbox_context(request[USER])
        context.update(self.common(request))
        return aiohttp_jinja2.render_template("_inbox_lists.html", request, context)

    async def inbox_context(self, user: ConsoleUser) -> dict[str, Any]:
        agent = self.agent_of(user)
        mine = [await self.row(t) for t in await self.edge.assigned(agent.id)] if agent else []
        queues = []
        for tier in self.tiers_of(user):
            waiting = await self.edge.waiting(tier)
            queues.append((tier, [await self.row(t) for t in waiting if self.may_see(user, t)]))
        resolved: list[Ticket] = []
        if agent is not None and self.recent_resolved:
            seen: set[str] = set()
            for event in reversed(await self.edge.recent_events(RECENT_EVENTS)):
                if event.kind != EventKind.RESOLVED or event.data.get("agent") != agent.id:
                    continue
                if event.ticket_id is None or event.ticket_id in seen:
                    continue
                seen.add(event.ticket_id)
                found = await self.edge.ticket(event.ticket_id)
                if found is not None:
                    resolved.append(found)
                if len(resolved) >= self.recent_resolved:
                    break
        return {"mine": mine, "queues": queues, "resolved": resolved}

    async def live(self, request: web.Request) -> web.StreamResponse:
        """SSE: ``desk`` signals, and ``ticket`` ones for ``?ticket=N``."""
        number = request.query.get("ticket", "")
        if number.isdigit():
            ticket = await self.edge.desk.ticket(int(number))
            if ticket is None or not self.may_see(request[USER], ticket):
                raise web.HTTPNotFound(text="no such ticket\n")
            return await self.site.live.stream(
                request, ticket_signal(ticket.id, ticket.conversation_id)
            )
        return await self.site.live.stream(request, desk_signal)

    async def set_availability(self, request: web.Request) -> web.StreamResponse:
        user = request[USER]
        form = await request.post()
        try:
            choice = Availability(str(form.get("availability", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="availability is online or away\n") from None
        if user.agent_id is None:
            raise web.HTTPBadRequest(text="your login is not linked to an agent\n")
        result = await self.edge.desk.set_availability(user.agent_id, choice)
        if not result.ok:
            raise web.HTTPBadRequest(text=f"{result.message}\n")
        raise web.HTTPSeeOther(self.site.url("/inbox"))

    async def take_next(self, request: web.Request) -> web.StreamResponse:
        user = request[USER]
        if user.agent_id is None:
            await self.flash(request, DeskResult(False, "no_agent"), "done.take_next")
            raise web.HTTPSeeOther(self.site.url("/inbox"))
        result = await self.edge.desk.take_next(user.agent_id)
        label = result.ticket.label if result.ticket else ""
        await self.flash(request, result, "done.take_next", label=label)
        if result.ok and result.ticket is not None:
            raise web.HTTPSeeOther(self.site.url(f"/tickets/{result.ticket.number}"))
        raise web.HTTPSeeOther(self.site.url("/inbox"))

    # -- a ticket -----------------------------------------------------------------------

    async def ticket(self, request: web.Request) -> web.StreamResponse:
        ticket = await self.load(request)
        context = await self.ticket_context(request, ticket)
        context["flash"] = await self.take_flash(request)
        return aiohttp_jinja2.render_template("ticket.html", request, context)

    async def ticket_live(self, request: web.Request) -> web.StreamResponse:
        ticket = await self.load(request)
        context = await self.ticket_context(request, ticket)
        return aiohttp_jinja2.render_template("_ticket_live.html", request, context)

    async def ticket_events(self, request: web.Request) -> web.StreamResponse:
        """The ticket's SSE stream (the same as ``/live?ticket=N``)."""
        ticket = await self.load(request)
        return await self.site.live.stream(
            request, ticket_signal(ticket.id, ticket.conversation_id)
        )

    async def ticket_context(self, request: web.Request, ticket: Ticket) -> dict[str, Any]:
        view = await self.edge.view(ticket, full_transcript=True)
        user = request[USER]
        agent = self.agent_of(user)
        assignee = self.edge.desk.agent(ticket.assignee) if ticket.assignee else None
        context = self.common(request)
        context.update(
            ticket=ticket,
            view=view,
            row=await self.row(ticket),
            agent=agent,
            mine=agent is not None and ticket.assignee == agent.id,
            assignee=assignee.name if assignee else ticket.assignee,
            tiers=[t for t in self.edge.tiers.names() if t != ticket.tier],
            next_tier=self.edge.tiers.next_tier(ticket.tier),
            Direction=Direction,
            TicketState=TicketState,
            csat_asked=ticket.state is not TicketState.QUEUED and ticket.csat is None,
        )
        return context

    async def act(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        if action not in ("claim", "reply", "note", "escalate", "release", "resolve"):
            raise web.HTTPNotFound(text="no such action\n")
        ticket = await self.load(request)
        user = request[USER]
        back = self.site.url(f"/tickets/{ticket.number}")
        if user.agent_id is None:
            await self.flash(request, DeskResult(False, "no_agent"), f"done.{action}")
            raise web.HTTPSeeOther(back)
        form = await request.post()
        text = str(form.get("text", "")).strip()
        desk, agent_id, number = self.edge.desk, user.agent_id, ticket.number
        if len(text) > MAX_TEXT:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_TEXT, actual_size=len(text))
        if action in ("reply", "note", "escalate") and not text:
            await self.flash(request, DeskResult(False, "empty"), f"done.{action}")
            raise web.HTTPSeeOther(back)
        if action == "claim":
            result = await desk.claim(agent_id, number)
        elif action == "reply":
            result = await desk.reply(agent_id, number, text)
        elif action == "note":
            result = await desk.note(agent_id, number, text)
        elif action == "escalate":
            tier = str(form.get("tier", "")) or None
            result = await desk.escalate(agent_id, number, tier, text)
        elif action == "release":
            result = await desk.release(agent_id, number)
        else:
            result = await desk.resolve(agent_id, number)
        moved = result.ticket or ticket
        await self.flash(request, result, f"done.{action}", label=moved.label, tier=moved.tier)
        if result.ok and action == "escalate" and not self.may_see(user, moved):
            raise web.HTTPSeeOther(self.site.url("/inbox"))
        raise web.HTTPSeeOther(back)

    # -- supervisors --------------------------------------------------------------------

    async def board(self, request: web.Request) -> web.StreamResponse:
        context = await self.board_context(request)
        return aiohttp_jinja2.render_template("board.html", request, context)

    async def board_live(self, request: web.Request) -> web.StreamResponse:
        context = await self.board_context(request)
        return aiohttp_jinja2.render_template("_board.html", request, context)

    async def board_context(self, request: web.Request) -> dict[str, Any]:
        now = self.edge.now()
        tiers = []
        for stat in await self.edge.desk.queues():
            waiting = await self.edge.waiting(stat.tier)
            breaches = 0
            for ticket in waiting:
                row = await self.row(ticket)
                breaches += 1 if row.overdue else 0
            tiers.append({"stat": stat, "breaches": breaches})
        agents = []
        for agent in self.edge.desk.agents.values():
            load = len(await self.edge.assigned(agent.id))
            state = await self.edge.desk.availability(agent.id)
            agents.append({"agent": agent, "load": load, "availability": state})
        context = self.common(request)
        context.update(tiers=tiers, agents=agents, now=now)
        return context

    async def reports(self, request: web.Request) -> web.StreamResponse:
        locale = request[LOCALE]
        today = self.edge.now().astimezone(UTC).date()
        error = None
        try:
            start = date.fromisoformat(request.query.get("from", "") or str(today - timedelta(6)))
            end = date.fromisoformat(request.query.get("to", "") or str(today))
            if end < start or (end - start).days > MAX_REPORT_DAYS:
                raise ValueError("bad range")
        except ValueError:
            error = "reports.bad_range"
            start, end = today - timedelta(6), today
        zone = ZoneInfo(self.edge.settings.business_hours.timezone)  # the desk's days
        low = datetime.combine(start, time.min, zone)
        high = datetime.combine(end + timedelta(days=1), time.min, zone)
        report = await self.edge.report(start=low, end=min(self.edge.now(), high))
        names = [row.tier for row in report.tiers]
        t = i18n.TEXTS[locale]
        charts = [
            bar_chart(
                t["reports.chart_tickets"],
                names,
                [t["reports.opened"], t["reports.resolved"]],
                [[row.opened, row.resolved] for row in report.tiers],
            ),
            bar_chart(
                t["reports.chart_response"],
                names,
                [t["reports.first_response"]],
                [[minutes(kpis.median(row.first_response_seconds))] for row in report.tiers],
            ),
        ]
        context = self.common(request)
        context.update(
            report=report,
            start=start,
            end=end,
            error=error,
            charts=charts,
            median_minutes=lambda seconds: minutes(kpis.median(seconds)),
        )
        return aiohttp_jinja2.render_template(
            "reports.html", request, context, status=400 if error else 200
        )

    async def users(self, request: web.Request) -> web.StreamResponse:
        return aiohttp_jinja2.render_template(
            "users.html", request, {"users": await self.edge.users.all()}
        )

    async def remove_user(self, request: web.Request) -> web.StreamResponse:
        login = request.match_info["login"]
        if login == request[USER].login:
            raise web.HTTPBadRequest(text="you cannot remove your own login\n")
        try:
            await self.edge.users.remove(login)
        except UserError as e:
            raise web.HTTPNotFound(text=f"{e}\n") from None
        raise web.HTTPSeeOther(self.site.url("/users"))


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def translate_refusal(message: str, locale: str) -> str:
    """The desk's English reason in the user's language, when it is a known one."""
    texts = i18n.TEXTS[locale]
    if f"refusal.{message}" in texts:
        return texts[f"refusal.{message}"]
    for key, value in texts.items():
        if key.startswith("refusal.") and message.endswith(key.removeprefix("refusal.")):
            return value
    return message
