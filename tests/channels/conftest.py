from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.channels.harness import Harness

HERE = Path(__file__).parent

#: twilio-python's AsyncTwilioHttpClient still passes ``auth=aiohttp.BasicAuth(...)``,
#: deprecated since aiohttp 3.14. Upstream's to fix; everything else stays an error.
TWILIO_BASIC_AUTH = (
    "ignore:BasicAuth is deprecated:DeprecationWarning",
    "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            for ignored in TWILIO_BASIC_AUTH:
                item.add_marker(pytest.mark.filterwarnings(ignored))


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.start()
    yield h
    await h.close()
