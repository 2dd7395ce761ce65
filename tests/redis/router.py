"""A test router process: Escala on a shared Redis, behind a tiny HTTP API.

    python -m tests.redis.router --redis-url unix:///tmp/redis.sock --port 0

Prints ``listening on 127.0.0.1:<port>`` once it serves. ``POST /inbound`` takes the
fields of an :class:`~bot.models.InboundMessage` as JSON and answers ``{"outcome":
...}``, or 503 when the store fails (so a provider would retry). ``POST /claim``
takes ``{"agent", "number"}`` and answers the desk's result; ``POST /desk`` does the
same for ``claim``, ``reply``, ``escalate`` and ``resolve`` (``"action"``). What the bot sends to a
customer is RPUSHed, as JSON, to ``sent:<channel>:<address>`` in the same Redis, so
a test reads what each customer received and in what order.

``--die-after-open-ticket`` makes the process SIGKILL itself right after the store
opened a ticket: the half-done handoff of issue 3, made deterministic.
``--provider-down`` makes every send hang (the provider never answers), so replies
stay in the durable outbox (issue 11); ``--outbox-lease`` shortens its lease.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web

from bot.app import Escala, build
from bot.errors import StoreError, StoreUnavailable
from bot.models import InboundMessage, OutboundMessage, Ticket
from bot.settings import default_settings
from bot.store.redis import RedisStore

CHANNELS = ("telegram", "sms", "whatsapp")
ESCALA = web.AppKey("escala", Escala)


def sent_key(channel: str, address: str) -> str:
    return f"sent:{channel}:{address}"


class DyingRedisStore(RedisStore):
    """Dies (SIGKILL: no clean-up, no finally) the moment a ticket is opened."""

    async def open_handoff(self, ticket: Ticket) -> Ticket:
        opened = await super().open_handoff(ticket)
        os.kill(os.getpid(), signal.SIGKILL)
        return opened


class RecordingSender:
    """A customer channel that records what it sends in Redis, in order. With
    ``hangs``, the provider never answers (it is down): nothing is sent."""

    def __init__(self, client: aioredis.Redis, channel: str, *, hangs: bool = False) -> None:
        self.client = client
        self.channel = channel
        self.hangs = hangs

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        if self.hangs:
            await asyncio.Event().wait()
        record = {"text": message.text, "choices": [c.id for c in message.choices]}
        try:
            await self.client.rpush(sent_key(self.channel, address), json.dumps(record))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            raise StoreUnavailable(f"redis unreachable: {e}") from e


async def inbound(request: web.Request) -> web.Response:
    body = await request.json()
    message = InboundMessage(
        channel=body["channel"],
        address=body["address"],
        text=body["text"],
        provider_message_id=body["provider_message_id"],
        received_at=datetime.now(UTC),
        locale=body.get("locale"),
        choice_id=body.get("choice_id"),
        name=body.get("name", ""),
    )
    try:
        outcome = await request.app[ESCALA].engine.handle(message)
    except StoreError as e:
        return web.json_response({"error": str(e)}, status=503)
    return web.json_response({"outcome": outcome.value})


async def claim(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        result = await request.app[ESCALA].desk.claim(body["agent"], int(body["number"]))
    except StoreError as e:
        return web.json_response({"error": str(e)}, status=503)
    return web.json_response({"ok": result.ok, "message": result.message})


async def desk(request: web.Request) -> web.Response:
    """``{"action": "claim"|"reply"|"escalate"|"resolve", "agent", "number", ...}``."""
    body = await request.json()
    the_desk = request.app[ESCALA].desk
    agent, number = body["agent"], int(body["number"])
    try:
        if body["action"] == "claim":
            result = await the_desk.claim(agent, number)
        elif body["action"] == "reply":
            result = await the_desk.reply(agent, number, body["text"])
        elif body["action"] == "escalate":
            result = await the_desk.escalate(agent, number, body.get("to_tier"), body["reason"])
        elif body["action"] == "resolve":
            result = await the_desk.resolve(agent, number)
        else:
            return web.json_response({"error": "unknown action"}, status=400)
    except StoreError as e:
        return web.json_response({"error": str(e)}, status=503)
    return web.json_response({"ok": result.ok, "message": result.message})


async def serve(args: argparse.Namespace) -> None:
    kind = DyingRedisStore if args.die_after_open_ticket else RedisStore
    store = kind.from_url(args.redis_url, cluster=args.cluster, max_connections=256)
    settings = default_settings()
    if args.lock_ttl is not None:
        settings = replace(
            settings, engine=replace(settings.engine, lock_ttl_seconds=args.lock_ttl)
        )
    if args.outbox_lease is not None:
        settings = replace(
            settings,
            engine=replace(
                settings.engine,
                outbox_lease_seconds=args.outbox_lease,
                timer_sweep_seconds=min(settings.engine.timer_sweep_seconds, args.outbox_lease),
            ),
        )
    escala = build(settings, store=store)
    for channel in CHANNELS:
        escala.outbox.register(
            channel, RecordingSender(store.redis, channel, hangs=args.provider_down)
        )
    escala.timers.start(settings.engine.timer_sweep_seconds)
    app = web.Application()
    app[ESCALA] = escala
    app.add_routes(
        [web.post("/inbound", inbound), web.post("/claim", claim), web.post("/desk", desk)]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.SockSite(runner, listener).start()
        print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
        await stop.wait()
    finally:
        await escala.timers.stop()
        await runner.cleanup()
        listener.close()
        await escala.outbox.close()
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.redis.router")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--lock-ttl", type=float, help="conversation lock ttl in seconds")
    parser.add_argument("--die-after-open-ticket", action="store_true")
    parser.add_argument("--cluster", action="store_true", help="the URL is a Redis Cluster node")
    parser.add_argument(
        "--outbox-lease", type=float, help="outbox delivery lease (and timer sweep) in seconds"
    )
    parser.add_argument(
        "--provider-down", action="store_true", help="sends never complete (provider down)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
