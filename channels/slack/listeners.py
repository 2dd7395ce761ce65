"""What agents do in Slack, translated into desk calls. No rule lives here: the desk
decides, this module only says who, which ticket and what, and shows the answer.

Every listener acknowledges first and leaves the work to a tracked background task,
so Slack gets its answer well inside 3 s whatever the store or the customer's channel
do, and tests (and ``stop()``) can wait for the work deterministically with
:meth:`Background.drain`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.desk import Desk, DeskResult
from bot.edge import WorkspacePort
from channels.slack import blocks
from channels.slack.commands import NOT_AN_AGENT, EscalaCommand
from channels.slack.config import SlackConfig
from channels.slack.workspace import SlackWorkspace

log = logging.getLogger(__name__)

#: A plain message, or a thread reply also sent to the channel.
RELAYED_SUBTYPES = (None, "thread_broadcast")
#: A message with files attached: its text is relayed, the files are not.
FILE_SHARE = "file_share"
FILES_HINT = (
    "Files are not sent to the customer, only text: paste what they need to read, "
    "or a link they can open."
)
EDIT_HINT = (
    "Edits are not relayed: the customer already has your first version. "
    "Send the correction as a new reply."
)
#: How long a Slack event id is remembered, to process a retried delivery once.
EVENT_TTL_SECONDS = 3600


class Background:
    """Tasks started after an ack; kept so they are awaited, never garbage collected."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack listener work failed", exc_info=task.exception())

    async def drain(self, within: float | None = None) -> None:
        """Wait until no work is left (work may start more work); past ``within``
        seconds (a stopping server's budget), cancel what is still running."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._tasks:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            # wait, not gather: a timeout must not cancel the work before it is counted
            await asyncio.wait(set(self._tasks), timeout=left)
        if not self._tasks:
            return
        running = list(self._tasks)
        log.warning(
            "%d Slack action(s) still running after %.1fs of stopping; cancelled "
            "(their agents may need to repeat them)",
            len(running),
            within,
        )
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


@dataclass(frozen=True)
class Click:
    """A button press on a ticket card."""

    action_id: str
    number: int
    user: str
    channel: str
    message_ts: str
    trigger_id: str


def parse_click(body: dict[str, Any]) -> Click | None:
    try:
        action = body["actions"][0]
        value = str(action["value"])
        if not value.isdigit() or action["action_id"] not in blocks.ACTIONS:
            return None
        return Click(
            action_id=str(action["action_id"]),
            number=int(value),
            user=str(body["user"]["id"]),
            channel=str(body["channel"]["id"]),
            message_ts=str(body["container"].get("message_ts", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class Escalation:
    number: int
    channel: str
    user: str
    tier: str
    reason: str


def parse_escalation(body: dict[str, Any]) -> Escalation | None:
    try:
        view = body["view"]
        meta = json.loads(view["private_metadata"])
        values = view["state"]["values"]
        selected = values[blocks.TIER_BLOCK][blocks.TIER_INPUT].get("selected_option") or {}
        number = str(meta["ticket"])
        if not number.isdigit():
            return None
        return Escalation(
            number=int(number),
            channel=str(meta["channel"]),
            user=str(body["user"]["id"]),
            tier=str(selected.get("value", "")),
            reason=str(values[blocks.REASON_BLOCK][blocks.REASON_INPUT].get("value") or ""),
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


async def is_click(body: dict[str, Any]) -> bool:
    """Bolt matcher: a malformed action matches no listener, so Bolt answers 404."""
    return parse_click(body) is not None


async def is_escalation(body: dict[str, Any]) -> bool:
    return parse_escalation(body) is not None


class AgentActions:
    """Bolt listeners (arguments are injected by name) for cards, modals, threads and
    the ``/escala`` command."""

    def __init__(
        self, config: SlackConfig, desk: Desk, workspace: SlackWorkspace, port: WorkspacePort
    ) -> None:
        self.config = config
        self.desk = desk
        self.workspace = workspace
        self.port = port
        self.background = Background()
        self.command = EscalaCommand(config, desk, workspace)

    def agent_of(self, user: str) -> str | None:
        return self.config.agents.get(user)

    async def _refuse_stranger(self, channel: str, user: str, thread_ts: str | None = None) -> None:
        await self.workspace.tell(channel, user, NOT_AN_AGENT, thread_ts)

    # -- card buttons -------------------------------------------------------------------

    async def on_click(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = parse_click(body)
        assert click is not None  # the matcher let it through
        self.background.spawn(self._click(click))

    async def _click(self, click: Click) -> None:
        agent = self.agent_of(click.user)
        if agent is None:
            await self._refuse_stranger(click.channel, click.user)
            return
        if click.action_id == blocks.ESCALATE:
            await self._open_escalation(click, agent)
            return
        act = {
            blocks.CLAIM: self.desk.claim,
            blocks.RESOLVE: self.desk.resolve,
            blocks.RELEASE: self.desk.release,
        }[click.action_id]
        result = await act(agent, click.number)
        await self._report(result, click.channel, click.user)

    async def _open_escalation(self, click: Click, agent: str) -> None:
        ticket = await self.desk.ticket(click.number)
        if ticket is None:
            await self.workspace.tell(click.channel, click.user, f"No ticket #{click.number}.")
            return
        suggested = self.desk.tiers.next_tier(ticket.tier)
        tiers = list(self.desk.tiers)
        metadata = {"ticket": str(ticket.number), "channel": click.channel}
        modal = blocks.escalate_modal(
            ticket, tiers, suggested.name if suggested else None, metadata
        )
        await self.workspace.client.views_open(trigger_id=click.trigger_id, view=modal)

    async def on_escalation(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        escalation = parse_escalation(body)
        assert escalation is not None
        errors = {}
        if escalation.tier not in self.desk.tiers:
            errors[blocks.TIER_BLOCK] = "Pick a tier."
        if not escalation.reason.strip():
            errors[blocks.REASON_BLOCK] = "Say why, for the next tier."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        self.background.spawn(self._escalate(escalation))

    async def _escalate(self, e: Escalation) -> None:
        agent = self.agent_of(e.user)
        if agent is None:
            await self._refuse_stranger(e.channel, e.user)
            return
        result = await self.desk.escalate(agent, e.number, e.tier, e.reason.strip())
        await self._report(result, e.channel, e.user)

    async def _report(self, result: DeskResult, channel: str, user: str) -> None:
        """Success shows on the card (the desk tells the workspaces); a refusal is told
        to the agent who tried, and only to them."""
        if not result.ok:
            await self.workspace.tell(channel, user, f"Not done: {result.message}.")

    # -- thread replies -----------------------------------------------------------------

    async def on_message(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        subtype = event.get("subtype")
        edited = subtype == "message_changed"
        if edited:
            # The edited message is nested; an unfurl (links previewed) also arrives as
            # a change, with the same text: only a changed text is an agent's edit.
            previous = event.get("previous_message") or {}
            event = {**(event.get("message") or {}), "channel": event.get("channel")}
            if event.get("text") == previous.get("text"):
                return
        elif subtype not in (*RELAYED_SUBTYPES, FILE_SHARE):
            return  # joins, deletions, channel topics ...: not an agent writing
        if event.get("bot_id"):
            return  # bot posts, ours included
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        user, channel, text = event.get("user"), event.get("channel"), event.get("text", "")
        if not isinstance(user, str):
            return
        if not isinstance(thread_ts, str) or thread_ts == ts or not isinstance(text, str):
            return  # a top-level message: only threads of cards are about tickets
        if not isinstance(channel, str) or self.config.tier_of_channel(channel) is None:
            return
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num); the event id
        # is recorded in the store so every router process relays it once.
        event_id = body.get("event_id")
        if isinstance(event_id, str) and not await self.port.first_time(
            f"slack:event:{event_id}", EVENT_TTL_SECONDS
        ):
            log.info("Slack event %s already processed", event_id)
            return
        if edited:
            self.background.spawn(self._edited(channel, thread_ts, user, text))
        else:
            files = subtype == FILE_SHARE
            self.background.spawn(self._thread_reply(channel, thread_ts, user, text, files))

    async def _edited(self, channel: str, thread_ts: str, user: str, text: str) -> None:
        """The customer already has the first version; say so instead of nothing."""
        number = await self.workspace.ticket_of_thread(channel, thread_ts)
        if number is None or self.agent_of(user) is None:
            return
        if self.config.is_note(blocks.plain(text).strip()):
            return  # a private note: nothing went to the customer
        await self.workspace.tell(channel, user, EDIT_HINT, thread_ts)

    async def _thread_reply(
        self, channel: str, thread_ts: str, user: str, text: str, files: bool = False
    ) -> None:
        number = await self.workspace.ticket_of_thread(channel, thread_ts)
        if number is None:
            return  # a thread on some other message
        agent = self.agent_of(user)
        if agent is None:
            await self._refuse_stranger(channel, user, thread_ts)
            return
        words = blocks.plain(text).strip()
        if self.config.is_note(words):
            note = self.config.strip_note(words)
            if note:
                result = await self.desk.note(agent, number, note)
                await self._report(result, channel, user)
            return
        if files:
            await self.workspace.tell(channel, user, FILES_HINT, thread_ts)
        if not words:
            return
        result = await self.desk.reply(agent, number, words)
        if not result.ok:
            notes = " or ".join(f"`{p}`" for p in self.config.note_prefixes)
            await self.workspace.tell(
                channel,
                user,
                f"Not sent to the customer: {result.message}. "
                f"Start a message with {notes} for a private note.",
                thread_ts,
            )

    # -- /escala ------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.background.spawn(self._command(body, respond))

    async def _command(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        user, text = str(body.get("user_id", "")), str(body.get("text", ""))
        answer = await self.command.answer(self.agent_of(user), text)
        await respond(text=answer, response_type="ephemeral")
