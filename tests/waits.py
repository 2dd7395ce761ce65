"""Waiting on conditions, never on the clock.

A test that waits for something (a subprocess coming up, a reply reaching a fake
provider, a background task firing) polls the condition quickly and gives up only after
``PATIENCE``: minutes, because a CI machine loaded by other work can be very slow, and a
test must fail only when the thing never happens, not because the machine was busy.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

from bench.processes import START_SECONDS

#: The limit of every wait in the suite (a hang guard, not an expectation).
PATIENCE = START_SECONDS
#: How often a condition is polled.
POLL_SECONDS = 0.005


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, poll: float = POLL_SECONDS
) -> None:
    """Return as soon as ``condition()`` holds; fail naming ``what`` after ``PATIENCE``."""
    try:
        async with asyncio.timeout(PATIENCE):
            while True:
                held = condition()
                if inspect.isawaitable(held):
                    held = await held
                if held:
                    return
                await asyncio.sleep(poll)  # let the awaited work run; bounded by PATIENCE
    except TimeoutError:
        raise AssertionError(f"{what}: still not true after {PATIENCE:.0f}s") from None
