"""The end-to-end benchmark's reference servers (issue 18): bare aiohttp, no Escala.

* **fair ceiling**: what any router must do for a Telegram KB answer, and nothing
  more: check the secret header, parse the update (orjson), store the message with its
  dedupe mark in ONE Redis round trip (a Lua script: ``SET NX PX`` of the mark, then
  ``RPUSH`` + ``LTRIM`` of the transcript, under the conversation's hash tag as
  Escala keys it), then make the two sends Escala makes (the answer, then "did this
  help?" with its two buttons) with plain aiohttp, checking each answer.
* **old ceiling**: the first reference (issue 6), kept as a second row: secret,
  parse, one send; no store, no second send.

Run by :mod:`bench.e2e` as subprocesses: ``python -m bench.ceilings fair --port P
--api URL --redis-url URL`` (``old`` takes no Redis). On uvloop when it is installed,
as ``escala serve`` is, so the rows compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp import web

HOST = "127.0.0.1"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/webhook"
TOKEN_ENV = "ESCALA_BENCH_TG_TOKEN"
SECRET_ENV = "ESCALA_BENCH_TG_SECRET"
ANSWER = "Atendemos de segunda a sexta, das 8h às 20h."
SURVEY = "Isso ajudou?"
SURVEY_MARKUP = orjson.dumps(
    {
        "inline_keyboard": [
            [{"text": "Sim", "callback_data": "csat:yes"}],
            [{"text": "Não", "callback_data": "csat:no"}],
        ]
    }
).decode()
#: As Escala's defaults: a provider message id is remembered a day; 500 hot lines.
DEDUPE_TTL_MS = 86_400_000
TRANSCRIPT_LINES = 500
#: The Redis pool's size: ``escala serve``'s with its default ``max_in_flight``.
REDIS_CONNECTIONS = 64 + 16

#: KEYS[1] the dedupe mark, KEYS[2] the transcript (one hash tag); ARGV: ttl ms, line,
#: lines kept. 1 when stored, 0 when the message was seen before (nothing to send).
STORE_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  return 1
end
return 0
"""

CLIENT: web.AppKey[aiohttp.ClientSession] = web.AppKey("client", aiohttp.ClientSession)


def _secret_ok(request: web.Request, expected: bytes) -> bool:
    return hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), expected)


async def _send(client: aiohttp.ClientSession, url: str, fields: dict[str, str]) -> bool:
    """One ``sendMessage``; True when Telegram (the fake) answered ``ok``."""
    async with client.post(url, data=fields) as response:
        body = await response.read()
    return response.status == 200 and bool(orjson.loads(body).get("ok"))


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _app(webhook: Any) -> web.Application:
    async def session(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = aiohttp.ClientSession()
        yield
        await app[CLIENT].close()

    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_get("/healthz", _healthz)
    app.cleanup_ctx.append(session)
    return app


def old_ceiling_app(api: str, token: str, secret: str) -> web.Application:
    """Checks the secret, parses the update and makes one ``sendMessage`` call."""
    send_url = f"{api}/bot{token}/sendMessage"
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        if not _secret_ok(request, expected):
            return web.Response(status=403, text="forbidden\n")
        try:
            payload = await request.json()
            chat = int(payload["message"]["chat"]["id"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="expected a JSON update\n")
        if not await _send(request.app[CLIENT], send_url, {"chat_id": str(chat), "text": ANSWER}):
            return web.Response(status=502, text="send failed\n")
        return web.Response(text="ok\n")

    return _app(webhook)


def fair_ceiling_app(api: str, token: str, secret: str, redis_url: str) -> web.Application:
    """Secret, orjson parse, one Redis round trip (mark + message), two sends."""
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

    send_url = f"{api}/bot{token}/sendMessage"
    expected = secret.encode()
    redis_key: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
    store: web.AppKey[AsyncScript] = web.AppKey("store_script", AsyncScript)

    async def webhook(request: web.Request) -> web.Response:
        if not _secret_ok(request, expected):
            return web.Response(status=403, text="forbidden\n")
        try:
            update = orjson.loads(await request.read())
            message = update["message"]
            chat = int(message["chat"]["id"])
            line = orjson.dumps(
                {
                    "id": f"telegram:{message['message_id']}",
                    "direction": "in",
                    "text": str(message.get("text", "")),
                    "at": int(message["date"]),
                }
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return web.Response(status=400, text="expected a JSON update\n")
        tag = f"{{c:telegram:{chat}}}"
        fresh = await request.app[store](
            keys=[f"{tag}:seen:{message['message_id']}", f"{tag}:t"],
            args=[DEDUPE_TTL_MS, line, TRANSCRIPT_LINES],
        )
        if fresh:
            client, chat_id = request.app[CLIENT], str(chat)
            if not await _send(client, send_url, {"chat_id": chat_id, "text": ANSWER}):
                return web.Response(status=502, text="send failed\n")
            survey = {"chat_id": chat_id, "text": SURVEY, "reply_markup": SURVEY_MARKUP}
            if not await _send(client, send_url, survey):
                return web.Response(status=502, text="send failed\n")
        return web.Response(text="ok\n")

    async def connect(app: web.Application) -> AsyncIterator[None]:
        # Bounded as Escala's pool is (``[server] max_in_flight`` 64 + 16): a burst
        # waits for a connection instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=REDIS_CONNECTIONS, timeout=5.0
        )
        client = aioredis.Redis.from_pool(pool)
        app[redis_key] = client
        script = client.register_script(STORE_SCRIPT)
        await client.script_load(STORE_SCRIPT)  # EVALSHA finds it from the first message
        app[store] = script
        yield
        await client.aclose()

    app = _app(webhook)
    app.cleanup_ctx.append(connect)
    return app


async def serve(app: web.Application, port: int) -> None:
    """Serve ``app`` on loopback until SIGTERM/SIGINT."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, HOST, port).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """As ``escala serve`` runs (``bot.cli._run_loop``): uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings", description=__doc__)
    parser.add_argument("kind", choices=["old", "fair"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", required=True, help="the (fake) Bot API base URL")
    parser.add_argument("--redis-url", help="the fair ceiling's Redis")
    args = parser.parse_args(argv)
    token, secret = os.environ[TOKEN_ENV], os.environ[SECRET_ENV]
    if args.kind == "fair":
        if not args.redis_url:
            parser.error("the fair ceiling needs --redis-url")
        app = fair_ceiling_app(args.api, token, secret, args.redis_url)
    else:
        app = old_ceiling_app(args.api, token, secret)
    run_loop(serve(app, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
