"""The chaos benchmark (issue 11): real ``escala serve`` processes on one Redis with
an append-only file, customers whose every message is delivered twice to different
processes (a provider retrying on another node), and faults while they write:

* one router SIGKILLed, then restarted;
* Redis stopped (SIGTERM) and restarted on the same data directory;
* Redis paused (SIGSTOP) for a few seconds, then resumed.

It prints what was lost or doubled::

    python -m bench.chaos                       # 3 routers, 150 customers
    python -m bench.chaos --routers 2 --customers 20 --pause 2

Every customer sends a greeting, a KB question and "quero falar com um atendente"
(a handoff). A delivery is retried, alternating processes, until one answers 200.
Afterwards the store and the fake Telegram API are compared: an inbound message not
in its transcript is *lost*; a bot line of a transcript never sent is a *lost reply*,
one sent more often than written a *doubled reply*; a customer with a ticket but no
"chamado #N" sent is a *missing confirmation*; a conversation with no ticket after
its handoff, or in two queues, an *orphan* or *double-queued* ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.e2e import (
    SECRET,
    SECRET_ENV,
    SECRET_HEADER,
    TOKEN,
    TOKEN_ENV,
    WEBHOOK_PATH,
    spawn,
)
from bench.processes import HOST, free_port, stop_process
from bot.clock import stable_id
from bot.models import Direction
from bot.store.redis import RedisStore

SCRIPT = ("oi", "qual o horário de atendimento?", "quero falar com um atendente")
CONFIRMATION = "Abri o chamado #"
CHAT_BASE = 700_000_000
RETRY_PAUSE = 0.2
SETTLE_SECONDS = 180.0
START_SECONDS = 300.0

CONFIG = """\
[engine]
timer_sweep_seconds = 0.5
outbox_lease_seconds = {lease}
lock_ttl_seconds = 10.0

[store]
backend = "redis"
url = "{redis}"

[server]
host = "{host}"
port = {port}

[channels.telegram]
mode = "webhook"
token_env = "{token_env}"
secret_token_env = "{secret_env}"
webhook_path = "{path}"
api_base = "{api}"
"""


class RecordingTelegram:
    """A fake Bot API that keeps the text of every ``sendMessage`` per chat."""

    def __init__(self) -> None:
        self.sent: dict[int, list[str]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._ids = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, HOST, port).start()
        self.url = f"http://{HOST}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        fields = await request.post()
        if request.match_info["method"] != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        chat = int(str(fields["chat_id"]))
        text = str(fields.get("text", ""))
        self.sent.setdefault(chat, []).append(text)
        self._ids += 1
        message = {
            "message_id": self._ids,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "text": text,
        }
        return web.json_response({"ok": True, "result": message})


class RedisProcess:
    """A ``redis-server`` with an append-only file that can be stopped and restarted on
    the same port and data directory."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> None:
        log = self.directory / "redis.log"
        self.process = spawn(
            [
                self.binary, "--port", str(self.port), "--bind", HOST,
                "--dir", str(self.directory), "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec",
            ],
            log,
        )  # fmt: skip
        process = self.process
        async with asyncio.timeout(START_SECONDS):  # until it accepts connections
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited early; see {log}")
                try:
                    _, writer = await asyncio.open_connection(HOST, self.port)
                except OSError:
                    await asyncio.sleep(0.05)  # polling a start-up, bounded above
                    continue
                writer.close()
                await writer.wait_closed()
                return

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process)
            self.process = None


class Router:
    """One ``escala serve`` process."""

    def __init__(self, name: str, directory: Path, redis_url: str, api: str, lease: float):
        self.name = name
        self.port = free_port()
        self.log = directory / f"{name}.log"
        self.config = directory / f"{name}.toml"
        self.config.write_text(
            CONFIG.format(
                lease=lease, redis=redis_url, host=HOST, port=self.port, token_env=TOKEN_ENV,
                secret_env=SECRET_ENV, path=WEBHOOK_PATH, api=api,
            ),
            encoding="utf-8",
        )  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{WEBHOOK_PATH}"

    async def start(self, session: aiohttp.ClientSession) -> float:
        """Start and wait until healthy; the seconds it took."""
        started = time.monotonic()
        env = {**os.environ, TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}
        command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(self.config)]
        self.process = spawn(command, self.log, env=env)
        health = f"http://{HOST}:{self.port}/healthz"
        # Importing aiogram costs seconds of CPU: on a loaded machine, minutes.
        async with asyncio.timeout(START_SECONDS):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early; see {self.log}")
                try:
                    async with session.get(health) as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)  # polling a process start-up, bounded above

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process)


@dataclass
class Report:
    deliveries: int = 0
    refused: list[tuple[float, int]] = field(default_factory=list)  # (when, status)
    faults: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        by_second = Counter(int(when) for when, status in self.refused if status == 503)
        return {
            "deliveries": self.deliveries,
            "503": sum(by_second.values()),
            "503_by_second": dict(sorted(by_second.items())),
            "connection_errors": sum(1 for _, status in self.refused if status == 0),
            "faults": self.faults,
        }


def update(update_id: int, chat: int, text: str) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": "Cliente",
                         "language_code": "pt-br"},
                "text": text,
            },
        }
    ).encode()  # fmt: skip


async def deliver(
    session: aiohttp.ClientSession, routers: Sequence[Router], first: int, body: bytes,
    report: Report, started: float,
) -> None:  # fmt: skip
    """POST like a provider: to two processes at once, then again (alternating
    processes) until one answers 200."""
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}

    async def once(router: Router) -> bool:
        try:
            async with session.post(router.url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    report.refused.append((time.monotonic() - started, response.status))
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            report.refused.append((time.monotonic() - started, 0))
            return False

    report.deliveries += 1
    n = first
    while True:
        pair = (routers[n % len(routers)], routers[(n + 1) % len(routers)])
        results = await asyncio.gather(*(once(r) for r in pair))
        if any(results):
            return
        n += 1
        await asyncio.sleep(RETRY_PAUSE)  # the provider's back-off


async def faults(
    routers: list[Router], redis: RedisProcess, session: aiohttp.ClientSession,
    report: Report, pause: float, spacing: float,
) -> None:  # fmt: skip
    victim = routers[0]
    await asyncio.sleep(spacing)
    victim.kill()
    took = await victim.start(session)
    report.faults.append({"fault": "router SIGKILL + restart", "healthy_after_s": round(took, 1)})
    await asyncio.sleep(spacing)
    down = time.monotonic()
    await redis.stop()  # SIGTERM: Redis writes its AOF and exits
    await redis.start()
    report.faults.append(
        {"fault": "redis SIGTERM + restart", "down_s": round(time.monotonic() - down, 1)}
    )
    await asyncio.sleep(spacing)
    redis.signal(signal.SIGSTOP)
    await asyncio.sleep(pause)
    redis.signal(signal.SIGCONT)
    report.faults.append({"fault": "redis SIGSTOP", "paused_s": pause})


async def run(
    *, routers: int, customers: int, concurrency: int, pause: float, spacing: float,
    lease: float, directory: Path, duration: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """One run; customers start evenly over ``duration`` seconds, so the faults (one
    every ``spacing`` seconds) land while they write."""
    api = RecordingTelegram()
    await api.start()
    redis = RedisProcess(directory)
    await redis.start()
    report = Report()
    procs = [Router(f"router{n}", directory, redis.url, api.url, lease) for n in range(routers)]
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(p.start(session) for p in procs))
            started = time.monotonic()
            limit = asyncio.Semaphore(concurrency)
            update_ids = iter(range(1, 10**9))

            async def customer(n: int) -> None:
                await asyncio.sleep(duration * n / max(customers, 1))  # the arrival time
                for text in SCRIPT:
                    async with limit:
                        body = update(next(update_ids), CHAT_BASE + n, text)
                        await deliver(session, procs, n, body, report, started)

            chaos = asyncio.create_task(faults(procs, redis, session, report, pause, spacing))
            await asyncio.gather(*(customer(n) for n in range(customers)))
            fed = time.monotonic() - started
            await chaos
            settled = await settle(redis.url, customers)
            result = await compare(redis.url, api, customers)
        result.update(report.summary())
        result.update(
            {"routers": routers, "customers": customers, "fed_s": round(fed, 1),
             "settled_s": round(settled, 1)}
        )  # fmt: skip
        return result
    finally:
        for p in procs:
            await p.stop()
        await redis.stop()
        await api.close()


async def settle(redis_url: str, customers: int) -> float:
    """Wait until no reply waits in any outbox (bounded); how long it took."""
    store = RedisStore.from_url(redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < SETTLE_SECONDS:
            waiting = [key async for key in store.redis.scan_iter(match="*:outbox", count=1000)]
            if not waiting:
                break
            await asyncio.sleep(0.5)  # polling the store, bounded above
    finally:
        await store.close()
    return time.monotonic() - started


async def compare(redis_url: str, api: RecordingTelegram, customers: int) -> dict[str, Any]:
    store = RedisStore.from_url(redis_url)
    lost_in = lost_out = doubled = missing = orphan = double_queued = 0
    try:
        queued: Counter[str] = Counter()
        for tier in ("N1", "N2", "N3"):
            for waiting in await store.queue(tier):
                queued[waiting.conversation_id] += 1
        for n in range(customers):
            chat = CHAT_BASE + n
            cid = stable_id("cnv", "telegram", str(chat))
            transcript = await store.transcript(cid)
            inbound = [m.text for m in transcript if m.direction is Direction.INBOUND]
            lost_in += sum(1 for text in SCRIPT if text not in inbound)
            written = Counter(m.text for m in transcript if m.direction is Direction.BOT)
            sent = Counter(api.sent.get(chat, []))
            lost_out += sum((written - sent).values())
            doubled += sum((sent - written).values())
            ticket = await store.open_ticket_of(cid)
            if ticket is None:
                orphan += 1
            elif not any(CONFIRMATION in text for text in api.sent.get(chat, [])):
                missing += 1
            if queued[cid] > 1:
                double_queued += 1
    finally:
        await store.close()
    return {
        "inbound_lost": lost_in,
        "replies_lost": lost_out,
        "doubled_replies": doubled,
        "missing_confirmations": missing,
        "orphan_tickets": orphan,
        "double_queued_tickets": double_queued,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--routers", type=int, default=3)
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16, help="messages in flight")
    parser.add_argument("--pause", type=float, default=5.0, help="Redis SIGSTOP seconds")
    parser.add_argument("--spacing", type=float, default=3.0, help="seconds between faults")
    parser.add_argument("--lease", type=float, default=3.0, help="outbox lease seconds")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="customers arrive over these seconds"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="escala-chaos-") as tmp:
        result = asyncio.run(
            run(
                routers=args.routers, customers=args.customers,
                concurrency=args.concurrency, pause=args.pause, spacing=args.spacing,
                lease=args.lease, directory=Path(tmp), duration=args.duration,
            )
        )  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
