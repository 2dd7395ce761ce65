"""Many processes on one Redis (issue 17): the visitor's socket lives on an
``escala serve`` process; the agent's reply is produced by another process (here the
test's own, with its own web chat plug-in) and still reaches the socket, in order."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bot.app import build
from bot.server import build_plugins
from bot.settings import load_settings
from bot.store.redis import RedisStore
from tests.webchat.conftest import IDENTITY_ENV, IDENTITY_SECRET, SECRET, SECRET_ENV, WAIT_MS
from tests.webchat.test_browser import say, ticket_number

ROOT = Path(__file__).resolve().parents[2]
START_LIMIT_SECONDS = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "escala.toml"
    path.write_text(
        f'[store]\nbackend = "redis"\nurl = "{redis_url}"\n\n'
        f'[channels.webchat]\nsecret_env = "{SECRET_ENV}"\n'
        f'identity_secret_env = "{IDENTITY_ENV}"\ndemo_page = true\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def serve(config: Path, redis_url: str) -> Iterator[str]:
    """``escala serve`` in its own process; its URL once it answers /healthz."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    env = {**os.environ, SECRET_ENV: SECRET, IDENTITY_ENV: IDENTITY_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(config),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_LIMIT_SECONDS
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"escala serve exited:\n{output}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "escala serve did not answer /healthz"
            time.sleep(0.1)  # poll interval, bounded by the deadline above
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_an_agent_reply_made_on_another_process_reaches_the_socket(
    browser: Browser, serve: str, config: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = await (await browser.new_context(locale="pt-BR")).new_page()
    await page.goto(f"{serve}/webchat/demo")
    await page.click(".bubble")
    await say(page, "atendente")
    number = await ticket_number(page)

    # The agents' process: same settings, same Redis, its own web chat sender.
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(IDENTITY_ENV, IDENTITY_SECRET)
    settings = load_settings(config)
    store = RedisStore.from_url(redis_url)
    try:
        escala = build(settings, store=store)
        build_plugins(settings, escala)
        assert (await escala.desk.claim("ana", number)).ok
        for n in range(1, 4):
            assert (await escala.desk.reply("ana", number, f"parte {n} de 3")).ok
        lines = page.locator(".msg.agent .text")
        await expect(lines).to_have_text(
            ["parte 1 de 3", "parte 2 de 3", "parte 3 de 3"], timeout=WAIT_MS
        )
        await expect(page.locator(".ticket")).to_contain_text("em atendimento", timeout=WAIT_MS)
    finally:
        await store.close()
