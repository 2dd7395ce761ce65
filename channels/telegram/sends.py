"""Lean Telegram sends: ``sendMessage`` and ``answerCallbackQuery`` without per-send waste.

aiogram stays the Bot API surface (methods, types, polling, webhooks), but a send through
``Bot.send_message`` pays for work a router never uses (issue 18, part 3):

* pydantic validates the whole ``Message`` Telegram echoes back (~30 µs), and the
  router throws it away;
* pydantic caches parametrised generics *weakly*, so ``Response[Message]`` is collected
  by the garbage collector every few dozen sends and rebuilt (~25 ms each: the event
  loop stalls and latency spikes).

:class:`LeanSends` posts the same form aiogram would (the same field values as aiogram's
``prepare_value``, posted through the bot's own aiohttp session and connection pool) and
reads a success as ``{"ok": true}`` without validating the echoed result. Anything else
goes through aiogram's ``check_response`` on the real method object, so a 429 is still a
``TelegramRetryAfter`` with its ``retry_after``, a 403 a ``TelegramForbiddenError``, a
400 a ``TelegramBadRequest``: error handling is exactly aiogram's.

:data:`HELD_RESPONSE_MODELS` holds the parametrised response models the stock path builds
strongly, so those are built once per process, not once per collection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote_plus

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import ClientDecodeError, TelegramNetworkError
from aiogram.methods import AnswerCallbackQuery, GetUpdates, Response, SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardMarkup
from aiohttp import ClientError, ClientTimeout

from channels.telegram.updates import json_body

#: The parametrised models aiogram's ``check_response`` asks pydantic for on every call
#: of the methods this adapter uses. pydantic keeps them in a ``WeakValueDictionary``;
#: these references keep them alive, so ``Response[Message]`` is always the same class.
HELD_RESPONSE_MODELS: tuple[type[Response[Any]], ...] = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (SendMessage, AnswerCallbackQuery, GetUpdates)
)

#: What aiohttp's FormData sends for a form without files.
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
#: The form fields whose quoted values are remembered (:func:`form_body`).
CONTENT_FIELDS = frozenset({"text", "reply_markup"})


@functools.lru_cache(maxsize=256)
def _quoted(value: str) -> str:
    return quote_plus(value)


def form_body(form: Sequence[tuple[str, str]]) -> bytes:
    """``urlencode(form).encode()``, as aiohttp's FormData posts a form without files.

    Quoting costs a Python call per byte (~12 µs for a 160-character answer), and a
    bot's texts and buttons are mostly its content's own (KB answers, flow prompts, "did
    this help?"), sent again and again: their quoted form is remembered (the last 256;
    a Telegram message is at most 4,096 characters). A chat id is quoted each time, so
    customers never push the content out."""
    return "&".join(
        f"{quote_plus(key)}={_quoted(value) if key in CONTENT_FIELDS else quote_plus(value)}"
        for key, value in form
    ).encode()


@dataclass(frozen=True, slots=True)
class Keyboard:
    """Inline keyboard buttons as the form field aiogram would post for them.

    aiogram's way builds a pydantic ``InlineKeyboardMarkup`` and dumps it again on every
    send (~40 µs for two buttons); this is the same JSON text, made once from the
    labels and callback data (:meth:`LeanSends.keyboard`)."""

    #: ``reply_markup`` as aiogram's ``prepare_value`` writes it.
    field: str

    def markup(self) -> InlineKeyboardMarkup:
        """The aiogram object, for an error's method (only failures need it)."""
        return InlineKeyboardMarkup.model_validate_json(self.field)


class LeanSends:
    """The hot sends of one bot, through its own session; errors are aiogram's own."""

    def __init__(self, bot: Bot) -> None:
        if not isinstance(bot.session, AiohttpSession):
            raise TypeError("LeanSends needs the bot's AiohttpSession")
        self.bot = bot
        self.session: AiohttpSession = bot.session
        #: aiogram passes its float timeout to aiohttp, which reads it as the total.
        self._timeout = ClientTimeout(total=self.session.timeout)

    def keyboard(self, rows: Sequence[Sequence[tuple[str, str]]]) -> Keyboard:
        """Buttons, each ``(label, callback_data)``, one row per inner sequence."""
        buttons = [[{"text": text, "callback_data": data} for text, data in row] for row in rows]
        # The dict aiogram's prepare_value makes of the markup (its fields in order, the
        # unset ones left out), dumped by the session's own json_dumps: the same text.
        return Keyboard(self.session.json_dumps({"inline_keyboard": buttons}))

    async def send_message(
        self, chat_id: int, text: str, reply_markup: Keyboard | None = None
    ) -> None:
        """``sendMessage`` without ``parse_mode`` (text is data). Raises aiogram's errors."""
        # The form aiogram's build_form_data makes: numbers as their JSON text, the markup
        # as JSON, empty values left out.
        form = [("chat_id", str(chat_id))]
        if text:
            form.append(("text", text))
        if reply_markup is not None:
            form.append(("reply_markup", reply_markup.field))

        def method() -> SendMessage:
            return SendMessage(
                chat_id=chat_id,
                text=text,
                reply_markup=reply_markup.markup() if reply_markup is not None else None,
            )

        await self._call("sendMessage", form, method)

    async def answer_callback_query(self, callback_query_id: str) -> None:
        """Stops the button's spinner. Raises aiogram's errors."""
        await self._call(
            "answerCallbackQuery",
            [("callback_query_id", callback_query_id)] if callback_query_id else [],
            lambda: AnswerCallbackQuery(callback_query_id=callback_query_id),
        )

    async def _call(
        self,
        api_method: str,
        form: list[tuple[str, str]],
        method: Callable[[], TelegramMethod[Any]],
    ) -> None:
        """Posts ``form``; ``method`` makes aiogram's method object, which only an error
        carries (aiogram's errors name the method that failed)."""
        session = self.session
        bot = self.bot
        # Encoded as aiohttp's FormData encodes a form without files (urlencode, UTF-8),
        # without building a FormData and the multipart writer (and uuid4) it makes on
        # every send.
        body = form_body(form)
        client = await session.create_session()
        url = session.api.api_url(token=bot.token, method=api_method)
        try:
            async with client.post(
                url, data=body, headers=FORM_HEADERS, timeout=self._timeout
            ) as resp:
                status = resp.status
                data = await resp.read()
                encoding = resp.get_encoding()  # what resp.text() decodes with
        except TimeoutError as e:
            raise TelegramNetworkError(method=method(), message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method(), message=f"{type(e).__name__}: {e}") from e
        if HTTPStatus.OK <= status <= HTTPStatus.IM_USED:
            try:
                answer = json_body(data, encoding)  # what json reads, mostly by orjson
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok") is True:
                return  # the echoed result is not needed: not validated
        raw = data.decode(encoding)
        # A failure (or a malformed success): aiogram's own reading of it, on the real
        # method object, raises the very error a Bot.send_message call would.
        session.check_response(bot=bot, method=method(), status_code=status, content=raw)
        raise ClientDecodeError("Telegram answered without ok", ValueError(raw[:200]), raw)
