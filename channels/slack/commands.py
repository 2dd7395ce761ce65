"""The ``/escala`` slash command: queue, next, ticket N, help."""

from __future__ import annotations

from bot import kpis
from bot.desk import Desk, QueueStat, parse_routing
from bot.models import Availability
from channels.slack import blocks
from channels.slack.config import SlackConfig
from channels.slack.workspace import SlackWorkspace

NOT_AN_AGENT = "You are not an Escala agent: ask an admin to add you to [slack] agents."

HELP = """\
*/escala queue* — tickets waiting and oldest wait per tier
*/escala next* — claim the best ticket waiting in your tiers
*/escala ticket N* — status of ticket N and a link to its card
*/escala online*, */escala away*, */escala offline* — your availability (only online agents \
are offered tickets)
*/escala route N [TIER] [priority=P] [skills=a,b] [private=yes|no]* — routers: classify a \
waiting ticket and pass it on
*/escala stats [7d|30d]* — KPIs per tier over the last 7 (default) or 30 days
*/escala help* — this help
On a card: Claim, Escalate, Resolve, Release. In a card's thread, your reply goes to \
the customer once you have claimed the ticket; start it with {notes} for a private note."""


class EscalaCommand:
    def __init__(self, config: SlackConfig, desk: Desk, workspace: SlackWorkspace) -> None:
        self.config = config
        self.desk = desk
        self.workspace = workspace

    async def answer(self, agent: str | None, text: str) -> str:
        """The reply to ``/escala text`` from ``agent`` (``None``: not an Escala agent)."""
        words = text.split()
        verb = words[0].lower() if words else "help"
        notes = " or ".join(f"`{p}`" for p in self.config.note_prefixes)
        if verb == "help":
            return HELP.format(notes=notes)
        if agent is None:
            return NOT_AN_AGENT
        if verb == "queue":
            return "\n".join(_queue_line(stat) for stat in await self.desk.queues())
        if verb == "next":
            result = await self.desk.take_next(agent)
            if not result.ok or result.ticket is None:
                return f"Nothing claimed: {result.message}."
            return f"{result.message}. {await self._card_link(result.ticket.id)}"
        if verb in {a.value for a in Availability}:
            return (await self.desk.set_availability(agent, Availability(verb))).message + "."
        if verb == "route" and len(words) >= 2 and words[1].lstrip("#").isdigit():
            routing = parse_routing(words[2:], self.desk.tiers.names())
            if isinstance(routing, str):
                return f"Not done: {blocks.escape(routing)}."
            result = await self.desk.route(agent, int(words[1].lstrip("#")), routing)
            return f"{'Done' if result.ok else 'Not done'}: {blocks.escape(result.message)}."
        if verb == "stats" and len(words) <= 2:
            days = kpis.period_days(words[1].lower()) if len(words) == 2 else 7
            if days is not None:
                report = await self.workspace.port.report(days=days)
                lines = [f"*KPIs, last {days} days*", *kpis.render(report)]
                return "\n".join(blocks.escape(line) for line in lines)
        if verb == "ticket" and len(words) == 2 and words[1].lstrip("#").isdigit():
            return await self._ticket_status(int(words[1].lstrip("#")))
        return f"Unknown command `{blocks.escape(text)}`.\n{HELP.format(notes=notes)}"

    async def _ticket_status(self, number: int) -> str:
        ticket = await self.desk.ticket(number)
        if ticket is None:
            return f"No ticket #{number}."
        line = f"{ticket.label}: {ticket.state.value} in {ticket.tier}, {ticket.priority.label}"
        if ticket.assignee:
            user = self.config.slack_user(ticket.assignee)
            line += f", with <@{user}>" if user else f", with {blocks.escape(ticket.assignee)}"
        if ticket.csat is not None:
            line += f", CSAT {ticket.csat}/5"
        return f"{line}. {await self._card_link(ticket.id)}"

    async def _card_link(self, ticket_id: str) -> str:
        link = await self.workspace.permalink(ticket_id)
        return f"<{link}|Open the card>" if link else "(no card in Slack)"


def _queue_line(stat: QueueStat) -> str:
    wait = ""
    if stat.oldest_wait is not None:
        minutes = int(stat.oldest_wait.total_seconds() // 60)
        wait = f", oldest waiting {minutes} min"
    breach = f" :warning: over the {stat.sla_minutes} min SLA" if stat.breaching else ""
    return f"*{stat.tier}*: {stat.depth} waiting{wait}{breach}"
