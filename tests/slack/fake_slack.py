"""A fake Slack Web API on loopback: the real ``AsyncWebClient`` talks to it, and
every call is recorded so tests assert on what Slack (and so agents) received."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.waits import PATIENCE

BOT_USER = "UBOT"
TEAM = "T0TEAM"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    #: Methods answered once with 429 (``Retry-After: 0``) before succeeding.
    rate_limit_once: set[str] = field(default_factory=set)
    #: Methods that always fail with this HTTP status (500, 503 ...).
    broken: dict[str, int] = field(default_factory=dict)
    #: Methods that answer ``ok: false`` with this error.
    refuse: dict[str, str] = field(default_factory=dict)
    #: Methods that answer nothing until ``release`` is set (a hung Slack API).
    hang: set[str] = field(default_factory=set)
    held: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    #: Socket Mode: the app's WebSocket, and the envelope ids it acknowledged.
    socket: web.WebSocketResponse | None = None
    acks: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    #: Where ``apps.connections.open`` sends the app (default: this fake's own socket).
    socket_url: str | None = None
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)  # getPermalink is a GET
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_get("/link", self._socket)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close()

    # -- what tests look at ---------------------------------------------------------------

    def of(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def posted(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def texts(self, method: str) -> list[str]:
        return [str(a.get("text", "")) for a in self.of(method)]

    def everything_sent(self) -> str:
        """Every argument of every call, serialized: for "never appears anywhere" checks."""
        return json.dumps([c.args for c in self.calls], ensure_ascii=False)

    def clear(self) -> None:
        self.calls.clear()

    # -- the API ---------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        if request.method == "GET":
            parsed: dict[str, Any] = dict(request.query)
        elif request.content_type == "application/json":
            parsed = json.loads(raw) if raw else {}
        else:
            parsed = dict(parse_qsl(raw))
        for key in ("blocks", "view"):
            if isinstance(parsed.get(key), str):
                parsed[key] = json.loads(parsed[key])
        return parsed

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        if method in self.hang:
            self.held.append(method)
            await self.release.wait()
        if method in self.rate_limit_once:
            self.rate_limit_once.discard(method)
            self.calls.append(Call(f"{method}:429", args))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"}
            )
        if method in self.broken:
            self.calls.append(Call(f"{method}:{self.broken[method]}", args))
            return web.json_response({"ok": False}, status=self.broken[method])
        if method in self.refuse:
            answer: dict[str, Any] = {"ok": False, "error": self.refuse[method]}
        else:
            answer = self._answer(method, args)
        self.calls.append(Call(method, args, answer))
        return web.json_response(answer)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "B0BOT", "team_id": TEAM}
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {}}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": "1700000000.999999"}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0VIEW"}}
        if method == "apps.connections.open":
            url = self.socket_url or f"ws://127.0.0.1:{self.server.port}/link"  # type: ignore[union-attr]
            return {"ok": True, "url": url}
        if method == "chat.getPermalink":
            ts = str(args["message_ts"]).replace(".", "")
            link = f"https://escala.slack.com/archives/{args['channel']}/p{ts}"
            return {"ok": True, "channel": args["channel"], "permalink": link}
        return {"ok": False, "error": "unknown_method"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        self.socket = socket
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                envelope_id = json.loads(message.data).get("envelope_id")
                if envelope_id:
                    self.acks.put_nowait(str(envelope_id))
        return socket

    async def push(self, envelope_id: str, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope over Socket Mode; returns once the app acknowledged it."""
        assert self.socket is not None, "the app has not connected"
        await self.socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        return await asyncio.wait_for(self.acks.get(), timeout=PATIENCE)

    async def _respond(self, request: web.Request) -> web.Response:
        self.calls.append(Call("response_url", await request.json()))
        return web.Response(text="ok")
