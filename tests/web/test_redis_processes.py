"""Two real ``escala serve`` processes on one Redis: the agent's browser is on one, the
customer's Telegram message arrives through the other, and it shows up live; the
agent's reply, made on the first, reaches the customer through the fake Bot API
under the agent's name."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession
from playwright.async_api import Browser, expect

from bot.models import ConsoleRole
from bot.settings import DEFAULT_AGENTS
from bot.store.redis import RedisStore
from bot.users import Users
from tests.channels.fakes import FakeTelegram
from tests.channels.harness import message
from tests.waits import PATIENCE
from tests.web.harness import PASSWORD, live, sign_in, until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token"
SECRET = "web-console-secret"
START_SECONDS = PATIENCE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Serve:
    """One ``escala serve`` process (stopped with SIGTERM, like a deployment)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TG_TOKEN": TOKEN, "TG_SECRET": SECRET}
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--config", str(config),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        async with ClientSession() as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"escala serve exited:\n{self.log.read_text()}")
                try:
                    async with client.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except ClientError:
                    pass
                if loop.time() > deadline:
                    raise RuntimeError(f"escala serve not ready:\n{self.log.read_text()}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start_fake()
    yield fake
    await fake.close()


@pytest.fixture
async def two_processes(
    tmp_path: Path, redis_url: str, telegram: FakeTelegram
) -> AsyncIterator[tuple[Serve, Serve]]:
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    await Users(store, DEFAULT_AGENTS).add("ana", PASSWORD, ConsoleRole.AGENT, agent_id="ana")
    await store.close()
    config = tmp_path / "escala.toml"
    config.write_text(
        f"""
[store]
backend = "redis"
url = "{redis_url}"

[channels.telegram]
token_env = "TG_TOKEN"
secret_token_env = "TG_SECRET"
api_base = "{telegram.url}"

[web]
secure_cookies = false
"""
    )
    first = Serve(config, tmp_path / "first.log")
    second = Serve(config, tmp_path / "second.log")
    try:
        await asyncio.gather(first.ready(), second.ready())
        yield first, second
    finally:
        first.stop()
        second.stop()


async def test_a_message_through_one_process_appears_live_on_the_other(
    two_processes: tuple[Serve, Serve], telegram: FakeTelegram, browser: Browser
) -> None:
    first, second = two_processes
    page = await browser.new_page(locale="en-US")
    await sign_in(page, f"{first.url}/console", "ana")
    await live(page)
    async with ClientSession() as client:
        for n, text in enumerate(["meu pedido não chegou", "quero falar com um atendente"]):
            async with client.post(
                f"{second.url}/telegram/webhook",
                json={"update_id": 9000 + n, "message": message(4242, "pt-br", text=text)},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as response:
                assert response.status == 200
    row = page.locator("tr[data-ticket]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Rita")
    await expect(row).to_contain_text("telegram")
    await row.get_by_role("link").click()
    await page.wait_for_url(re.compile(r"/tickets/\d+$"))
    await page.locator("#claim-button").click()
    await expect(page.locator("#ticket-assignee")).to_have_text("Ana")
    await page.locator("#reply-text").fill("Olá Rita, já estou verificando.")
    await page.locator("#reply-button").click()
    await expect(page.locator("#flash")).to_have_text("Reply sent to the customer.")
    await until(lambda: any("já estou verificando" in t for t in telegram.texts(4242)))
    reply = next(t for t in telegram.texts(4242) if "já estou verificando" in t)
    assert "Ana" in reply
    # The customer answers through the second process again: live on the first.
    await live(page)
    async with (
        ClientSession() as client,
        client.post(
            f"{second.url}/telegram/webhook",
            json={"update_id": 9100, "message": message(4242, "pt-br", text="obrigada!")},
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as response,
    ):
        assert response.status == 200
    await expect(page.locator("#transcript li.inbound").last).to_contain_text("obrigada!")
    # The session lives in Redis: the other process knows this browser too.
    await page.goto(f"{second.url}/console/inbox")
    await expect(page.locator("h1")).to_have_text("Inbox")
