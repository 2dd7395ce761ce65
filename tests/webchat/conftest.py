"""Fixtures for the web chat: an in-process ``escala serve`` app with the web chat, a
"company site" on another origin that embeds the widget, and Debian's headless
Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from bot.app import Escala, build
from bot.server import build_plugins, create_app
from bot.settings import default_settings
from bot.store import MemoryStore, Store
from channels.webchat.channel import WebChat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SECRET_ENV = "ESCALA_TEST_WEBCHAT_SECRET"
IDENTITY_ENV = "ESCALA_TEST_WEBCHAT_IDENTITY"
SECRET = "test-secret-0123456789abcdef"
IDENTITY_SECRET = "site-identity-secret-0123456789"
#: A limit for conditions a browser waits on, on a loaded 2-core machine (ms).
WAIT_MS = 120_000


def webchat_table(**options: Any) -> dict[str, Any]:
    return {"secret_env": SECRET_ENV, "identity_secret_env": IDENTITY_ENV, **options}


class ChatServer:
    """``escala serve``'s app with the web chat, on a free loopback port."""

    def __init__(self, store: Store, **options: Any) -> None:
        os.environ.setdefault(SECRET_ENV, SECRET)
        os.environ.setdefault(IDENTITY_ENV, IDENTITY_SECRET)
        self.settings = replace(default_settings(), channels={"webchat": webchat_table(**options)})
        self.store = store
        self.escala: Escala
        self.chat: WebChat
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> ChatServer:
        self.escala = build(self.settings, store=self.store)
        plugins = build_plugins(self.settings, self.escala)
        chat = plugins[0]
        assert isinstance(chat, WebChat)
        self.chat = chat
        self._runner = web.AppRunner(create_app(self.escala, plugins), shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Site:
    """The company's site: pages that embed the widget with a script tag."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    def page(self, name: str, chat_url: str, attributes: Mapping[str, str] = {}) -> str:
        extra = "".join(f' data-{key}="{value}"' for key, value in attributes.items())
        self.pages[name] = (
            '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8"><title>Loja</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body><h1>Loja Exemplo</h1><script src="{chat_url}/webchat/webchat.js"{extra}>'
            "</script></body></html>"
        )
        return f"{self.url}/{name}"

    async def _serve(self, request: web.Request) -> web.Response:
        body = self.pages.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(text=body, content_type="text/html")

    async def start(self) -> Site:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = await Site().start()
    yield s
    await s.close()


@pytest.fixture
async def server(site: Site, request: pytest.FixtureRequest) -> AsyncIterator[ChatServer]:
    """A chat server that lets ``site`` embed it; options from ``@pytest.mark.webchat``."""
    marker = request.node.get_closest_marker("webchat")
    options: dict[str, Any] = {"allowed_origins": [site.url], "demo_page": True}
    if marker is not None:
        options.update(marker.kwargs)
    s = await ChatServer(MemoryStore(), **options).start()
    yield s
    await s.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; browser tests may not be skipped in CI", pytrace=False)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
