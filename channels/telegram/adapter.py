"""Telegram (aiogram 3): webhook handler, long-polling loop and sender.

It translates and verifies; the engine decides. Text goes out without ``parse_mode``
(customer and agent text is data), split at 4096 characters; choices become inline
keyboard buttons whose ``callback_data`` is the choice id (longer ids than Telegram's
64 bytes are mapped through a store link).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    CallbackQuery,
    Message,
    Update,
)
from aiohttp import web
from pydantic import ValidationError

from bot.edge import ChannelPort
from bot.errors import DeliveryError
from bot.models import InboundMessage, Media, OutboundMessage, normalize_locale
from channels.sending import Backoff, RetryingSender, RetryLater, split_text
from channels.telegram.config import TelegramConfig
from channels.telegram.sends import Keyboard, LeanSends
from channels.telegram.updates import json_body, plain_text

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CALLBACK_LIMIT = 64
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
#: Content other than text: relayed to agents as "[photo]" ... while a ticket is open,
#: else answered politely ("text only") and noted. File ids are never passed on (they
#: open the file with the bot's token).
MEDIA = frozenset(
    {"photo", "sticker", "voice", "video", "video_note", "audio", "document", "animation",
     "location", "venue", "contact", "poll", "dice"}
)  # fmt: skip
HASHED = "~"
#: What Telegram allows in a /start deep-link payload; anything else is not kept.
START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
START_PAYLOAD_ATTRIBUTE = "start_payload"

Part = tuple[str, Keyboard | None]


class TelegramChannel:
    """The Telegram plugin: routes, start/stop, and the channel's sender."""

    name = CHANNEL

    def __init__(
        self,
        config: TelegramConfig,
        port: ChannelPort,
        bot: Bot,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_timeout: int = 30,
    ) -> None:
        self.config = config
        self.port = port
        self.bot = bot
        #: The hot sends without aiogram's per-send validation; aiogram's errors (issue 18).
        self.sends = LeanSends(bot)
        self._sleep = sleep
        self._poll_timeout = poll_timeout
        self.sender: RetryingSender[Part] = RetryingSender(
            CHANNEL,
            render=self._render,
            deliver=self._deliver,
            port=port,
            backoff=backoff,
            sleep=sleep,
            jitter=random.random,
        )
        port.register_sender(CHANNEL, self.sender)
        self._background: set[asyncio.Task[Any]] = set()
        self._polling: asyncio.Task[None] | None = None
        self._stopping = False
        self._waiting_for_updates = False

    @classmethod
    def from_config(cls, config: TelegramConfig, port: ChannelPort) -> TelegramChannel:
        if config.api_base is None:
            return cls(config, port, Bot(config.token))
        server = TelegramAPIServer.from_base(config.api_base)
        return cls(config, port, Bot(config.token, session=AiohttpSession(api=server)))

    # -- Plugin -------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        if self.config.mode != "webhook":
            return ()
        return (web.post(self.config.webhook_path, self.webhook),)

    async def start(self) -> None:
        if self.config.mode == "polling":
            await self.bot.delete_webhook()
            self._polling = asyncio.create_task(self._poll(), name="telegram-polling")
        elif self.config.webhook_url:
            await self.bot.set_webhook(
                self.config.webhook_url,
                secret_token=self.config.secret_token,
                allowed_updates=ALLOWED_UPDATES,
            )

    async def stop(self, flush_timeout: float | None = None) -> None:
        """Stop polling, then deliver what is queued within ``flush_timeout`` seconds
        (default: what is left of the server's shutdown timeout); the rest stays in the
        outbox for the next process."""
        self._stopping = True
        if self._polling is not None:
            if self._waiting_for_updates:
                self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.sender.flush(
            self.port.time_to_stop() if flush_timeout is None else flush_timeout
        )
        await self.bot.session.close()

    # -- inbound ------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        expected = (self.config.secret_token or "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            log.warning("telegram webhook refused: bad or missing secret token")
            return web.Response(status=403, text="forbidden\n")
        try:
            payload = json_body(await request.read(), request.charset)
        except (ValueError, LookupError):  # LookupError: a charset Python does not know
            return web.Response(status=400, text="expected a JSON update\n")
        if (plain := plain_text(payload)) is not None:  # most updates: no pydantic
            if plain.chat_type == "private" and not plain.is_bot:
                await self._receive(
                    plain.update_id,
                    plain.message_id,
                    plain.chat_id,
                    plain.text,
                    plain.language_code,
                    plain.full_name,
                )
            return web.Response(text="ok\n")
        try:
            update = Update.model_validate(payload, context={"bot": self.bot})
        except (ValidationError, ValueError, TypeError):
            # Acknowledged: Telegram would redeliver a malformed update forever.
            log.warning("telegram webhook: not an update, ignored")
            return web.Response(text="ignored\n")
        await self.dispatch(update)
        return web.Response(text="ok\n")

    async def dispatch(self, update: Update) -> None:
        """Hand one update to the engine. Raises on a store failure (not acknowledged)."""
        if update.message is not None:
            await self._message(update.update_id, update.message)
        elif update.callback_query is not None:
            await self._callback(update.update_id, update.callback_query)
        # Edited messages, channel posts, member updates ...: acknowledged, no answer.

    async def _message(self, update_id: int, message: Message) -> None:
        user = message.from_user
        if message.chat.type != "private" or user is None or user.is_bot:
            return
        text = message.text
        media: tuple[Media, ...] = ()
        if text is None:
            kind = getattr(message.content_type, "value", str(message.content_type))
            if kind not in MEDIA:
                return  # service messages (title changed, member joined ...)
            media = (Media(kind, _mime_type(message, kind)),)
            text = message.caption or ""
        await self._receive(
            update_id,
            message.message_id,
            message.chat.id,
            text,
            user.language_code,
            user.full_name,
            media,
        )

    async def _receive(
        self,
        update_id: int,
        message_id: int,
        chat_id: int,
        text: str,
        language_code: str | None,
        full_name: str,
        media: tuple[Media, ...] = (),
    ) -> None:
        """A private chat's message from a person, to the engine."""
        attributes: dict[str, str] = {}
        if not media and (words := text.split(maxsplit=1)) and words[0].split("@")[0] == "/start":
            # A deep link (t.me/<bot>?start=<payload>) or an @botname suffix: still the
            # greeting; a well-formed payload is kept for routing rules' contact conditions.
            if len(words) > 1 and START_PAYLOAD.fullmatch(words[1]):
                attributes[START_PAYLOAD_ATTRIBUTE] = words[1]
            text = "/start"
        await self.port.receive(
            InboundMessage(
                channel=CHANNEL,
                address=str(chat_id),
                text=text,
                provider_message_id=f"u{update_id}",
                received_at=self.port.now(),
                locale=normalize_locale(language_code, self.config.default_locale),
                raw={"update_id": update_id, "message_id": message_id},
                name=full_name,
                media=media,
                attributes=attributes,
            )
        )

    async def _callback(self, update_id: int, query: CallbackQuery) -> None:
        chat = query.message.chat if query.message is not None else None
        if chat is not None and chat.type != "private":
            self._answer_callback(query.id)
            return
        address = str(chat.id if chat is not None else query.from_user.id)
        choice_id = await self._choice_id(query.data or "")
        if choice_id is not None:
            await self.port.receive(
                InboundMessage(
                    channel=CHANNEL,
                    address=address,
                    text=_button_label(query) or choice_id,
                    provider_message_id=f"u{update_id}",
                    received_at=self.port.now(),
                    locale=normalize_locale(
                        query.from_user.language_code, self.config.default_locale
                    ),
                    raw={"update_id": update_id, "callback_query": query.id},
                    choice_id=choice_id,
                    name=query.from_user.full_name,
                )
            )
        # Answered after the message is stored; without an answer the button spins.
        self._answer_callback(query.id)

    def _answer_callback(self, query_id: str) -> None:
        async def answer() -> None:
            try:
                await self.sends.answer_callback_query(query_id)
            except TelegramAPIError as e:  # the choice is handled; only the spinner stays
                log.warning("answerCallbackQuery failed: %s", e)

        task = asyncio.create_task(answer())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _poll(self) -> None:
        """Long polling for development: the same dispatch as the webhook."""
        offset: int | None = None
        failures = 0
        while not self._stopping:
            try:
                self._waiting_for_updates = True
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self._poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramAPIError as e:
                failures += 1
                log.warning("telegram polling failed (%s); retrying", e)
                await self._sleep(min(30.0, 2.0**failures))
                continue
            finally:
                self._waiting_for_updates = False
            failures = 0
            for update in updates:
                try:
                    await self.dispatch(update)
                except Exception:  # not confirmed: get_updates hands it back next time
                    log.exception("telegram update %s not processed", update.update_id)
                    await self._sleep(1.0)
                    break
                offset = update.update_id + 1

    # -- outbound -----------------------------------------------------------------------

    async def _render(self, message: OutboundMessage, locale: str) -> Sequence[Part]:
        markup = None
        if message.choices:
            markup = self.sends.keyboard(
                [[(c.label, await self._callback_data(c.id))] for c in message.choices]
            )
        chunks = split_text(message.text, TEXT_LIMIT)
        parts: list[Part] = [(chunk, None) for chunk in chunks[:-1]]
        parts.append((chunks[-1] or "…", markup))
        return parts

    async def _deliver(self, address: str, part: Part) -> None:
        text, markup = part
        try:
            await self.sends.send_message(int(address), text, markup)
        except TelegramRetryAfter as e:
            raise RetryLater(CHANNEL, "rate limited (429)", float(e.retry_after)) from e
        except TelegramForbiddenError as e:
            await self._unreachable(address)
            raise DeliveryError(CHANNEL, f"forbidden: {e.message}", permanent=True) from e
        except (TelegramServerError, TelegramNetworkError) as e:
            raise RetryLater(CHANNEL, f"{type(e).__name__}: {e.message}") from e
        except TelegramAPIError as e:
            raise DeliveryError(CHANNEL, f"{type(e).__name__}: {e.message}", permanent=True) from e

    async def _unreachable(self, address: str) -> None:
        await self.port.update_contact(CHANNEL, address, unreachable=True)

    async def _callback_data(self, choice_id: str) -> str:
        if len(choice_id.encode()) <= CALLBACK_LIMIT and not choice_id.startswith(HASHED):
            return choice_id
        key = HASHED + hashlib.blake2b(choice_id.encode(), digest_size=16).hexdigest()
        await self.port.remember(f"{CHANNEL}:callback:{key}", choice_id)
        return key

    async def _choice_id(self, data: str) -> str | None:
        if not data:
            return None
        if data.startswith(HASHED):
            return await self.port.recall(f"{CHANNEL}:callback:{data}")
        return data


def _mime_type(message: Message, kind: str) -> str:
    """The MIME type Telegram gives for documents, voice, audio, video ...; else ''."""
    mime = getattr(getattr(message, kind, None), "mime_type", None)
    return mime if isinstance(mime, str) else ""


def _button_label(query: CallbackQuery) -> str | None:
    """The text of the pressed button, for the transcript."""
    message = query.message
    markup = message.reply_markup if isinstance(message, Message) else None
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None
