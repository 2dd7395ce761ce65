"""The web console served over real HTTP in the test's event loop, with a customer on a
test-only channel, and Debian's Chromium driven by Playwright.

The customer channel ``phone`` is a :class:`~bot.ports.ChannelSender` that keeps what
the customer would read; the customer writes through the same port every adapter
uses (:meth:`Edge.receive`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from bot.app import Escala, build
from bot.models import ConsoleRole, InboundMessage, OutboundMessage
from bot.server import create_app
from bot.settings import Settings, default_settings
from bot.store import MemoryStore, Store
from channels.web.config import load_web_config
from channels.web.plugin import WebPlugin
from tests.waits import PATIENCE

CHROMIUM = "/usr/bin/chromium"
#: The flags every browser here runs with (no sandbox: tests run as root in CI).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
#: Who logs in: login -> (role, agent id).
USERS: Mapping[str, tuple[ConsoleRole, str | None]] = {
    "ana": (ConsoleRole.AGENT, "ana"),
    "bruno": (ConsoleRole.AGENT, "bruno"),
    "sam": (ConsoleRole.SUPERVISOR, None),
    "root": (ConsoleRole.ADMIN, None),
}
#: Generous: a loaded 2-core machine runs a browser, a server and pytest at once.
WAIT_MS = int(PATIENCE * 1000)
expect.set_options(timeout=WAIT_MS)


def chromium() -> str:
    """Debian's chromium (``scripts/test`` installs it); never a downloaded build."""
    if shutil.which(CHROMIUM) is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; browser tests may not be skipped in CI", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


def web_settings(web: Mapping[str, Any] | None = None, base: Settings | None = None) -> Settings:
    table = {"secure_cookies": False, "login_attempts": 3, **(web or {})}
    return replace(base or default_settings(), web=MappingProxyType(table))


class Phone:
    """The customer's side of the test channel ``phone``."""

    CHANNEL = "phone"

    def __init__(self, escala: Escala) -> None:
        self.edge = escala.edge
        self.received: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        self.edge.register_sender(self.CHANNEL, self)

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        self.received.setdefault(address, []).append(message.text)

    async def write(self, address: str, text: str, name: str = "Rita") -> None:
        await self.edge.receive(
            InboundMessage(
                channel=self.CHANNEL,
                address=address,
                text=text,
                provider_message_id=f"phone-{next(self._ids)}",
                received_at=self.edge.now(),
                locale="pt-BR",
                name=name,
            )
        )

    async def open_ticket(self, address: str, text: str, name: str = "Rita") -> int:
        """The customer asks for a human; the ticket's number."""
        await self.write(address, text, name)
        await self.write(address, "quero falar com um atendente", name)
        ticket = await self.edge.current_ticket(self.CHANNEL, address)
        assert ticket is not None, self.received.get(address)
        return ticket.number

    def texts(self, address: str) -> list[str]:
        return self.received.get(address, [])


class WebDesk:
    """Escala with the web console on a real port."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None) -> None:
        self.settings = settings or web_settings()
        self.store = store or MemoryStore()
        self.escala = build(self.settings, store=self.store)
        self.phone = Phone(self.escala)
        config = load_web_config("test", self.settings.web, self.settings)
        self.plugin = WebPlugin(config, self.escala.edge)
        self.server = TestServer(create_app(self.escala, [self.plugin]), host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/console")).rstrip("/")

    async def start(self) -> None:
        for login, (role, agent) in USERS.items():
            await self.escala.edge.users.add(login, PASSWORD, role, agent_id=agent)
        await self.server.start_server()

    async def close(self) -> None:
        await self.server.close()


async def sign_in(page: Page, base: str, login: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label(re.compile("Login|Usuário")).fill(login)
    await page.get_by_label(re.compile("Password|Senha")).fill(password)
    await page.get_by_role("button", name=re.compile("Sign in|Entrar")).click()
    await page.wait_for_url(re.compile(r"/console/inbox$"))


async def live(page: Page) -> None:
    """Wait until the page's event stream is open (later events reach it)."""
    await expect(page.locator("#live-state")).to_have_text("live")


async def until(condition: Any, seconds: float = PATIENCE) -> None:
    """Poll ``condition()`` (sync or async) until true; fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {seconds}s")
        await asyncio.sleep(0.05)


async def http_session(base: str, login: str | None) -> tuple[ClientSession, str]:
    """A plain HTTP client (signed in as ``login``) and its CSRF token."""
    session = ClientSession(cookie_jar=CookieJar(unsafe=True))  # cookies of 127.0.0.1
    token = await csrf_of(session, f"{base}/login")
    if login is not None:
        async with session.post(
            f"{base}/login", data={"login": login, "password": PASSWORD, "csrf": token}
        ) as response:
            assert response.status == 200 and response.url.path.endswith("/inbox")
            token = _csrf(await response.text())
    return session, token


async def csrf_of(session: ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return _csrf(await response.text())


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def screenshot_dir(tmp_path: Path) -> Path:
    """``ESCALA_SCREENSHOTS=docs`` writes README's screenshots into ``docs/``."""
    if os.environ.get("ESCALA_SCREENSHOTS") == "docs":
        target = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path
