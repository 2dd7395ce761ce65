"""Fake Telegram Bot API and Twilio REST servers on 127.0.0.1, driven by the real
aiogram and twilio clients. They record what the customer would see and can be told
to fail (429 with a retry-after, 500, 403, Twilio's 21610)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Failure:
    status: int
    retry_after: int | None = None
    code: int | None = None
    description: str = "failure"


@dataclass
class Call:
    method: str
    fields: dict[str, str]
    #: False when the fake answered with a failure (an attempt, not a delivery).
    ok: bool = True


@dataclass
class FakeProvider:
    """What both fakes share: the calls seen, the failures to answer with."""

    calls: list[Call] = field(default_factory=list)
    failures: deque[Failure] = field(default_factory=deque)
    #: Answer every send with this failure (after the scripted ones run out).
    always: Failure | None = None
    server: TestServer | None = None

    def fail_next(self, *failures: Failure) -> None:
        self.failures.extend(failures)

    def next_failure(self) -> Failure | None:
        if self.failures:
            return self.failures.popleft()
        return self.always

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self, app: web.Application) -> None:
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


class FakeTelegram(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: Set: every send waits for it before answering (a provider that hangs).
        self.answering = asyncio.Event()
        self.answering.set()
        #: Set once a send waits for :attr:`answering`.
        self.holding = asyncio.Event()

    async def start_fake(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        await self.start(app)

    def sent(self, chat_id: int | str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == "sendMessage"
            and (chat_id is None or c.fields["chat_id"] == str(chat_id))
        ]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        return [c.fields["text"] for c in self.sent(chat_id) if c.ok]

    def buttons(self, call: Call) -> list[tuple[str, str]]:
        markup = json.loads(call.fields.get("reply_markup", "null")) or {"inline_keyboard": []}
        return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        fields = {k: str(v) for k, v in (await request.post()).items()}
        if method == "getUpdates":
            try:
                update = await asyncio.wait_for(self.updates.get(), timeout=0.2)
            except TimeoutError:
                return web.json_response({"ok": True, "result": []})
            return web.json_response({"ok": True, "result": [update]})
        self.calls.append(Call(method, fields))
        if method != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        if not self.answering.is_set():
            self.holding.set()
            await self.answering.wait()
        failure = self.next_failure()
        if failure is not None:
            self.calls[-1].ok = False
            body: dict[str, Any] = {
                "ok": False,
                "error_code": failure.status,
                "description": failure.description,
            }
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return web.json_response(body, status=failure.status)
        message = {
            "message_id": next(self._ids),
            "date": 1700000000,
            "chat": {"id": int(fields["chat_id"]), "type": "private"},
            "text": fields["text"],
        }
        return web.json_response({"ok": True, "result": message})


class FakeTwilio(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        #: Approved Content API templates by Content SID, as WhatsApp shows them.
        self.contents: dict[str, str] = {}

    async def start_fake(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._handle)
        await self.start(app)

    def sent(self, to: str | None = None) -> list[Call]:
        return [c for c in self.calls if to is None or c.fields["To"] == to]

    def texts(self, to: str | None = None) -> list[str]:
        """What the customer read: each body, or the template filled with its variables."""
        return [self._shown(c.fields) for c in self.sent(to) if c.ok]

    def _shown(self, fields: dict[str, str]) -> str:
        if "ContentSid" not in fields:
            return fields["Body"]
        text = self.contents[fields["ContentSid"]]
        for key, value in json.loads(fields.get("ContentVariables", "{}")).items():
            text = text.replace("{{" + key + "}}", value)
        return text

    async def _handle(self, request: web.Request) -> web.Response:
        fields = {k: str(v) for k, v in (await request.post()).items()}
        self.calls.append(Call("Messages.create", fields))
        failure = self.next_failure()
        if failure is not None:
            self.calls[-1].ok = False
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            body = {
                "code": failure.code or failure.status,
                "message": failure.description,
                "more_info": "https://www.twilio.com/docs/errors",
                "status": failure.status,
            }
            return web.json_response(body, status=failure.status, headers=headers)
        sid = f"SM{next(self._ids):032d}"
        return web.json_response(
            {
                "sid": sid,
                "status": "queued",
                "to": fields["To"],
                "from": fields["From"],
                "body": self._shown(fields),
            },
            status=201,
        )
