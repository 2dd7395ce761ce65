"""The Slack plugin: a Bolt ``AsyncApp`` wired to the desk, mounted on the shared
aiohttp server (HTTP Events API, signed requests) or connected over Socket Mode.

Bolt is configured with ``process_before_response=True`` on purpose: every listener
acks first and hands its work to :class:`~channels.slack.listeners.Background`, so the
HTTP answer still leaves in milliseconds, while the work stays in tasks we own (Bolt's
own lazy mode would run it in tasks nobody can wait for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.edge import Edge
from bot.errors import ConfigError
from channels.slack import blocks
from channels.slack.config import SlackConfig
from channels.slack.listeners import AgentActions, Background, is_click, is_escalation
from channels.slack.payloads import malformed
from channels.slack.workspace import SlackWorkspace, web_client

log = logging.getLogger(__name__)

#: Slack payloads are a few KB; anything bigger is not Slack.
MAX_BODY_BYTES = 256 * 1024
COMMAND = "/escala"
#: How long a request signature is remembered: Slack's 5-minute window, and a margin.
REPLAY_SECONDS = 6 * 60


def build_bolt_app(config: SlackConfig, client: AsyncWebClient, actions: AgentActions) -> AsyncApp:
    app = AsyncApp(
        name="escala",
        client=client,
        signing_secret=config.signing_secret,
        request_verification_enabled=config.mode == "http",
        process_before_response=True,
    )
    for action_id in blocks.ACTIONS:
        app.action(action_id, matchers=[is_click])(actions.on_click)
    app.view_submission(blocks.ESCALATE_VIEW, matchers=[is_escalation])(actions.on_escalation)
    app.event("message")(actions.on_message)
    app.command(COMMAND)(actions.on_command)
    return app


class SlackPlugin:
    """What the server mounts: ``name``, ``routes()``, ``start()``, ``stop()``."""

    name = "slack"

    def __init__(
        self,
        config: SlackConfig,
        client: AsyncWebClient,
        app: AsyncApp,
        actions: AgentActions,
        source: str = "settings",
    ) -> None:
        self.config = config
        self.client = client
        self.app = app
        self.actions = actions
        self.source = source
        self._socket: AsyncSocketModeHandler | None = None

    @property
    def background(self) -> Background:
        return self.actions.background

    def routes(self) -> Sequence[web.RouteDef]:
        if self.config.mode != "http":
            return ()
        return (web.post(self.config.events_path, self.handle),)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Events, interactivity and the slash command all arrive here, signed.

        The signature is checked before anything is parsed (Bolt checks it again):
        a forged request is a 401 whatever it contains, a genuine but broken one a 400,
        and only well-formed payloads reach Bolt, whose internals index them blindly.
        """
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.Response(status=413, text="payload too large")
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return web.Response(status=413, text="payload too large")
        if not self._signed(request, raw):
            log.warning("Slack request with a bad or missing signature refused")
            return web.Response(status=401, text="invalid signature")
        # Replay protection (issue 11): a signed request is accepted once. Slack
        # refuses timestamps older than 5 minutes; the signature (over timestamp and
        # body) is remembered a little longer, in the store, so no process takes it twice.
        signature = request.headers.get("X-Slack-Signature", "")
        if not await self.actions.port.first_time(f"slack:signature:{signature}", REPLAY_SECONDS):
            log.warning("replayed Slack request ignored")
            return web.Response(status=200, text="")
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError, KeyError):
            # Bolt parses and reads the context at once: a JSON list or a broken form
            # fails in there, before ``malformed`` could look at it.
            return web.Response(status=400, text="malformed payload")
        problem = malformed(bolt_request.body)
        if problem is not None:
            log.warning("malformed Slack payload refused: %s", problem)
            return web.Response(status=400, text=f"malformed payload: {problem}")
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    def _signed(self, request: web.Request, raw: bytes) -> bool:
        verifier = SignatureVerifier(self.config.signing_secret or "")
        try:
            return verifier.is_valid(
                body=raw,
                timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
                signature=request.headers.get("X-Slack-Signature", ""),
            )
        except ValueError:  # a timestamp that is not a number
            return False

    async def start(self) -> None:
        """Check the bot token now (a bad one stops start-up), then connect Socket Mode.

        Both are bounded by ``connect_timeout_seconds``: an unreachable Slack stops
        start-up with the key and the reason instead of hanging (the Socket Mode client
        would retry for ever). Once connected, the client reconnects by itself.
        """
        timeout = self.config.connect_timeout_seconds
        try:
            await asyncio.wait_for(self.client.auth_test(), timeout)
        except SlackApiError as e:
            reason = f"Slack refused the bot token: {e.response.get('error', 'unknown error')}"
            raise ConfigError(self.source, "slack.bot_token_env", reason) from e
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise ConfigError(
                self.source, "slack.bot_token_env", _unreachable("Web API", timeout, e)
            ) from e
        if self.config.mode == "socket":
            self._socket = AsyncSocketModeHandler(
                self.app, app_token=self.config.app_token, web_client=self.client
            )
            try:
                await asyncio.wait_for(self._socket.connect_async(), timeout)  # type: ignore[no-untyped-call]
            except TimeoutError as e:
                await self._socket.close_async()  # type: ignore[no-untyped-call]
                self._socket = None
                reason = _unreachable("Socket Mode", timeout, e) + " (or the app token was refused)"
                raise ConfigError(self.source, "slack.app_token_env", reason) from e

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        # An agent's action under way finishes, within what is left of the server's
        # stop budget (a hung Slack API must not hold the process past it).
        await self.background.drain(self.actions.port.time_to_stop())


def _unreachable(what: str, timeout: float, error: BaseException) -> str:
    detail = "no answer" if isinstance(error, TimeoutError) else str(error) or type(error).__name__
    return f"cannot reach Slack ({what}) within {timeout:g} s: {detail}"


def slack_plugin(
    config: SlackConfig, edge: Edge, *, client: AsyncWebClient | None = None
) -> SlackPlugin:
    """Attach the Slack workspace to the desk behind ``edge`` and build the plugin.
    ``client`` replaces the real Web API client (tests use a fake Slack)."""
    client = client or web_client(config.bot_token)
    workspace = SlackWorkspace(client, config, edge)
    edge.add_workspace(workspace)
    actions = AgentActions(config, edge.desk, workspace, edge)
    app = build_bolt_app(config, client, actions)
    return SlackPlugin(config, client, app, actions, str(edge.settings.source or "settings"))
