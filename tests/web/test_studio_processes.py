"""Publishing reaches every ``escala serve`` process on one Redis (issue 16): the admin
publishes in the studio of one process, and a Telegram customer whose messages arrive
through the other gets the new answer, with no restart; a rollback restores the old
answer everywhere; SIGHUP publishes edited files for file-based deployments."""

from __future__ import annotations

import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from playwright.async_api import Browser, expect

from bot.models import ConsoleRole
from bot.settings import DEFAULT_AGENTS, default_settings
from bot.store.redis import RedisStore
from bot.users import Users
from tests.channels.fakes import FakeTelegram
from tests.channels.harness import message
from tests.web.harness import PASSWORD, sign_in, until
from tests.web.test_redis_processes import SECRET, Serve

QUESTION = "qual o horário de atendimento?"
NEW_ANSWER = "Agora atendemos todos os dias, das 7h às 22h."


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start_fake()
    yield fake
    await fake.close()


@pytest.fixture
async def two_processes(
    tmp_path: Path, redis_url: str, telegram: FakeTelegram
) -> AsyncIterator[tuple[Serve, Serve, Path]]:
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    await Users(store, DEFAULT_AGENTS).add("root", PASSWORD, ConsoleRole.ADMIN)
    await store.close()
    kb = tmp_path / "kb"  # the files of a file-based deployment (edited for SIGHUP)
    shutil.copytree(default_settings().kb.paths[0], kb)
    config = tmp_path / "escala.toml"
    config.write_text(
        f"""
[store]
backend = "redis"
url = "{redis_url}"

[kb]
paths = ["kb"]

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
        await first.ready()
        await second.ready()
        yield first, second, kb
    finally:
        first.stop()
        second.stop()


class Customer:
    """A Telegram customer writing through one process: a new chat per question."""

    def __init__(self, serve: Serve, telegram: FakeTelegram) -> None:
        self.serve = serve
        self.telegram = telegram
        self.update = 7000
        self.chat = 5000

    async def ask(self, text: str) -> str:
        self.update += 1
        self.chat += 1
        async with (
            ClientSession() as client,
            client.post(
                f"{self.serve.url}/telegram/webhook",
                json={"update_id": self.update, "message": message(self.chat, "pt-br", text=text)},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as response,
        ):
            assert response.status == 200
        chat = self.chat
        await until(lambda: bool(self.telegram.texts(chat)))
        return self.telegram.texts(chat)[0]

    async def answer_becomes(self, expected: str) -> None:
        """Ask until the answer is ``expected`` (each process polls the live version
        every second; the bound here is only for a loaded machine)."""
        answers: list[str] = []

        async def asked() -> bool:
            answers.append(await self.ask(QUESTION))
            return answers[-1].startswith(expected)

        await until(asked)


async def test_a_publish_and_a_rollback_reach_the_other_process(
    two_processes: tuple[Serve, Serve, Path], telegram: FakeTelegram, browser: Browser
) -> None:
    first, second, _ = two_processes
    customer = Customer(second, telegram)
    assert "segunda a sexta" in await customer.ask(QUESTION)
    page = await browser.new_page(locale="en-US")
    base = f"{first.url}/console"
    await sign_in(page, base, "root")
    await page.goto(f"{base}/studio/kb/entry/opening_hours")
    await page.locator("#answer-pt-BR").fill(NEW_ANSWER)
    await page.locator("#save-entry").click()
    await expect(page.locator("#flash")).to_have_text("Saved to your draft.")
    await page.goto(f"{base}/studio")
    await page.locator("#publish-message").fill("every day")
    await page.locator("#publish-button").click()
    await expect(page.locator("#flash")).to_have_text("Version 2 is live.")
    await customer.answer_becomes(NEW_ANSWER)

    await page.goto(f"{base}/studio/history")
    await page.locator("#versions tr[data-version='1'] button.rollback").click()
    await expect(page.locator("#flash")).to_have_text("Version 1 restored as version 3.")
    await customer.answer_becomes("Atendemos de segunda a sexta")
    # The other process's studio shows the same history (one store).
    await page.goto(f"{second.url}/console/studio/history")
    await expect(page.locator("#versions tr[data-version='3']")).to_contain_text("root")


async def test_sighup_publishes_edited_files_to_every_process(
    two_processes: tuple[Serve, Serve, Path], telegram: FakeTelegram
) -> None:
    first, second, kb = two_processes
    customer = Customer(second, telegram)
    assert "segunda a sexta" in await customer.ask(QUESTION)
    contact = kb / "contact.toml"
    text = contact.read_text()
    start = text.index("Atendemos de segunda a sexta")
    contact.write_text(text[:start] + NEW_ANSWER + text[text.index('"', start) :])
    first.process.send_signal(signal.SIGHUP)
    await customer.answer_becomes(NEW_ANSWER)
    assert first.process.poll() is None and second.process.poll() is None
