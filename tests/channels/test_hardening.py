"""Issue 11 (6, 7): bad input never gives a 500, saturation gives a quick 503 with
Retry-After, a replayed Slack request is taken once, and short webhook secrets are
refused at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import stable_id
from bot.errors import ConfigError
from bot.models import Direction
from bot.server import ServerConfig, cap_connections, create_app, runner_for
from channels.telegram.config import parse_telegram
from tests.channels.harness import SECRET, Harness, message
from tests.journeys.harness import Journey


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.start(max_body=4 * 1024 * 1024)
    yield h
    await h.close()


async def test_absurdly_nested_json_is_a_client_error(harness: Harness) -> None:
    depth = 200_000
    body = b'{"update_id": 1, "message": ' + b"[" * depth + b"]" * depth + b"}"
    response = await harness.telegram_post(body)
    assert 400 <= response.status < 500


async def test_an_unknown_charset_is_a_client_error(harness: Harness) -> None:
    headers = {
        "X-Telegram-Bot-Api-Secret-Token": SECRET,
        "Content-Type": "application/json; charset=no-such-charset",
    }
    body = orjson.dumps({"update_id": 1, "message": message(4242, "pt-br", text="oi")})
    response = await harness.http.post("/telegram/webhook", data=body, headers=headers)
    assert response.status == 400
    assert harness.fake_telegram.texts(4242) == []


@pytest.mark.parametrize("where", ["text", "first_name"])
async def test_a_lone_surrogate_is_kept_replaced_not_a_500(harness: Harness, where: str) -> None:
    sent = message(4242, "pt-br", text="oi")
    if where == "text":
        sent["text"] = "qual o horário de atendimento? \ud800"
    else:
        sent["from"]["first_name"] = "Ana \udfff"
    update = {"update_id": harness.update_id(), "message": sent}
    response = await harness.telegram_post(update)
    await harness.delivered()
    assert response.status == 200
    assert harness.fake_telegram.texts(4242), "answered"
    transcript = await harness.store.transcript(stable_id("cnv", "telegram", "4242"))
    (inbound,) = [m for m in transcript if m.direction is Direction.INBOUND]
    if where == "text":
        assert inbound.text.endswith("\ufffd")
    else:
        assert inbound.author.startswith("Ana \ufffd")


class Slow:
    """A plugin whose one route waits until told to finish."""

    name = "slow"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    def routes(self) -> Sequence[web.RouteDef]:
        return (web.post("/slow", self.handle),)

    async def handle(self, request: web.Request) -> web.Response:
        self.entered.set()
        await self.release.wait()
        return web.Response(text="done")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_saturation_is_a_quick_503_with_retry_after() -> None:
    slow = Slow()
    app = create_app(Journey().escala, [slow], max_in_flight=1, queue_seconds=0.05)
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        first = asyncio.create_task(http.post("/slow"))
        await slow.entered.wait()
        refused = await http.post("/slow")
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await http.get("/healthz")).status == 200, "health checks are not limited"
        slow.release.set()
        done = await first
        assert done.status == 200
        assert (await http.post("/slow")).status == 200, "a place is free again"


def test_a_short_webhook_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN", "123456:TEST-token")
    monkeypatch.setenv("TG_SECRET", "x")
    with pytest.raises(ConfigError) as short:
        parse_telegram(
            "f.toml", {"token_env": "TG_TOKEN", "secret_token_env": "TG_SECRET"}, "pt-BR"
        )
    assert short.value.place == "channels.telegram.secret_token_env"
    assert "at least 16" in short.value.reason and "x" not in short.value.reason.split()


async def test_a_trickled_header_is_cut_off_and_connections_are_capped() -> None:
    """1,500 clients trickling one header line every 5 s held a process open for 120 s
    (issue 11): the head must arrive within header_timeout_seconds, and connections
    beyond max_connections are closed at once."""
    config = ServerConfig(header_timeout_seconds=0.5, max_connections=2)
    runner = runner_for(create_app(Journey().escala, []), config)
    await runner.setup()
    cap_connections(runner, config.max_connections)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    opened: list[asyncio.StreamWriter] = []
    try:
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
        opened.append(slow)
        slow.write(b"POST /telegram/webhook HTTP/1.1\r\nHost: x\r\n")  # never finished
        await slow.drain()
        other_reader, other = await asyncio.open_connection("127.0.0.1", port)
        opened.append(other)
        extra_reader, extra = await asyncio.open_connection("127.0.0.1", port)
        opened.append(extra)
        async with asyncio.timeout(30):
            assert await extra_reader.read() == b"", "the third connection is closed at once"
            assert await slow_reader.read() == b"", "the trickling client is cut off"
            assert await other_reader.read() == b"", "an idle connection is closed too"
    finally:
        for writer in opened:
            writer.close()
        await runner.cleanup()


async def test_a_trickled_body_is_refused_in_time() -> None:
    slow = Slow()
    app = create_app(Journey().escala, [slow], body_timeout_seconds=0.3)
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:

        async def trickle() -> AsyncIterator[bytes]:
            yield b"{"
            await asyncio.Event().wait()  # the rest never comes
            yield b"}"

        response = await http.post("/slow", data=trickle())
        assert response.status == 408
        assert not slow.entered.is_set(), "the handler never ran"
