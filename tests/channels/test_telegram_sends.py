"""The lean Telegram send path (issue 18, part 3) against the fake Bot API: the same
form on the wire as aiogram's ``Bot.send_message``, aiogram's own error types for every
failure, and parametrised response models that are built once, not per collection."""

from __future__ import annotations

import gc
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from channels.telegram.sends import LeanSends, form_body
from tests.channels.fakes import Failure, FakeTelegram

TOKEN = "123456:lean-sends"
CHAT = 4242
ROWS = [[("Sim", "kb:yes")], [('Não ✓ "ok"', "kb:no")]]
MARKUP = InlineKeyboardMarkup(
    inline_keyboard=[
        [InlineKeyboardButton(text=text, callback_data=data) for text, data in row] for row in ROWS
    ]
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start_fake()
    yield server
    await server.close()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await session.close()


async def test_the_form_on_the_wire_is_the_one_aiogram_sends(fake: FakeTelegram, bot: Bot) -> None:
    lean = LeanSends(bot)
    await bot.send_message(chat_id=CHAT, text="olá, Rita", reply_markup=MARKUP)
    await lean.send_message(CHAT, "olá, Rita", lean.keyboard(ROWS))
    await bot.send_message(chat_id=CHAT, text="sem botões")
    await lean.send_message(CHAT, "sem botões")
    await bot.answer_callback_query("cbq-1")
    await lean.answer_callback_query("cbq-1")
    calls = [(c.method, c.fields) for c in fake.calls]
    assert len(calls) == 6
    assert calls[0] == calls[1]
    assert calls[2] == calls[3]
    assert calls[4] == calls[5] == ("answerCallbackQuery", {"callback_query_id": "cbq-1"})
    assert fake.buttons(fake.calls[1]) == [("Sim", "kb:yes"), ('Não ✓ "ok"', "kb:no")]
    assert "parse_mode" not in calls[1][1]  # customer text is data


FIELDS = st.sampled_from(["chat_id", "text", "reply_markup", "callback_query_id"])
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@given(st.lists(st.tuples(FIELDS, ANY_TEXT | st.sampled_from(["Sim", "olá, Rita ✓", "8h às 20h"]))))
def test_the_form_body_is_urlencode_s(form: list[tuple[str, str]]) -> None:
    """The same bytes as ``urlencode``, cached or not; the same error for a text that
    cannot be UTF-8 (a lone surrogate)."""
    try:
        expected: bytes | type[Exception] = urlencode(form).encode()
    except UnicodeEncodeError:
        expected = UnicodeEncodeError
    for _ in range(2):  # the second time from the cache
        try:
            got: bytes | type[Exception] = form_body(form)
        except UnicodeEncodeError:
            got = UnicodeEncodeError
        assert got == expected


async def test_an_echo_json_reads_and_orjson_refuses_is_still_a_success() -> None:
    """Telegram echoes the message sent; a lone surrogate escape in it is valid JSON to
    json (aiogram's reader) but refused by orjson: still a delivery, not an error."""
    seen: list[str] = []

    async def send_message(request: web.Request) -> web.Response:
        seen.append((await request.post())["text"])  # type: ignore[arg-type]
        body = b'{"ok": true, "result": {"message_id": 1, "text": "\\ud83d"}}'
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send_message)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session = AiohttpSession(api=TelegramAPIServer.from_base(str(server.make_url("")).rstrip("/")))
    try:
        await LeanSends(Bot(TOKEN, session=session)).send_message(CHAT, "oi")
        assert seen == ["oi"]
    finally:
        await session.close()
        await server.close()


FAILURES = [
    Failure(429, retry_after=7, description="Too Many Requests: retry after 7"),
    Failure(403, description="Forbidden: bot was blocked by the user"),
    Failure(400, description="Bad Request: chat not found"),
    Failure(500, description="Internal Server Error"),
]


@pytest.mark.parametrize(
    ("failure", "expected"),
    list(
        zip(
            FAILURES,
            [TelegramRetryAfter, TelegramForbiddenError, TelegramBadRequest, TelegramServerError],
            strict=True,
        )
    ),
    ids=["429", "403", "400", "500"],
)
async def test_failures_raise_the_error_aiogram_raises(
    fake: FakeTelegram, bot: Bot, failure: Failure, expected: type[TelegramAPIError]
) -> None:
    lean = LeanSends(bot)

    async def stock() -> None:
        await bot.send_message(chat_id=CHAT, text="oi", reply_markup=MARKUP)

    async def leaner() -> None:
        await lean.send_message(CHAT, "oi", lean.keyboard(ROWS))

    raised: list[TelegramAPIError] = []
    for send in (stock, leaner):
        fake.fail_next(failure)
        with pytest.raises(expected) as caught:
            await send()
        raised.append(caught.value)
    aiogram_error, lean_error = raised
    assert type(lean_error) is type(aiogram_error)
    assert lean_error.message == aiogram_error.message
    assert failure.description in lean_error.message
    assert type(lean_error.method) is type(aiogram_error.method)
    assert lean_error.method.model_dump() == aiogram_error.method.model_dump()
    if isinstance(lean_error, TelegramRetryAfter):
        assert isinstance(aiogram_error, TelegramRetryAfter)
        assert lean_error.retry_after == aiogram_error.retry_after == 7
    assert fake.texts(CHAT) == []  # both were attempts, neither a delivery


async def test_an_unreachable_api_is_a_network_error() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(TelegramNetworkError) as caught:
            await LeanSends(Bot(TOKEN, session=session)).send_message(CHAT, "oi")
        assert caught.value.method.model_dump()["text"] == "oi"
    finally:
        await session.close()


async def test_response_message_model_is_built_once_across_many_sends(
    fake: FakeTelegram, bot: Bot
) -> None:
    """Regression (issue 18): pydantic caches ``Response[Message]`` weakly, so aiogram
    rebuilt it (~25 ms, event loop stalled) every time the garbage collector ran. The
    adapter's module holds it: across sends and collections it is one class object."""
    held = weakref.ref(Response[Message])
    lean = LeanSends(bot)
    sends: list[Callable[[], Awaitable[Any]]] = [
        lambda: bot.send_message(chat_id=CHAT, text="stock"),
        lambda: lean.send_message(CHAT, "lean"),
    ]
    for n in range(40):
        await sends[n % 2]()
        if n % 5 == 4:  # a full collection is slow on aiogram's heap: one per five sends
            gc.collect()
            assert held() is not None, f"Response[Message] was collected after send {n + 1}"
    assert Response[Message] is held()
    assert len(fake.texts(CHAT)) == 40
