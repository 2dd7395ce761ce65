"""Part 3: end-to-end throughput of ``escala serve`` on loopback, against ceilings.

Everything runs on 127.0.0.1 and stops by itself:

* a fake Telegram Bot API (aiohttp, in this process) records every ``sendMessage``
  with its ``time.monotonic()`` receive time and answers like Telegram does;
* the server under test is a subprocess: the real ``python -m bot.cli serve`` with
  ``[channels.telegram]`` in webhook mode, a secret token and ``api_base`` pointing
  at the fake, on the memory store or on a dedicated ``redis-server`` (no
  persistence, stopped by PID), with one process or ``--workers 2``, or (the
  ``-decided`` rows, a diagnostic) :mod:`bench.decided`, the same server with its
  decisions remembered -- or a reference server of :mod:`bench.ceilings` (also a subprocess): the **fair ceiling** (secret,
  orjson parse, one Redis round trip storing the message with its dedupe mark, the
  same two sends as Escala, issue 18) and the **old ceiling** (secret, parse, one
  send: no store, issue 6);
* simulated customers post Telegram updates (``X-Telegram-Bot-Api-Secret-Token``)
  asking a KB question. Escala answers it and then asks "did this help?": two
  ``sendMessage`` calls; the fair ceiling makes the same two, the old one one.

Figures:

* **closed loop** (the maximum rate): N customers each send their messages one after
  the other, the next only once the previous one is fully answered (every reply it
  causes has reached the fake API). messages/s = customer messages fully answered
  per second; latency = webhook POST start -> the *first* reply for that message
  received at the fake API.
* **open loop** at 80% of that maximum: messages are sent on a fixed schedule whatever
  the answers do (each goes to an idle customer, a new one if none is idle), so
  queueing shows in the p99 instead of slowing the generator down.

Per row, over the closed loop: server CPU per message (every process of the server:
a supervisor and its workers), ``redis-server``'s CPU per message, and Redis commands
and round trips per message (:class:`RedisCounters` says how they are counted).

Bounded: each phase stops at ``max_seconds`` or ``max_requests``, each message waits
at most ``REPLY_TIMEOUT`` for its replies (then it counts as lost), and every process
started here is stopped here. ``ESCALA_BENCH_PROFILE=DIR`` runs the servers under
cProfile and writes ``DIR/<scenario>.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web

from bench.processes import (
    HOST,
    START_SECONDS,
    RedisServer,
    RedisUnavailable,
    free_port,
    free_ports,
    stop_process,
    tail,
)
from bench.progress import Progress
from bench.report import machine

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:BENCH-token"
SECRET = "bench-secret_token-0123456789"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram/webhook"
TOKEN_ENV = "ESCALA_BENCH_TG_TOKEN"
SECRET_ENV = "ESCALA_BENCH_TG_SECRET"
PROFILE_ENV = "ESCALA_BENCH_PROFILE"
#: A tier-0 question of the packaged KB: answered directly, then "did this help?".
QUESTION = "Qual o horário de atendimento de vocês?"

REPLY_TIMEOUT = 10.0
#: How long the server is watched idle (no message) for its own Redis round trips.
BACKGROUND_SECONDS = 3.0
#: After the calibration message's first reply, how long to wait for any further ones.
SETTLE_SECONDS = 0.5

FULL = {"customers": 50, "messages_per_customer": 400, "closed_seconds": 10.0, "open_seconds": 10.0}
QUICK = {"customers": 4, "messages_per_customer": 5, "closed_seconds": 5.0, "open_seconds": 1.0}
#: Open loop: unanswered messages at most (beyond, a due message is counted, not sent).
MAX_IN_FLIGHT = 500
MAX_SECONDS = 60.0
MAX_REQUESTS = 20_000

#: Issue 18 targets (issue 6's, against the fair ceiling now).
TARGET_RATIO = 0.5
TARGET_MEMORY_RATIO = 0.6
TARGET_ROUND_TRIPS = 2.0
TARGET_P99_MS = 50.0
TARGET_TWO_WORKERS = 1.6
OPEN_LOOP_FRACTION = 0.8

Server = Literal["escala", "fair-ceiling", "old-ceiling"]
#: ``sendMessage`` calls per question: escala answers, then asks "did this help?"; the
#: fair ceiling makes the same two sends (:mod:`bench.ceilings`), the old one only one.
REPLIES: dict[Server, int] = {"escala": 2, "fair-ceiling": 2, "old-ceiling": 1}
StoreName = Literal["memory", "redis"]


@dataclass(frozen=True)
class Row:
    """One row of the table: a server, its store, and how it is run."""

    name: str
    server: Server
    store: StoreName | None = None
    metrics: bool = True
    workers: int = 1
    #: Run with its decisions remembered (:mod:`bench.decided`): what deciding costs.
    decided: bool = False


#: Every row, in run order (``--rows`` picks some). The fair ceiling runs first: the
#: escala rows are compared with it.
ROWS: dict[str, Row] = {
    row.name: row
    for row in (
        Row("fair-ceiling", "fair-ceiling", "redis"),
        Row("old-ceiling", "old-ceiling"),
        Row("escala-memory", "escala", "memory"),
        Row("escala-redis", "escala", "redis"),
        # Issue 14: the same Redis run without /metrics, for what metrics cost.
        Row("escala-redis-metrics-off", "escala", "redis", metrics=False),
        # Issue 18: two worker processes (``escala serve --workers 2``) on one Redis.
        Row("escala-redis-2workers", "escala", "redis", workers=2),
        # Issue 18, a diagnostic: the same server with its decisions remembered
        # (bench.decided); against the rows above, what the decision costs.
        Row("escala-memory-decided", "escala", "memory", decided=True),
        Row("escala-redis-decided", "escala", "redis", decided=True),
    )
}


class Skipped(Exception):
    """The scenario cannot run here; the message says why."""


# --- the fake Telegram Bot API ------------------------------------------------------------


class FakeTelegramApi:
    """Records each ``sendMessage`` per chat with its monotonic receive time."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self.calls = 0
        self.other_calls = 0
        self._waiting: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://{HOST}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, chat: int) -> int:
        return len(self.times.get(chat, ()))

    async def wait(self, chat: int, count: int) -> list[float]:
        """The chat's receive times once it has at least ``count`` of them."""
        if self.count(chat) < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting[chat] = (count, future)
            try:
                await future
            finally:
                self._waiting.pop(chat, None)
        return self.times[chat]

    async def _handle(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        method = request.match_info["method"]
        fields = await request.post()
        if method != "sendMessage":
            self.other_calls += 1
            return web.json_response({"ok": True, "result": True})
        chat = int(str(fields["chat_id"]))
        times = self.times.setdefault(chat, [])
        times.append(received)
        self.calls += 1
        waiting = self._waiting.get(chat)
        if waiting is not None and len(times) >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(None)
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "text": str(fields.get("text", "")),
        }
        return web.json_response({"ok": True, "result": message})


# --- processes ------------------------------------------------------------------------------


def spawn(
    command: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the repository with its output in ``log`` (fork/exec only)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


async def _wait_healthz(
    session: aiohttp.ClientSession, process: subprocess.Popen[bytes], url: str, log: Path
) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{tail(log)}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{url} not healthy after {START_SECONDS}s:\n{tail(log)}")
        await asyncio.sleep(0.05)  # polling a process start-up, bounded above


@contextlib.asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[Running]:
    """A dedicated ``redis-server`` on a free loopback port, no persistence."""
    try:
        server = RedisServer(directory)
    except RedisUnavailable as e:
        raise Skipped(str(e)) from e
    await asyncio.to_thread(server.start)
    try:
        yield Running(server.url, server.pid)
    finally:
        await asyncio.to_thread(server.stop)


ESCALA_CONFIG = """\
[store]
backend = "{backend}"
{url}

[server]
host = "{host}"
port = {port}

[channels.telegram]
mode = "webhook"
token_env = "{token_env}"
secret_token_env = "{secret_env}"
webhook_path = "{path}"
api_base = "{api}"

[metrics]
enabled = {metrics}
{metrics_port}
"""


def _server_command(
    server: Server,
    name: str,
    directory: Path,
    port: int,
    api: str,
    redis_url: str | None,
    metrics: bool = True,
    workers: int = 1,
    metrics_port: int | None = None,
    decided: bool = False,
) -> list[str]:
    if server == "old-ceiling":
        module = ["bench.ceilings", "old", "--port", str(port), "--api", api]
    elif server == "fair-ceiling":
        assert redis_url is not None, "the fair ceiling stores into Redis"
        module = ["bench.ceilings", "fair", "--port", str(port), "--api", api]
        module += ["--redis-url", redis_url]
    else:
        config = directory / "escala.toml"
        config.write_text(
            ESCALA_CONFIG.format(
                backend="redis" if redis_url else "memory",
                url=f'url = "{redis_url}"' if redis_url else "",
                host=HOST,
                port=port,
                token_env=TOKEN_ENV,
                secret_env=SECRET_ENV,
                path=WEBHOOK_PATH,
                api=api,
                metrics="true" if metrics else "false",
                metrics_port="" if metrics_port is None else f"port = {metrics_port}",
            ),
            encoding="utf-8",
        )
        main = "bench.decided" if decided else "bot.cli"
        module = [main, "serve", "--config", str(config), "--host", HOST, "--port", str(port)]
        if workers > 1:
            module += ["--workers", str(workers)]
    profile = os.environ.get(PROFILE_ENV)
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        out = str(Path(profile).resolve() / f"{name}.prof")
        return [sys.executable, "-m", "cProfile", "-o", out, "-m", *module]
    return [sys.executable, "-m", *module]


@contextlib.asynccontextmanager
async def server_process(
    server: Server,
    name: str,
    directory: Path,
    api: str,
    session: aiohttp.ClientSession,
    redis_url: str | None = None,
    metrics: bool = True,
    workers: int = 1,
    decided: bool = False,
) -> AsyncIterator[Running]:
    """The server under test as a subprocess; yields its webhook URL once healthy."""
    port = free_port()
    log = directory / f"{name}.log"
    env = {**os.environ, TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}
    # Several workers: each serves its own /metrics on this port + its index, which is
    # also how we know every worker is up (with SO_REUSEPORT, /healthz answering says
    # only that one is).
    metrics_port = free_ports(workers) if metrics and workers > 1 else None
    command = _server_command(
        server, name, directory, port, api, redis_url, metrics, workers, metrics_port, decided
    )
    process = spawn(command, log, env=env)
    try:
        await _wait_healthz(session, process, f"http://{HOST}:{port}/healthz", log)
        if metrics_port is not None:
            for index in range(workers):
                url = f"http://{HOST}:{metrics_port + index}/metrics"
                await _wait_healthz(session, process, url, log)
        yield Running(f"http://{HOST}:{port}{WEBHOOK_PATH}", process.pid)
    finally:
        await asyncio.to_thread(stop_process, process)
        if process.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(log)}")


@dataclass(frozen=True)
class Running:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now (Linux ``/proc``): a supervisor and its
    workers are all "the server"."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, ()))
    return tree


class CpuMeter:
    """CPU used by the given process trees and by this one (the generator and the fake
    API). A tree's processes are taken at the start; they all live through the phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.trees = {name: process_tree(pid) for name, pid in pids.items()}
        self.start = {name: self._cpu(tree) for name, tree in self.trees.items()}
        self.generator = time.process_time()

    @staticmethod
    def _cpu(tree: Sequence[int]) -> float | None:
        times = [cpu_seconds(pid) for pid in tree]
        return None if any(t is None for t in times) else sum(t for t in times if t is not None)

    def ms_per(self, messages: int) -> dict[str, float | None]:
        n = max(messages, 1)
        out: dict[str, float | None] = {}
        for name, tree in self.trees.items():
            before, now = self.start[name], self._cpu(tree)
            out[f"{name}_cpu_ms"] = (
                None if before is None or now is None else round(1000 * (now - before) / n, 3)
            )
        out["generator_and_fake_api_cpu_ms"] = round(
            1000 * (time.process_time() - self.generator) / n, 3
        )
        return out


#: ``INFO commandstats`` entries that are not the server's work for messages: our own
#: readings, and the greeting of a client's new connection.
NOT_COUNTED = frozenset({"cmdstat_info", "cmdstat_client|setinfo", "cmdstat_hello"})


class RedisCounters:
    """What a ``redis-server`` did between two readings, from ``INFO`` (one connection,
    opened before the first reading, so nothing of ours but the readings is counted).

    * commands: the sum of ``INFO commandstats`` calls, which counts every command a
      Lua script runs and the ``EVALSHA`` itself, ``MULTI``/``EXEC`` too (``INFO`` and
      a new connection's ``CLIENT SETINFO`` greetings left out);
    * round trips: ``total_reads_processed``, the server's read events: a client
      request (one command, a whole pipeline, a script call) arrives in one read when
      it is under 16 KiB, as every request here is, and a client waits for the answer
      before its connection sends again, so reads = round trips. The fair ceiling,
      which makes exactly one per message, checks it (its row reads 1.0 plus the
      bench's own readings). Our second ``INFO`` is one read, subtracted. A client
      opening a connection during the phase adds its greeting (redis-py sends two
      ``CLIENT SETINFO``: one or two reads), which stays in; ``connections_opened``
      says how many, negligible over a full run, not over a few messages. So are
      a closing connection's last read and, on a loaded machine, a request the
      kernel hands over in two reads: an upper bound, exact to a few percent over a
      full run.
    """

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(url)
        self.start: dict[str, float] = {}

    async def read(self) -> dict[str, float]:
        info = await self.client.info("all")
        commands = sum(
            int(v["calls"])
            for k, v in info.items()
            if k.startswith("cmdstat_") and k not in NOT_COUNTED and isinstance(v, dict)
        )
        return {
            "commands": commands,
            "round_trips": int(info["total_reads_processed"]),
            "connections": int(info["total_connections_received"]),
        }

    async def begin(self) -> None:
        self.start = await self.read()

    async def background(self, seconds: float) -> float:
        """Round trips per second the server makes with no message coming (its own
        periodic work: the content version check, the timer sweep)."""
        before = await self.read()
        await asyncio.sleep(seconds)
        after = await self.read()
        return max(0.0, (after["round_trips"] - before["round_trips"] - 1) / seconds)

    async def per_message(
        self, messages: int, seconds: float = 0.0, background_per_second: float = 0.0
    ) -> dict[str, float | int]:
        now = await self.read()
        n = max(messages, 1)
        trips = now["round_trips"] - self.start["round_trips"] - 1
        return {
            "redis_commands_per_message": round((now["commands"] - self.start["commands"]) / n, 2),
            "redis_round_trips_per_message": round(trips / n, 2),
            # the same without the server's own periodic work over the phase
            "redis_round_trips_per_message_net": round(
                max(0.0, trips - background_per_second * seconds) / n, 2
            ),
            "redis_background_round_trips_per_second": round(background_per_second, 2),
            "redis_connections_opened": int(now["connections"] - self.start["connections"]),
        }

    async def close(self) -> None:
        await self.client.aclose()


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Phase:
    """What one closed- or open-loop phase measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, first reply
    answered: int = 0
    sent: int = 0
    lost: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    max_lag: float = 0.0  # open loop: how late the generator sent, at worst
    overload: int = 0  # open loop: not sent, too many unanswered already

    def error(self, kind: str) -> None:
        self.lost += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        elapsed = max(self.finished - self.started, 1e-9)
        ordered = sorted(self.latencies)
        return {
            "sent": self.sent,
            "answered": self.answered,
            "lost": self.lost,
            "not_sent_overload": self.overload,
            "errors": dict(self.errors),
            "seconds": round(elapsed, 3),
            "messages_per_second": round(self.answered / elapsed, 1),
            "p50_ms": _ms(percentile(ordered, 0.50)),
            "p99_ms": _ms(percentile(ordered, 0.99)),
            "max_ms": _ms(ordered[-1] if ordered else None),
        }


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def update(update_id: int, chat: int, text: str = QUESTION) -> bytes:
    """A private-chat text message update, as Telegram posts it to a webhook."""
    user = {"id": chat, "is_bot": False, "first_name": "Cliente", "language_code": "pt-br"}
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat, "type": "private", "first_name": "Cliente"},
        "from": user,
        "text": text,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


HEADERS = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}


class Generator:
    """Simulated customers posting webhooks and waiting for replies at the fake API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        fake: FakeTelegramApi,
        url: str,
        *,
        first_chat: int,
        replies_per_message: int = 1,
        reply_timeout: float = REPLY_TIMEOUT,
    ) -> None:
        self.session = session
        self.fake = fake
        self.url = url
        self.replies = replies_per_message
        self.reply_timeout = reply_timeout
        self._updates = itertools.count(1)
        self._chats = itertools.count(first_chat)

    def new_customer(self) -> int:
        return next(self._chats)

    async def message(self, chat: int, phase: Phase | None) -> None:
        """One customer message: POST, then wait until all its replies arrived."""
        before = self.fake.count(chat)
        body = update(next(self._updates), chat)
        if phase is not None:
            phase.sent += 1
        start = time.monotonic()
        try:
            async with self.session.post(self.url, data=body, headers=HEADERS) as response:
                await response.read()
                if response.status != 200:
                    raise _Lost(f"http {response.status}")
            async with asyncio.timeout(self.reply_timeout):
                times = await self.fake.wait(chat, before + self.replies)
        except _Lost as e:
            if phase is None:
                raise RuntimeError(f"warm-up message not answered: {e}") from None
            phase.error(str(e))
            return
        except (aiohttp.ClientError, TimeoutError) as e:
            if phase is None:
                raise RuntimeError(f"warm-up message not answered: {e!r}") from e
            phase.error(type(e).__name__)
            return
        if phase is not None:
            phase.latencies.append(times[before] - start)
            phase.answered += 1

    async def calibrate(self, expected: int) -> int:
        """How many ``sendMessage`` calls one question causes: waits for the ``expected``
        ones (escala: answer + survey; a condition, however slow the machine), then
        ``SETTLE_SECONDS`` for any more."""
        chat = self.new_customer()
        self.replies = expected
        await self.message(chat, None)
        await asyncio.sleep(SETTLE_SECONDS)  # any further replies of the same message
        self.replies = self.fake.count(chat)
        return self.replies

    async def closed_loop(
        self, customers: Sequence[int], messages: int, seconds: float, max_requests: int
    ) -> Phase:
        """Each customer sends up to ``messages``, one at a time; none starts after
        ``seconds`` or once ``max_requests`` were sent."""
        phase = Phase()
        deadline = time.monotonic() + seconds
        budget = itertools.count()

        async def customer(chat: int) -> None:
            for _ in range(messages):
                if time.monotonic() >= deadline or next(budget) >= max_requests:
                    return
                await self.message(chat, phase)

        phase.started = time.monotonic()
        await asyncio.gather(*(customer(c) for c in customers))
        phase.finished = time.monotonic()
        return phase

    async def open_loop(
        self, rate: float, count: int, max_seconds: float, idle: Sequence[int], max_in_flight: int
    ) -> Phase:
        """``count`` messages at ``rate``/s on a fixed schedule, each to an idle customer.
        A message due while ``max_in_flight`` are unanswered is not sent (``overload``):
        the generator stays bounded when the server cannot keep up."""
        phase = Phase()
        ready: deque[int] = deque(idle)
        tasks: set[asyncio.Task[None]] = set()

        async def one(chat: int) -> None:
            try:
                await self.message(chat, phase)
            finally:
                ready.append(chat)

        phase.started = start = time.monotonic()
        deadline = start + max_seconds
        for i in range(count):
            due = start + i / rate
            now = time.monotonic()
            if due >= deadline:
                break
            if due > now:
                await asyncio.sleep(due - now)
            else:
                phase.max_lag = max(phase.max_lag, now - due)
            if len(tasks) >= max_in_flight:
                phase.overload += 1
                continue
            chat = ready.popleft() if ready else self.new_customer()
            task = asyncio.create_task(one(chat))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=self.reply_timeout + 5)
        phase.finished = time.monotonic()
        for task in tasks:  # only if the waits above overran: counted as lost
            task.cancel()
        return phase


class _Lost(Exception):
    pass


# --- scenarios --------------------------------------------------------------------------------


async def run_scenario(
    server: Server,
    *,
    store: StoreName | None = None,
    customers: int,
    messages_per_customer: int,
    rate: float | None = None,
    closed_seconds: float = 10.0,
    open_seconds: float = 5.0,
    max_seconds: float = MAX_SECONDS,
    max_requests: int = MAX_REQUESTS,
    progress: Progress | None = None,
    metrics: bool = True,
    reply_timeout: float = REPLY_TIMEOUT,
    workers: int = 1,
    name: str | None = None,
    decided: bool = False,
) -> dict[str, Any]:
    """``escala serve`` on ``store`` (``server="escala"``, ``workers`` processes), or a
    reference server of :mod:`bench.ceilings` (the fair ceiling always on its own
    Redis): the closed loop (the maximum rate), then an open loop at ``rate``
    messages/s (None: 80% of the measured maximum; 0: no open loop).
    ``metrics=False`` serves with ``[metrics] enabled = false`` (issue 14: what metrics
    cost). ``decided=True`` runs :mod:`bench.decided` (decisions remembered: what
    deciding costs). A message not answered within ``reply_timeout`` counts as lost.
    Raises :class:`Skipped` for Redis without ``redis-server``."""
    progress = progress or Progress()
    if server == "fair-ceiling":
        store = "redis"
    if name is None:
        name = server if server != "escala" else f"escala-{store}"
        name += "" if metrics else "-metrics-off"
        name += "" if workers == 1 else f"-{workers}workers"
        name += "-decided" if decided else ""
    fake = FakeTelegramApi()
    await fake.start()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=reply_timeout)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            contextlib.AsyncExitStack() as stack,
        ):
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-")))
            redis = None
            if store == "redis":
                redis = await stack.enter_async_context(redis_server(directory))
            redis_url = redis.url if redis is not None else None
            target = await stack.enter_async_context(
                server_process(
                    server, name, directory, fake.url, session, redis_url, metrics, workers, decided
                )
            )
            generator = Generator(
                session, fake, target.url, first_chat=1_000_000, reply_timeout=reply_timeout
            )
            replies = await generator.calibrate(REPLIES[server])
            progress.say(f"[e2e {name}] up; one question causes {replies} sendMessage call(s)")
            people = [generator.new_customer() for _ in range(customers)]
            await asyncio.gather(*(generator.message(c, None) for c in people))  # warm-up

            pids = {"server": target.pid, **({"redis": redis.pid} if redis else {})}
            counters = None
            background = 0.0
            if redis_url is not None:
                counters = RedisCounters(redis_url)
                stack.push_async_callback(counters.close)
                background = await counters.background(BACKGROUND_SECONDS)
                await counters.begin()
            cpu = CpuMeter(pids)
            closed = await generator.closed_loop(
                people, messages_per_customer, min(closed_seconds, max_seconds), max_requests
            )
            cost: dict[str, Any] = cpu.ms_per(closed.answered)
            cost["server_processes"] = len(cpu.trees["server"])
            # How much of the machine each part used (on 2 cores, 2.0 is all of it):
            # what a second worker could get depends on what the others leave.
            answered_per_second = closed.answered / max(closed.finished - closed.started, 1e-9)
            cores = {
                part: round(ms * answered_per_second / 1000, 2)
                for part, key in (
                    ("server", "server_cpu_ms"),
                    ("redis", "redis_cpu_ms"),
                    ("generator_and_fake_api", "generator_and_fake_api_cpu_ms"),
                )
                if isinstance(ms := cost.get(key), float | int)
            }
            if counters is not None:
                cost.update(
                    await counters.per_message(
                        closed.answered, closed.finished - closed.started, background
                    )
                )
            result: dict[str, Any] = {
                "server": server,
                "store": store,
                "workers": workers,
                "metrics": metrics,
                "decided": decided,
                "replies_per_message": replies,
                "customers": customers,
                "messages_per_customer": messages_per_customer,
                "closed_loop": closed.summary(),
                "closed_loop_cost_per_message": cost,
                "closed_loop_cores_used": cores,
            }
            summary = result["closed_loop"]
            progress.say(
                f"[e2e {name}] closed loop: {summary['messages_per_second']} msg/s, "
                f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, lost {closed.lost}"
            )
            max_rate = closed.answered / max(closed.finished - closed.started, 1e-9)
            target_rate = rate if rate is not None else OPEN_LOOP_FRACTION * max_rate
            if target_rate > 0:
                count = min(max_requests, max(1, round(target_rate * open_seconds)))
                opened = await generator.open_loop(
                    target_rate, count, max_seconds, people, max_in_flight=MAX_IN_FLIGHT
                )
                result["open_loop"] = {
                    "target_rate": round(target_rate, 1),
                    "fraction_of_max": round(target_rate / max_rate, 3) if max_rate else None,
                    "generator_max_lag_ms": _ms(opened.max_lag),
                    **opened.summary(),
                }
                summary = result["open_loop"]
                progress.say(
                    f"[e2e {name}] open loop at {summary['target_rate']} msg/s: "
                    f"{summary['messages_per_second']} msg/s, p50 {summary['p50_ms']} ms, "
                    f"p99 {summary['p99_ms']} ms, lost {opened.lost}"
                )
            result["fake_api_calls"] = {"sendMessage": fake.calls, "other": fake.other_calls}
    finally:
        await fake.close()
    return result


async def run_rows(
    quick: bool,
    progress: Progress,
    rows: Sequence[str] | None = None,
    webchat: bool = True,
    reply_timeout: float = REPLY_TIMEOUT,
) -> dict[str, Any]:
    """Every row of :data:`ROWS` (or ``rows``), then the web chat's; JSON-able."""
    size = QUICK if quick else FULL
    common: dict[str, Any] = {
        "customers": int(size["customers"]),
        "messages_per_customer": int(size["messages_per_customer"]),
        "closed_seconds": float(size["closed_seconds"]),
        "open_seconds": float(size["open_seconds"]),
        "progress": progress,
        "reply_timeout": reply_timeout,
    }
    scenarios: dict[str, dict[str, Any]] = {}
    for name in rows or tuple(ROWS):
        row = ROWS[name]
        try:
            scenarios[name] = await run_scenario(
                row.server,
                store=row.store,
                metrics=row.metrics,
                workers=row.workers,
                decided=row.decided,
                name=name,
                **common,
            )
        except Skipped as e:
            progress.say(f"[e2e {name}] skipped: {e}")
            scenarios[name] = {"skipped": str(e)}
    result: dict[str, Any] = {
        "machine": machine(),
        "load_average": _load_average(),
        "quick": quick,
        "limits": {"max_seconds": MAX_SECONDS, "max_requests": MAX_REQUESTS},
        "question": QUESTION,
        "scenarios": compare(scenarios),
        "targets": targets(scenarios),
        "metrics_overhead": metrics_overhead(scenarios),
        "decision_cost": decision_cost(scenarios),
    }
    if webchat:
        from bench.webchat import run_webchat  # the web chat's row (issue 17)

        result["webchat"] = await run_webchat(
            customers=common["customers"],
            messages_per_customer=common["messages_per_customer"],
            seconds=common["closed_seconds"],
            progress=progress,
        )
    result["load_average_after"] = _load_average()
    return result


def _load_average() -> list[float] | None:
    """``uptime``'s 1, 5 and 15 minute load averages: how busy the shared machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def compare(scenarios: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Adds to every row its rate as a share of the fair ceiling's (and of the old
    ceiling's, for the record)."""
    for key, reference in (("ratio_to_fair_ceiling", "fair-ceiling"), ("ratio_to_ceiling", "old-ceiling")):  # fmt: skip
        base = scenarios.get(reference, {}).get("closed_loop", {}).get("messages_per_second")
        for result in scenarios.values():
            if "closed_loop" in result:
                rate = result["closed_loop"]["messages_per_second"]
                result[key] = round(rate / base, 3) if base else None
    return scenarios


def metrics_overhead(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Issue 14: throughput and server CPU per message with metrics on vs off (Redis)."""
    on, off = scenarios.get("escala-redis", {}), scenarios.get("escala-redis-metrics-off", {})
    if "closed_loop" not in on or "closed_loop" not in off:
        return {"skipped": "no Redis runs"}
    rate_on = on["closed_loop"]["messages_per_second"]
    rate_off = off["closed_loop"]["messages_per_second"]
    cpu_on = on.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
    cpu_off = off.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
    return {
        "throughput_cost": round(1 - rate_on / rate_off, 3) if rate_off else None,
        "cpu_cost": round(cpu_on / cpu_off - 1, 3) if cpu_on and cpu_off else None,
        "target": 0.05,
    }


def decision_cost(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Issue 18, per store with both rows: server CPU per message of the plain row minus
    the ``-decided`` row's (what the decision costs under load), and the decided row's
    share of the fair ceiling (where Escala would be, deciding for free)."""
    out: dict[str, Any] = {}
    for store in ("memory", "redis"):
        plain, decided = (
            scenarios.get(f"escala-{store}", {}),
            scenarios.get(f"escala-{store}-decided", {}),
        )
        if "closed_loop" not in plain or "closed_loop" not in decided:
            continue
        cpu = plain.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
        cpu_decided = decided.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
        out[store] = {
            "decision_cpu_ms": round(cpu - cpu_decided, 3) if cpu and cpu_decided else None,
            "decided_ratio_to_fair_ceiling": decided.get("ratio_to_fair_ceiling"),
        }
    return out


def targets(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Issue 18: Redis at >= 50% of the fair ceiling and memory at >= 60%; <= 2 Redis
    round trips per KB answer; p99 <= 50 ms at 80% of the max rate; 2 workers >= 1.6x
    one."""
    redis = scenarios.get("escala-redis", {})
    if "closed_loop" not in redis:
        return {"skipped": redis.get("skipped", "no Redis run")}
    memory = scenarios.get("escala-memory", {})
    ratio = redis.get("ratio_to_fair_ceiling")
    memory_ratio = memory.get("ratio_to_fair_ceiling")
    cost = redis["closed_loop_cost_per_message"]
    raw_trips = cost.get("redis_round_trips_per_message")
    # Judged per customer message: without the server's own once-a-second work.
    trips = cost.get("redis_round_trips_per_message_net", raw_trips)
    p99 = redis.get("open_loop", {}).get("p99_ms")
    two = scenarios.get("escala-redis-2workers", {}).get("closed_loop", {})
    speedup = (
        round(two["messages_per_second"] / redis["closed_loop"]["messages_per_second"], 2)
        if two and redis["closed_loop"]["messages_per_second"]
        else None
    )
    return {
        "ratio_to_fair_ceiling": ratio,
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio is not None and ratio >= TARGET_RATIO,
        "memory_ratio_to_fair_ceiling": memory_ratio,
        "memory_ratio_target": TARGET_MEMORY_RATIO,
        "memory_ratio_met": memory_ratio is not None and memory_ratio >= TARGET_MEMORY_RATIO,
        "round_trips_per_message": trips,
        "round_trips_per_message_raw": raw_trips,
        "background_round_trips_per_second": cost.get("redis_background_round_trips_per_second"),
        "round_trips_target": TARGET_ROUND_TRIPS,
        "round_trips_met": trips is not None and trips <= TARGET_ROUND_TRIPS,
        "open_loop_p99_ms": p99,
        "p99_target_ms": TARGET_P99_MS,
        "p99_met": p99 is not None and p99 <= TARGET_P99_MS,
        "two_workers_speedup": speedup,
        "two_workers_target": TARGET_TWO_WORKERS,
        "two_workers_met": speedup is not None and speedup >= TARGET_TWO_WORKERS,
    }


async def workers_pairs(pairs: int, quick: bool, progress: Progress) -> dict[str, Any]:
    """``escala-redis`` and ``escala-redis-2workers``, closed loop only, ``pairs`` times
    in alternating order: one pair on a shared machine is noise. The median of the
    paired ratios, and the cores each part was given (what the machine allowed)."""
    size = QUICK if quick else FULL
    runs: list[dict[str, Any]] = []
    for n in range(pairs):
        got: dict[int, dict[str, Any]] = {}
        for workers in (1, 2) if n % 2 == 0 else (2, 1):
            got[workers] = await run_scenario(
                "escala",
                store="redis",
                workers=workers,
                customers=int(size["customers"]),
                messages_per_customer=int(size["messages_per_customer"]),
                closed_seconds=float(size["closed_seconds"]),
                rate=0,
                progress=progress,
            )
        one, two = got[1]["closed_loop"], got[2]["closed_loop"]
        runs.append(
            {
                "load_average": _load_average(),
                "msg_s_1": one["messages_per_second"],
                "msg_s_2": two["messages_per_second"],
                "ratio": round(two["messages_per_second"] / one["messages_per_second"], 3),
                "cores_1": got[1]["closed_loop_cores_used"],
                "cores_2": got[2]["closed_loop_cores_used"],
            }
        )
        progress.say(f"[e2e workers] pair {n + 1}/{pairs}: {runs[-1]}")
    return {
        "machine": machine(),
        "pairs": runs,
        "ratio_median": statistics.median(r["ratio"] for r in runs) if runs else None,
        "target": TARGET_TWO_WORKERS,
    }


def run_all(
    quick: bool,
    progress: Progress | None = None,
    rows: Sequence[str] | None = None,
    webchat: bool = True,
    reply_timeout: float = REPLY_TIMEOUT,
) -> dict[str, Any]:
    """:func:`run_rows` in an event loop of its own."""
    return asyncio.run(run_rows(quick, progress or Progress(), rows, webchat, reply_timeout))


COLUMNS = (
    "server",
    "replies/msg",
    "msg/s (closed loop)",
    "% of fair ceiling",
    "server CPU / msg",
    "Redis CPU / msg",
    "Redis round trips / msg",
    "Redis commands / msg",
    "closed p50 / p99",
    "open loop rate (asked)",
    "open p50",
    "open p99",
    "lost",
    "cores busy: server + Redis + generator",
)


def markdown(result: dict[str, Any], *, machine_line: bool = True) -> str:
    """The results as a Markdown table (README-ready). ``machine_line=False`` inside
    the full report (:mod:`bench.report`), whose header already names the machine."""
    m = result["machine"]
    lines = ["### End-to-end throughput (`escala serve`, Telegram webhooks on loopback)", ""]
    if machine_line:
        load = result.get("load_average")
        lines += [
            f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. "
            f"Mode: {'quick sample' if result.get('quick') else 'full'}."
            + (f" Load average at the start: {', '.join(map(str, load))}." if load else ""),
            "",
        ]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in result["scenarios"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} |" + " |" * (len(COLUMNS) - 2))
            continue
        lines.append("| " + " | ".join(_cells(name, r)) + " |")
    overhead = result.get("metrics_overhead", {})
    if overhead.get("throughput_cost") is not None:
        cpu = overhead.get("cpu_cost")
        lines += [
            "",
            f"Metrics (issue 14, Redis, on vs off): throughput "
            f"{-100 * overhead['throughput_cost']:+.1f}%, server CPU per message "
            f"{'–' if cpu is None else f'{100 * cpu:+.1f}%'} (target: under 5% cost).",
        ]
    t = result["targets"]
    if "skipped" not in t:
        lines += ["", "Targets (issue 18): " + "; ".join(_target_lines(t)) + "."]
    decisions = result.get("decision_cost") or {}
    if decisions:
        said = [
            f"{store}: {_unit(d['decision_cpu_ms'], ' ms')} of server CPU per message; "
            f"with decisions remembered, {_percent(d['decided_ratio_to_fair_ceiling'])} of "
            "the fair ceiling"
            for store, d in decisions.items()
        ]
        lines += ["", "The decision (issue 18, the -decided rows): " + "; ".join(said) + "."]
    if "webchat" in result:
        from bench import webchat

        lines += ["", webchat.markdown(result["webchat"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _cells(name: str, r: dict[str, Any]) -> list[str]:
    c, o = r["closed_loop"], r.get("open_loop", {})
    cost = r.get("closed_loop_cost_per_message", {})
    ratio = r.get("ratio_to_fair_ceiling")
    return [
        name,
        str(r["replies_per_message"]),
        str(c["messages_per_second"]),
        "–" if ratio is None or r["server"] != "escala" else f"{100 * ratio:.0f}%",
        _unit(cost.get("server_cpu_ms"), " ms"),
        _unit(cost.get("redis_cpu_ms"), " ms"),
        trips_cell(cost),
        _unit(cost.get("redis_commands_per_message")),
        f"{_unit(c['p50_ms'])} / {_unit(c['p99_ms'], ' ms')}",
        f"{o.get('messages_per_second', '–')} ({o.get('target_rate', '–')})",
        _unit(o.get("p50_ms"), " ms"),
        _unit(o.get("p99_ms"), " ms"),
        str(c["lost"] + o.get("lost", 0)),
        " + ".join(
            _unit(r.get("closed_loop_cores_used", {}).get(part))
            for part in ("server", "redis", "generator_and_fake_api")
        ),
    ]


def trips_cell(cost: dict[str, Any]) -> str:
    """Round trips per message, and net of the server's periodic work when it differs."""
    raw, net = (
        cost.get("redis_round_trips_per_message"),
        cost.get("redis_round_trips_per_message_net"),
    )
    return _unit(raw) if net is None or net == raw else f"{raw} ({net} net)"


def _unit(value: object, unit: str = "") -> str:
    return "–" if value is None else f"{value}{unit}"


def _percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100 * ratio:.0f}%"


def _target_lines(t: dict[str, Any]) -> list[str]:
    def met(key: str) -> str:
        return "met" if t[key] else "NOT met"

    out = [
        f"Redis {100 * (t['ratio_to_fair_ceiling'] or 0):.0f}% of the fair ceiling "
        f"(≥ {100 * TARGET_RATIO:.0f}%: {met('ratio_met')})",
    ]
    if t["memory_ratio_to_fair_ceiling"] is not None:
        out.append(
            f"memory {100 * t['memory_ratio_to_fair_ceiling']:.0f}% "
            f"(≥ {100 * TARGET_MEMORY_RATIO:.0f}%: {met('memory_ratio_met')})"
        )
    out += [
        f"{t['round_trips_per_message']} Redis round trips per KB answer "
        f"({t.get('round_trips_per_message_raw')} with the server's own "
        f"{t.get('background_round_trips_per_second')} per second; "
        f"≤ {TARGET_ROUND_TRIPS}: {met('round_trips_met')})",
        f"open-loop p99 {t['open_loop_p99_ms']} ms on Redis at "
        f"{100 * OPEN_LOOP_FRACTION:.0f}% of its max rate "
        f"(≤ {TARGET_P99_MS:.0f} ms: {met('p99_met')})",
    ]
    if t["two_workers_speedup"] is not None:
        out.append(
            f"2 workers {t['two_workers_speedup']}× one "
            f"(≥ {TARGET_TWO_WORKERS}×: {met('two_workers_met')})"
        )
    return out


#: What ``--rounds`` reads of each row, per round.
ROUND_MEASURES = ("msg_s", "server_cpu_ms", "share_by_msg_s", "share_by_cpu")


def rounds_summary(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each row's rate and CPU per message in every round of ``--rounds``, with its share
    of the fair ceiling measured in the same round, and the medians.

    On a shared machine the same code's CPU per message moves by more than a change
    under test; a row's share of a ceiling measured minutes earlier moves less, and the
    median of several rounds less still."""
    rows: dict[str, dict[str, list[float]]] = {}
    for result in results:
        scenarios = result["scenarios"]
        ceiling = scenarios.get("fair-ceiling", {})
        ceiling_rate = ceiling.get("closed_loop", {}).get("messages_per_second")
        ceiling_cpu = ceiling.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
        for name, row in scenarios.items():
            if "closed_loop" not in row:
                continue
            rate = row["closed_loop"]["messages_per_second"]
            cpu = row.get("closed_loop_cost_per_message", {}).get("server_cpu_ms")
            got = rows.setdefault(name, {m: [] for m in ROUND_MEASURES})
            got["msg_s"].append(rate)
            if cpu:
                got["server_cpu_ms"].append(cpu)
            if name != "fair-ceiling" and ceiling_rate and rate:
                got["share_by_msg_s"].append(round(rate / ceiling_rate, 3))
            if name != "fair-ceiling" and ceiling_cpu and cpu:
                got["share_by_cpu"].append(round(ceiling_cpu / cpu, 3))
    return {
        name: {
            measure: {
                "rounds": values,
                "median": round(statistics.median(values), 3) if values else None,
            }
            for measure, values in got.items()
        }
        for name, got in rows.items()
    }


def rounds_markdown(summary: dict[str, Any]) -> str:
    """:func:`rounds_summary` as a Markdown table: every round, then the median."""

    def cell(measure: dict[str, Any], percent: bool = False) -> str:
        def show(v: float) -> str:
            return f"{100 * v:.0f}%" if percent else f"{v:g}"

        if measure["median"] is None:
            return "–"
        rounds = ", ".join(show(v) for v in measure["rounds"])
        return f"{rounds} (**{show(measure['median'])}**)"

    lines = [
        "| row | msg/s (closed loop) | server CPU / msg, ms | % of the fair ceiling "
        "by msg/s | % of the fair ceiling by CPU / msg |",
        "|---|---|---|---|---|",
    ]
    for name, m in summary.items():
        lines.append(
            f"| {name} | {cell(m['msg_s'])} | {cell(m['server_cpu_ms'])} | "
            f"{cell(m['share_by_msg_s'], True)} | {cell(m['share_by_cpu'], True)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke)")
    parser.add_argument(
        "--rows",
        help=f"comma-separated rows (default: all of {', '.join(ROWS)})",
    )
    parser.add_argument("--no-webchat", action="store_true", help="leave the web chat row out")
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=REPLY_TIMEOUT,
        help=f"seconds a message waits for its replies before it counts as lost "
        f"(default {REPLY_TIMEOUT:.0f}; raise it to see how late late replies are)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--workers-pairs",
        type=int,
        metavar="N",
        help="instead: 1 vs 2 workers on Redis, N alternating pairs (closed loop)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="run the rows N times in turn (without the web chat) and report each row's "
        "share of the fair ceiling measured in the same round, with medians (the rows "
        "must include fair-ceiling)",
    )
    args = parser.parse_args(argv)
    if args.workers_pairs:
        pairs = asyncio.run(workers_pairs(args.workers_pairs, args.quick, Progress()))
        if args.json is not None:
            args.json.write_text(json.dumps(pairs, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(pairs, indent=2))
        return 0
    rows = [r for r in (args.rows or "").split(",") if r] or None
    unknown = [r for r in rows or () if r not in ROWS]
    if unknown:
        parser.error(f"unknown row '{unknown[0]}' (known: {', '.join(ROWS)})")
    if args.rounds:
        if rows is not None and "fair-ceiling" not in rows:
            parser.error("--rounds compares rows with the fair ceiling: add fair-ceiling")
        results = [
            run_all(args.quick, rows=rows, webchat=False, reply_timeout=args.reply_timeout)
            for _ in range(args.rounds)
        ]
        summary = rounds_summary(results)
        if args.json is not None:
            document = {"rounds": results, "summary": summary}
            args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        for n, result in enumerate(results, 1):
            print(f"Round {n}:\n\n{markdown(result)}")
        print(rounds_markdown(summary))
        return 0
    result = run_all(
        args.quick, rows=rows, webchat=not args.no_webchat, reply_timeout=args.reply_timeout
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
