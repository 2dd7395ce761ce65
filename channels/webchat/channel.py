"""The web chat channel: the widget's files, its session endpoint, the WebSocket (and
SSE + POST fallback), and the sender that reaches a visitor's sockets on any process.

Delivery: the transcript is the truth, pub/sub is the doorbell. Every reply the core
sends to a visitor is already in the transcript (the outbox writes it first); the
sender only publishes "look again" on the visitor's topic. Each open connection, on
whatever process, listens to its visitor's topic and sends the transcript lines after
the last one it sent, so lines arrive in transcript order, a signal lost to a
reconnect costs nothing, and a client that reconnects with the last id it has gets
exactly what it missed (:meth:`~bot.edge.ChannelPort.replay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from bot.edge import ChannelPort
from bot.errors import StoreError
from bot.models import LOCALES, Choice, Direction, InboundMessage, Message, OutboundMessage
from bot.turn import Outcome
from channels.webchat import identity
from channels.webchat.config import WebchatConfig
from channels.webchat.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_TRY_AGAIN,
    CLOSE_UNSUPPORTED,
    Ping,
    ProtocolError,
    Send,
    choices_frame,
    dumps,
    message_frame,
    parse_frame,
)

log = logging.getLogger(__name__)

CHANNEL = "webchat"
COOKIE = "escala_webchat"
COOKIE_DAYS = 365
#: How many recent lines the sender looks through to name the line it announces.
RECENT_LINES = 20
#: Lines a connection remembers having sent (so a replay never repeats one).
SENT_MEMORY = 500

NOTICES = {
    "rate_limited": {
        "pt-BR": (
            "Você enviou muitas mensagens em pouco tempo. Aguarde um minutinho e tente de "
            "novo, por favor."
        ),
        "en": "You've sent a lot of messages in a short time. Please wait a minute and try again.",
    },
    "too_long": {
        "pt-BR": "Sua mensagem é longa demais (máximo de {max} caracteres). Pode dividi-la?",
        "en": "Your message is too long (at most {max} characters). Could you split it up?",
    },
}

#: The demo page (``demo_page = true``): a page of "the company's site" with the tag.
DEMO_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Escala web chat demo</title>
<link rel="stylesheet" href="{path}/demo.css">
</head>
<body>
<main>
<h1>Escala</h1>
<p>Este é um site de exemplo: o balão no canto é o chat. Pergunte, por exemplo,
"qual o prazo de entrega?" ou peça "atendente".</p>
<p>An example site: the bubble in the corner is the chat. Ask, for example,
"how long does delivery take?" or say "talk to a human".</p>
</main>
<script src="{path}/webchat.js" data-title="{title}"></script>
</body>
</html>
"""

DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> bytes:
    return resources.files("channels.webchat").joinpath("static", name).read_bytes()


def topic(address: str) -> str:
    return f"webchat:{address}"


class WebchatSender:
    """The :class:`~bot.ports.ChannelSender` for the web chat: rings the visitor's
    doorbell on every process (the reply itself is already in the transcript).

    Choices are not in the transcript, so the signal carries them with the id of the
    line they belong to (the latest line with this text: the outbox has just written
    it)."""

    def __init__(self, port: ChannelPort) -> None:
        self._port = port

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        signal: dict[str, Any] = {"k": "out"}
        try:
            if message.choices:
                replay = await self._port.replay(CHANNEL, address, None, limit=RECENT_LINES)
                for line in reversed(replay.messages):
                    if line.direction is not Direction.INBOUND and line.text == message.text:
                        signal["id"] = line.id
                        signal["choices"] = choices_frame(message.choices)
                        break
            await self._port.publish(topic(address), dumps(signal))
        except StoreError as e:
            # Not lost: the line is in the transcript and the next connection (or the
            # next signal) sends it; only the buttons of this line may be missing.
            log.warning("web chat signal not published: %s", e)


class Connection:
    """One open socket or SSE stream of a visitor: sends what the transcript has after
    the last line it sent, whenever its topic rings."""

    def __init__(
        self, port: ChannelPort, address: str, write: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        self.port = port
        self.address = address
        self._write = write
        self._last: str | None = None
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._choices: dict[str, list[dict[str, str]]] = {}
        self._catching_up = asyncio.Lock()
        self._writing = asyncio.Lock()
        self._pump: asyncio.Task[None] | None = None
        self._listening: Any = None

    async def write(self, frame: dict[str, Any]) -> None:
        async with self._writing:
            await self._write(frame)

    async def open(self, last: str | None) -> None:
        """Listen first, then replay: a reply written in between is both replayed and
        signalled, and sent once."""
        self._listening = await self.port.listen(topic(self.address))
        self._last = last
        await self.catch_up(initial=True)
        await self.ticket()
        self._pump = asyncio.create_task(self._run(), name="webchat-connection")

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._listening is not None:
            self._listening.close()

    async def _run(self) -> None:
        async for payload in self._listening:
            try:
                await self.on_signal(json.loads(payload))
            except (ConnectionError, RuntimeError):
                return  # the client went away; the handler closes the connection
            except StoreError as e:
                log.warning("web chat catch-up failed: %s", e)

    async def on_signal(self, signal: dict[str, Any]) -> None:
        kind = signal.get("k")
        if kind == "typing":
            await self.write({"t": "typing", "on": bool(signal.get("on"))})
        elif kind == "out":
            line_id, choices = signal.get("id"), signal.get("choices")
            if isinstance(line_id, str) and choices:
                self._choices[line_id] = choices
                if line_id in self._sent:  # sent before this signal came: add the buttons
                    await self.write({"t": "choices", "id": line_id, "choices": choices})
                    del self._choices[line_id]
            sent = await self.catch_up()
            if any(line.direction is Direction.AGENT for line in sent):
                await self.ticket()  # an agent replied: claimed, in progress
        elif kind == "turn":
            await self.catch_up()
            await self.write({"t": "typing", "on": False})
            await self.ticket()

    async def catch_up(self, *, initial: bool = False) -> list[Message]:
        """Send the lines after the last one sent; the lines it sent."""
        async with self._catching_up:
            replay = await self.port.replay(CHANNEL, self.address, self._last)
            lines = [line for line in replay.messages if line.id not in self._sent]
            for index, line in enumerate(lines):
                choices: tuple[Choice, ...] = ()
                last_line = index == len(lines) - 1
                if initial and last_line and line.direction is not Direction.INBOUND:
                    choices = replay.choices  # still waiting for an answer: show buttons
                frame = message_frame(line, self.address, choices)
                pending = self._choices.pop(line.id, None)
                if pending:
                    frame["choices"] = pending
                await self.write(frame)
                self._sent[line.id] = None
                if len(self._sent) > SENT_MEMORY:
                    self._sent.popitem(last=False)
                self._last = line.id
            if not replay.found and replay.messages:
                self._last = replay.messages[-1].id
            return lines

    async def ticket(self) -> None:
        ticket = await self.port.current_ticket(CHANNEL, self.address)
        if ticket is None:
            await self.write({"t": "ticket"})
            return
        frame = {"t": "ticket", "number": ticket.number, "state": str(ticket.state)}
        await self.write({**frame, "tier": ticket.tier})


class WebChat:
    """The web chat plug-in (see the module docstring and README "Web chat")."""

    name = CHANNEL

    def __init__(self, config: WebchatConfig, port: ChannelPort) -> None:
        self.config = config
        self.port = port
        self.sender = WebchatSender(port)
        port.register_sender(CHANNEL, self.sender)
        self._files = {
            "webchat.js": (_static("webchat.js"), "application/javascript"),
            "webchat.css": (_static("webchat.css"), "text/css"),
            "demo.css": (_static("demo.css"), "text/css"),
        }
        self._origins = set(config.allowed_origins)
        if config.public_origin:
            self._origins.add(config.public_origin)
        self._live: set[web.WebSocketResponse] = set()
        self._streams: set[Any] = set()
        # Frames bigger than the longest allowed message (4 bytes a character, as
        # JSON escapes) are refused by aiohttp itself (close 1009).
        self.max_frame_bytes = config.max_message_chars * 6 + 1024

    # -- plug-in ------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        p = self.config.path
        routes = [
            web.get(f"{p}/webchat.js", self._file),
            web.get(f"{p}/webchat.css", self._file),
            web.post(f"{p}/session", self.session),
            web.options(f"{p}/session", self.preflight),
            web.get(f"{p}/ws", self.websocket),
            web.get(f"{p}/events", self.events),
            web.post(f"{p}/messages", self.messages),
            web.options(f"{p}/messages", self.preflight),
        ]
        if self.config.demo_page:
            routes += [web.get(f"{p}/demo", self.demo), web.get(f"{p}/demo.css", self._file)]
        return routes

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """Close every socket with 1001 (the widget reconnects, to another process)."""
        for ws in list(self._live):
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server going away")
        for stream in list(self._streams):
            stream.stop_streaming()

    # -- files ----------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        body, content_type = self._files[request.path.rsplit("/", 1)[1]]
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers={
                "Cache-Control": "public, max-age=300",
                "X-Content-Type-Options": "nosniff",
                # The widget is loaded by other sites' pages.
                "Access-Control-Allow-Origin": "*",
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    async def demo(self, request: web.Request) -> web.Response:
        lang = "en" if request.query.get("lang") == "en" else "pt-BR"
        title = self.config.title or "Escala"
        page = DEMO_PAGE.format(path=self.config.path, title=_attr(title), lang=lang)
        return web.Response(
            text=page,
            content_type="text/html",
            headers={
                "Content-Security-Policy": DEMO_CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    # -- origins and CORS -----------------------------------------------------------------

    def _origin(self, request: web.Request) -> tuple[str | None, bool]:
        """The request's Origin header and whether it may use the chat (the server's
        own origin always may)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return None, False
        normalized = origin.lower().rstrip("/")
        own = str(request.url.origin()).lower()
        return origin, normalized in self._origins or normalized == own

    def _cors(self, origin: str | None, *, credentials: bool = False) -> dict[str, str]:
        if origin is None:
            return {}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    async def preflight(self, request: web.Request) -> web.Response:
        # Answered for any origin: the request itself is refused (403, readable by the
        # widget, which then says why) when the origin is not allowed.
        origin = request.headers.get("Origin")
        return web.Response(
            status=204,
            headers={
                **self._cors(origin, credentials=request.path.endswith("/session")),
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    # -- who is chatting ------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        """A connection token for the visitor of this cookie, or for a site user whose id
        the site's back end signed (see :mod:`channels.webchat.identity`)."""
        origin, allowed = self._origin(request)
        if not allowed:
            # Missing too: a browser always sends Origin on a POST.
            log.info("web chat session refused: origin %r not allowed", origin)
            return _refuse(
                403,
                "origin",
                "this site may not use the chat",
                self._cors(origin, credentials=True),
            )
        cors = self._cors(origin, credentials=True)
        if await self._over_ip_limit(request):
            return _refuse(429, "rate_limited", NOTICES["rate_limited"]["en"], cors)
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _refuse(400, "malformed", "expected a JSON object", cors)
        locale = body.get("locale")
        if locale not in LOCALES:
            locale = self.config.default_locale
        user_id, user_hash = body.get("user_id"), body.get("user_hash")
        response = web.json_response(headers=cors)
        if user_id is not None or user_hash is not None:
            if not (
                isinstance(user_id, str)
                and isinstance(user_hash, str)
                and identity.verify_user(self.config.identity_secret, user_id, user_hash)
            ):
                log.warning("web chat session refused: identity signature does not match")
                return _refuse(403, "identity", "the user's signature does not match", cors)
            address = f"u:{user_id}"
        else:
            visitor = identity.visitor_from_cookie(self.config.secret, request.cookies.get(COOKIE))
            if visitor is None:
                visitor = identity.new_visitor_id()
            self._set_cookie(response, visitor)
            address = f"v:{visitor}"
        now = int(self.port.now().timestamp())
        claims = identity.Claims(address, str(locale), now + identity.TOKEN_SECONDS)
        response.text = dumps(
            {
                "token": identity.issue_token(self.config.secret, claims),
                "locale": locale,
                "max_message_chars": self.config.max_message_chars,
            }
        )
        return response

    def _set_cookie(self, response: web.Response, visitor: str) -> None:
        secure = self.config.cookie_secure
        response.set_cookie(
            COOKIE,
            identity.visitor_cookie(self.config.secret, visitor),
            max_age=COOKIE_DAYS * 86400,
            path=self.config.path,
            httponly=True,
            secure=secure,
            # Cross-site embedding needs SameSite=None (https only); partitioned per
            # top-level site, as browsers now require for third-party cookies.
            samesite="None" if secure else "Lax",
            partitioned=True if secure else None,
        )

    def _claims(self, request: web.Request) -> identity.Claims | None:
        now = int(self.port.now().timestamp())
        return identity.read_token(self.config.secret, request.query.get("token"), now)

    async def _over_ip_limit(self, request: web.Request) -> bool:
        hits = await self.port.hit(f"webchat:ip:{request.remote}", 60)
        return hits > self.config.ip_requests_per_minute

    # -- a visitor's message ----------------------------------------------------------------

    async def accept(
        self, claims: identity.Claims, send: Send, request: web.Request
    ) -> dict[str, Any]:
        """Hand a visitor's message to the core; the frame to answer with (an ack, or a
        polite notice). Raises StoreError when it was not stored (the client retries)."""
        if len(send.text) > self.config.max_message_chars:
            return self._notice(
                "too_long", claims.locale, send.cid, max=self.config.max_message_chars
            )
        visitor_hits = await self.port.hit(f"webchat:visitor:{claims.address}", 60)
        if visitor_hits > self.config.visitor_messages_per_minute or await self._over_ip_limit(
            request
        ):
            log.info("web chat message refused: rate limit")
            return self._notice("rate_limited", claims.locale, send.cid)
        address = claims.address
        await self.port.publish(topic(address), dumps({"k": "typing", "on": True}))
        try:
            outcome = await self.port.receive(
                InboundMessage(
                    channel=CHANNEL,
                    address=address,
                    text=send.text,
                    provider_message_id=f"{address}/{send.cid}",
                    received_at=self.port.now(),
                    locale=claims.locale,
                    choice_id=send.choice,
                )
            )
        finally:
            # Every connection of this visitor (other tabs, other processes) shows the
            # message, stops the typing dots and refreshes the ticket.
            with contextlib.suppress(StoreError):
                await self.port.publish(topic(address), dumps({"k": "turn"}))
        if outcome is Outcome.DUPLICATE:
            log.info("web chat message %s was a retry", send.cid)
        return {"t": "ack", "cid": send.cid}

    def _notice(self, code: str, locale: str, cid: str, **values: Any) -> dict[str, Any]:
        text = NOTICES[code].get(locale) or NOTICES[code]["en"]
        return {"t": "notice", "code": code, "text": text.format(**values), "cid": cid}

    # -- WebSocket ----------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin, allowed = self._origin(request)
        if not allowed:
            log.info("web chat socket refused: origin %r not allowed", origin)
            return _refuse(403, "origin", "this site may not use the chat")
        claims = self._claims(request)
        if claims is None:
            return _refuse(403, "token", "missing, forged or expired token")
        last = request.query.get("last") or None
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=self.max_frame_bytes)
        await ws.prepare(request)
        self._live.add(ws)
        connection = Connection(self.port, claims.address, lambda f: ws.send_str(dumps(f)))
        try:
            await connection.open(last)
            await self._read(ws, connection, claims, request)
        except StoreError as e:
            log.warning("web chat socket closed: store unavailable: %s", e)
            await ws.close(code=CLOSE_TRY_AGAIN, message=b"try again later")
        except (ConnectionError, asyncio.CancelledError):
            pass  # the visitor went away (or the server stops)
        finally:
            self._live.discard(ws)
            await connection.close()
        return ws

    async def _read(
        self,
        ws: web.WebSocketResponse,
        connection: Connection,
        claims: identity.Claims,
        request: web.Request,
    ) -> None:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await ws.close(code=CLOSE_UNSUPPORTED, message=b"text frames only")
                return
            if message.type is not WSMsgType.TEXT:
                return  # ERROR: aiohttp closed it (1009 for a frame too big)
            try:
                frame = parse_frame(message.data)
            except ProtocolError as e:
                log.info("web chat socket closed: %s", e.reason)
                await ws.close(code=e.code, message=e.reason.encode()[:120])
                return
            if isinstance(frame, Ping):
                await connection.write({"t": "pong"})
                continue
            await connection.write(await self.accept(claims, frame, request))

    # -- SSE + POST fallback ----------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        from aiohttp_sse import sse_response  # only when a client falls back to SSE

        origin, allowed = self._origin(request)
        if origin is not None and not allowed:
            return _refuse(403, "origin", "this site may not use the chat")
        claims = self._claims(request)
        if claims is None:
            return _refuse(403, "token", "missing, forged or expired token", self._cors(origin))
        last = request.headers.get("Last-Event-ID") or request.query.get("last") or None
        async with sse_response(request, headers=self._cors(origin)) as stream:
            self._streams.add(stream)

            async def write(frame: dict[str, Any]) -> None:
                line_id = frame.get("id") if frame.get("t") == "m" else None
                await stream.send(dumps(frame), id=line_id)

            connection = Connection(self.port, claims.address, write)
            try:
                await connection.open(last)
                await stream.wait()
            finally:
                self._streams.discard(stream)
                await connection.close()
        return stream

    async def messages(self, request: web.Request) -> web.Response:
        origin, allowed = self._origin(request)
        if origin is not None and not allowed:
            return _refuse(403, "origin", "this site may not use the chat")
        cors = self._cors(origin)
        claims = self._claims(request)
        if claims is None:
            return _refuse(403, "token", "missing, forged or expired token", cors)
        body = await request.read()
        if len(body) > self.max_frame_bytes:
            return _refuse(413, "too_big", "frame too big", cors)
        try:
            frame = parse_frame(body.decode("utf-8", "replace"), default_type="msg")
        except ProtocolError as e:
            return _refuse(400, "malformed", e.reason, cors)
        if isinstance(frame, Ping):
            return web.json_response({"t": "pong"}, headers=cors)
        answer = await self.accept(claims, frame, request)
        status = {"rate_limited": 429, "too_long": 413}.get(answer.get("code", ""), 200)
        return web.Response(
            text=dumps(answer), status=status, content_type="application/json", headers=cors
        )


def _refuse(
    status: int, error: str, text: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=dumps({"error": error, "text": text}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _attr(text: str) -> str:
    """``text`` safe inside a double-quoted HTML attribute."""
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
