"""An Escala served over real HTTP with Telegram, SMS and WhatsApp mounted, talking to
the fake providers through the real aiogram and twilio clients."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from bot.app import Escala, build
from bot.clock import FakeClock, SequentialIds, stable_id
from bot.models import Event, Message
from bot.plugins import Plugin
from bot.server import create_app
from bot.settings import default_settings
from bot.store import MemoryStore
from channels.sending import Backoff
from channels.telegram.adapter import TelegramChannel
from channels.telegram.config import TelegramConfig
from channels.twilio.adapter import TwilioChannel, make_client
from channels.twilio.config import TwilioConfig
from tests.channels.fakes import FakeTelegram, FakeTwilio

TOKEN = "123456:TEST-token"
SECRET = "s3cret-token_value"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-auth-token"
PUBLIC = "https://bot.example.com/escala"
SMS_FROM = "+15550001111"
WHATSAPP_FROM = "whatsapp:+15550002222"
MAX_BODY = 64 * 1024


class Harness:
    def __init__(
        self, store: MemoryStore | None = None, *, shutdown_timeout_seconds: float = 30.0
    ) -> None:
        self.shutdown_timeout_seconds = shutdown_timeout_seconds
        self.clock = FakeClock()
        self.store = store or MemoryStore()
        self.escala: Escala = build(
            default_settings(), store=self.store, clock=self.clock, ids=SequentialIds()
        )
        self.fake_telegram = FakeTelegram()
        self.fake_twilio = FakeTwilio()
        self.sleeps: list[float] = []
        self._updates = itertools.count(1000)
        self._sids = itertools.count(1)
        self.validator = RequestValidator(AUTH_TOKEN)
        self.telegram_config = TelegramConfig(token=TOKEN, secret_token=SECRET)
        self.sms_config = twilio_config("sms", SMS_FROM)
        self.whatsapp_config = twilio_config("whatsapp", WHATSAPP_FROM)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def start(self, max_body: int = MAX_BODY) -> None:
        await self.fake_telegram.start_fake()
        await self.fake_twilio.start_fake()
        backoff = Backoff(attempts=4, base=1.0, cap=8.0)
        session = AiohttpSession(api=TelegramAPIServer.from_base(self.fake_telegram.url))
        self.telegram = TelegramChannel(
            self.telegram_config,
            self.escala.edge,
            Bot(TOKEN, session=session),
            backoff=backoff,
            sleep=self.sleep,
        )
        self.sms = self._twilio(self.sms_config, backoff)
        self.whatsapp = self._twilio(self.whatsapp_config, backoff)
        plugins: list[Plugin] = [self.telegram, self.sms, self.whatsapp]
        app = create_app(
            self.escala,
            plugins,
            max_body_bytes=max_body,
            shutdown_timeout_seconds=self.shutdown_timeout_seconds,
        )
        self.http = TestClient(TestServer(app, host="127.0.0.1"))
        await self.http.start_server()

    def _twilio(self, config: TwilioConfig, backoff: Backoff) -> TwilioChannel:
        client = make_client(config)
        client.api.base_url = self.fake_twilio.url
        return TwilioChannel(config, self.escala.edge, client, backoff=backoff, sleep=self.sleep)

    async def close(self) -> None:
        await self.http.close()  # stops the plugins: flush, close the SDK clients
        await self.fake_telegram.close()
        await self.fake_twilio.close()

    async def delivered(self) -> None:
        """Wait until every queued outbound message is sent or finally failed."""
        for channel in (self.telegram, self.sms, self.whatsapp):
            await channel.sender.flush()

    # -- Telegram --------------------------------------------------------------------------

    def update_id(self) -> int:
        return next(self._updates)

    async def telegram_post(
        self, update: Mapping[str, Any] | bytes, secret: str | None = SECRET
    ) -> ClientResponse:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        if isinstance(update, bytes):
            headers["Content-Type"] = "application/json"
            return await self.http.post("/telegram/webhook", data=update, headers=headers)
        return await self.http.post("/telegram/webhook", json=update, headers=headers)

    async def telegram_text(
        self, text: str, chat_id: int = 4242, *, lang: str = "pt-br", update_id: int | None = None
    ) -> ClientResponse:
        update = {
            "update_id": update_id if update_id is not None else self.update_id(),
            "message": message(chat_id, lang, text=text),
        }
        response = await self.telegram_post(update)
        await self.delivered()
        return response

    # -- Twilio ----------------------------------------------------------------------------

    def sid(self) -> str:
        return f"SM{next(self._sids):032x}"

    def sign(self, url: str, fields: Mapping[str, str]) -> str:
        signature: str = self.validator.compute_signature(url, dict(fields))
        return signature

    async def twilio_post(
        self,
        path: str,
        fields: Mapping[str, str],
        *,
        signature: str | None = None,
        signed: bool = True,
    ) -> ClientResponse:
        headers = {}
        if signed:
            headers["X-Twilio-Signature"] = signature or self.sign(PUBLIC + path, fields)
        return await self.http.post(path, data=dict(fields), headers=headers)

    async def sms_text(
        self, text: str, number: str = "+5511912340000", *, channel: str = "sms", sid: str = ""
    ) -> ClientResponse:
        fields = {
            "MessageSid": sid or self.sid(),
            "AccountSid": ACCOUNT_SID,
            "From": number,
            "To": SMS_FROM if channel == "sms" else WHATSAPP_FROM,
            "Body": text,
            "NumMedia": "0",
        }
        response = await self.twilio_post(f"/twilio/{channel}", fields)
        await self.delivered()
        return response

    # -- the store, as agents and KPIs see it ----------------------------------------------

    async def events(self, channel: str, address: str) -> list[Event]:
        return await self.store.events(conversation_id=stable_id("cnv", channel, address))

    async def transcript(self, channel: str, address: str) -> list[Message]:
        return await self.store.transcript(stable_id("cnv", channel, address))

    async def snapshot(self) -> tuple[list[Event], dict[str, list[Message]]]:
        events = await self.store.events()
        ids = {e.conversation_id for e in events if e.conversation_id}
        return events, {i: await self.store.transcript(i) for i in sorted(ids)}


def twilio_config(channel: str, number: str) -> TwilioConfig:
    return TwilioConfig(
        channel=channel,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=number,
        public_base_url=PUBLIC,
        webhook_path=f"/twilio/{channel}",
        status_path=f"/twilio/{channel}/status",
    )


def message(
    chat_id: int, lang: str = "pt-br", chat_type: str = "private", **content: Any
) -> dict[str, Any]:
    """A Telegram message object from a user (``text=...``, ``photo=[...]`` ...)."""
    return {
        "message_id": 1,
        "date": 1700000000,
        "chat": {"id": chat_id, "type": chat_type, "first_name": "Rita"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Rita", "language_code": lang},
        **content,
    }
