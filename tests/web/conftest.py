"""Fixtures for the web console: a served desk and a real headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.web.harness import CHROMIUM_ARGS, WebDesk, chromium


@pytest.fixture
async def desk() -> AsyncIterator[WebDesk]:
    served = WebDesk()
    await served.start()
    yield served
    await served.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
