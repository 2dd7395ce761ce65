"""``escala serve``'s admission (``bot.server.InFlight``): at most ``limit`` requests at
once, the others wait in arrival order, and a wait that runs out is a 503."""

from __future__ import annotations

import asyncio

from bot.server import InFlight
from tests.waits import PATIENCE, eventually


async def test_a_freed_place_goes_to_the_longest_waiting_not_to_a_newcomer() -> None:
    gate = InFlight(1, wait_seconds=PATIENCE)
    assert await gate.enter()
    order: list[str] = []

    async def request(name: str) -> None:
        assert await gate.enter()
        order.append(name)

    first = asyncio.create_task(request("first"))
    await eventually(lambda: len(gate._waiting) == 1, "first waiting")
    second = asyncio.create_task(request("second"))
    await eventually(lambda: len(gate._waiting) == 2, "second waiting")
    await gate.leave()  # the place frees: "first" gets it ...
    newcomer = asyncio.create_task(request("newcomer"))  # ... not this one, just in
    await asyncio.wait_for(first, PATIENCE)
    assert order == ["first"] and gate.current == 1
    await gate.leave()
    await asyncio.wait_for(second, PATIENCE)
    await gate.leave()
    await asyncio.wait_for(newcomer, PATIENCE)
    assert order == ["first", "second", "newcomer"]
    await gate.leave()
    assert gate.current == 0 and not gate._waiting and gate.refused == 0


async def test_a_wait_that_runs_out_is_refused_and_holds_no_place() -> None:
    gate = InFlight(1, wait_seconds=0.01)
    assert await gate.enter()
    assert not await gate.enter()
    assert gate.refused == 1 and gate.current == 1 and not gate._waiting
    await gate.leave()
    assert gate.current == 0
    assert await gate.enter(), "free again: in at once"


async def test_a_waiter_that_goes_away_after_being_handed_a_place_passes_it_on() -> None:
    gate = InFlight(1, wait_seconds=PATIENCE)
    assert await gate.enter()
    gone = asyncio.create_task(gate.enter())
    await eventually(lambda: len(gate._waiting) == 1, "waiting")
    after = asyncio.create_task(gate.enter())
    await eventually(lambda: len(gate._waiting) == 2, "both waiting")
    await gate.leave()  # handed to ``gone`` ...
    gone.cancel()  # ... which goes away before it runs
    assert await asyncio.wait_for(after, PATIENCE), "the place went on to the next"
    assert gate.current == 1
    await gate.leave()
    assert gate.current == 0 and not gate._waiting


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    gate = InFlight(1, wait_seconds=PATIENCE)
    assert await gate.enter()
    waiting = asyncio.create_task(gate.enter())
    await eventually(lambda: len(gate._waiting) == 1, "waiting")
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not gate._waiting
    await gate.leave()
    assert gate.current == 0
