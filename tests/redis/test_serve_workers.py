"""Issue 18: ``escala serve --workers N`` as real processes on a real ``redis-server``.

The supervisor starts N workers on one port (SO_REUSEPORT); both handle customers'
webhooks (their access log lines name the worker's pid), SIGTERM stops every worker
gracefully, a worker that dies on its own stops the service (nothing is restarted
silently), and a configuration several workers cannot serve is refused at start-up.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bench.e2e import HEADERS, QUESTION, SECRET, TOKEN, FakeTelegramApi, update
from bench.processes import free_port, free_ports, stop_process
from tests.waits import PATIENCE, eventually

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV, SECRET_ENV = "ESCALA_TEST_TG_TOKEN", "ESCALA_TEST_TG_SECRET"
SERVING = re.compile(r"escala worker (\d)/2 \(pid (\d+)\) serving")
WEBHOOK_LINE = re.compile(r'"POST /telegram/webhook HTTP/1\.1" 200 .* pid=<(\d+)>')

CONFIG = """\
[store]
backend = "{backend}"
{url}

[server]
access_log = true

[metrics]
port = {metrics_port}

{channel}
"""

TELEGRAM = """\
[channels.telegram]
mode = "webhook"
token_env = "{token_env}"
secret_token_env = "{secret_env}"
webhook_path = "/telegram/webhook"
api_base = "{api}"
"""

SMS = """\
[channels.sms]
account_sid_env = "ESCALA_TEST_SID"
auth_token_env = "ESCALA_TEST_TOKEN"
from_number = "+15550001111"
public_base_url = "https://bot.example.com"
"""


def _config(tmp_path: Path, channel: str, url: str | None, metrics_port: int) -> Path:
    path = tmp_path / "escala.toml"
    backend = "redis" if url else "memory"
    text = CONFIG.format(
        backend=backend,
        url=f'url = "{url}"' if url else "",
        metrics_port=metrics_port,
        channel=channel,
    )
    path.write_text(text, encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {
        **os.environ,
        TOKEN_ENV: TOKEN,
        SECRET_ENV: SECRET,
        "ESCALA_TEST_SID": "AC1",
        "ESCALA_TEST_TOKEN": "token",
    }


class Supervisor:
    """``escala serve --workers 2`` with its output in a log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=_env(), stdout=output, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def workers(self) -> dict[int, int]:
        """Worker index -> pid, once both say they serve."""
        found: dict[int, int] = {}

        def both() -> bool:
            assert self.process.poll() is None, self.text()
            found.update({int(i): int(pid) for i, pid in SERVING.findall(self.text())})
            return len(found) == 2

        await eventually(both, "both workers serving")
        return found


@pytest.fixture
def worker_redis_url(redis_url: str) -> str:
    """A database of the suite's redis-server of its own (the workers publish content)."""
    return redis_url.rsplit("/", 1)[0] + "/7"


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramApi]:
    fake = FakeTelegramApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for supervisor in started:
        stop_process(supervisor.process)


def _alive(pid: int) -> bool:
    """A process with this pid exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_two_workers_both_answer_customers_and_stop_on_sigterm(
    tmp_path: Path,
    worker_redis_url: str,
    fake_telegram: FakeTelegramApi,
    supervised: list[Supervisor],
) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(worker_redis_url)
    await client.flushdb()
    await client.aclose()
    channel = TELEGRAM.format(token_env=TOKEN_ENV, secret_env=SECRET_ENV, api=fake_telegram.url)
    config = _config(
        tmp_path, channel, worker_redis_url, free_ports(2)
    )  # a metrics port per worker
    supervisor = Supervisor(config, tmp_path / "serve.log")
    supervised.append(supervisor)
    pids = await supervisor.workers()
    url = f"http://127.0.0.1:{supervisor.port}/telegram/webhook"

    # One customer per message, each on a new connection: the kernel spreads new
    # connections over the two listening sockets, so both workers get some.
    sent: list[int] = []

    async def served_by() -> set[int]:
        return {int(pid) for pid in WEBHOOK_LINE.findall(supervisor.text())}

    async def one_more() -> bool:
        chat = 5_000 + len(sent)
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(url, data=update(len(sent) + 1, chat, QUESTION), headers=HEADERS) as r,
        ):
            assert r.status == 200, await r.text()
        sent.append(chat)
        return await served_by() == set(pids.values())

    await eventually(one_more, "webhooks served by both workers")
    # Every customer got the answer and "did this help?", whichever worker took it.
    await asyncio.gather(*(asyncio.wait_for(fake_telegram.wait(c, 2), PATIENCE) for c in sent))
    assert {c: fake_telegram.count(c) for c in sent} == {c: 2 for c in sent}
    assert await served_by() == set(pids.values())

    supervisor.process.send_signal(signal.SIGTERM)
    assert supervisor.process.wait(timeout=PATIENCE) == 0, supervisor.text()
    assert not any(_alive(pid) for pid in pids.values())
    log = supervisor.text()
    assert "SIGTERM: stopping 2 worker(s)" in log and "all 2 worker(s) stopped" in log
    assert "Traceback" not in log


async def test_a_worker_dying_stops_the_service_and_says_so(
    tmp_path: Path, worker_redis_url: str, supervised: list[Supervisor]
) -> None:
    config = _config(tmp_path, SMS, worker_redis_url, free_ports(2))  # a metrics port per worker
    supervisor = Supervisor(config, tmp_path / "serve.log")
    supervised.append(supervisor)
    pids = await supervisor.workers()

    os.kill(pids[1], signal.SIGKILL)
    assert supervisor.process.wait(timeout=PATIENCE) == 1, supervisor.text()
    assert not _alive(pids[0])  # the other one was stopped, not left serving alone
    assert f"worker 1 (pid {pids[1]}) exited on its own with status -9" in supervisor.text()


def _refused(config: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)]
    return subprocess.run(
        [*command, "--workers", "2", "--port", str(free_port())],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip


def test_the_memory_store_is_refused_with_several_workers(tmp_path: Path) -> None:
    config = _config(tmp_path, SMS, None, free_ports(2))  # a metrics port per worker
    result = _refused(config)
    assert result.returncode == 2, result.stderr
    assert f"{config}: store.backend: 'memory' keeps conversations inside one process" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "started" not in result.stderr


def test_shared_metrics_port_is_refused_with_several_workers(
    tmp_path: Path, worker_redis_url: str
) -> None:
    config = _config(tmp_path, SMS, worker_redis_url, free_ports(2))  # a metrics port per worker
    config.write_text(config.read_text().replace("[metrics]\nport", "[metrics]\n# port"))
    result = _refused(config)
    assert result.returncode == 2, result.stderr
    assert f"{config}: metrics.port: --workers 2: each worker counts its own metrics" in (
        result.stderr
    )
