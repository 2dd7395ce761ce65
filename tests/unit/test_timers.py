"""The timer sweeper: dispatch by kind, nothing lost on a failure, and the background
task that ``escala serve`` starts and stops with the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.server import TIMER_GRACE_SECONDS
from bot.store import MemoryStore
from bot.timers import RETRY_LATER, Timers
from tests.channels.harness import Harness
from tests.waits import PATIENCE


async def test_due_timers_go_to_their_kind_handler_once() -> None:
    clock = FakeClock()
    timers = Timers(MemoryStore(), clock)
    seen: list[str] = []

    async def handler(key: str) -> None:
        seen.append(key)

    timers.on("probe", handler)
    await timers.schedule_in("probe", "a:1", timedelta(minutes=1))
    await timers.schedule_in("probe", "b", timedelta(minutes=2))
    await timers.schedule_in("probe", "a:1", timedelta(minutes=3))  # moved, not added
    clock.advance(minutes=2)
    assert await timers.sweep() == 1
    clock.advance(minutes=1)
    assert await timers.sweep() == 1
    assert await timers.sweep() == 0
    assert seen == ["b", "a:1"]


async def test_a_failing_handler_gets_its_timer_back_later() -> None:
    clock = FakeClock()
    timers = Timers(MemoryStore(), clock)
    calls: list[str] = []

    async def flaky(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise ConnectionError("Slack is down")

    timers.on("probe", flaky)
    await timers.schedule("probe", "x", clock.now())
    assert await timers.sweep() == 1
    assert await timers.sweep() == 0
    clock.advance(seconds=RETRY_LATER.total_seconds())
    assert await timers.sweep() == 1
    assert calls == ["x", "x"]


async def test_a_timer_this_process_cannot_handle_is_put_back() -> None:
    """A process without Slack (``escala chat`` on a shared Redis) must not eat the
    timers of the processes that have it."""
    clock = FakeClock()
    store = MemoryStore()
    await Timers(store, clock).schedule("slack-card", "tkt_1:N1:1", clock.now())
    assert await Timers(store, clock).sweep() == 1
    clock.advance(seconds=RETRY_LATER.total_seconds())
    assert await store.pop_due(clock.now()) == ["slack-card:tkt_1:N1:1"]


async def test_the_server_sweeps_in_the_background_and_stops_on_shutdown() -> None:
    h = Harness()
    fired = asyncio.Event()

    async def probe(key: str) -> None:
        fired.set()

    timers = h.escala.timers
    timers.on("probe", probe)
    await timers.schedule("probe", "now", h.clock.now())
    await h.start()
    try:
        assert _sweeper_tasks()
        await asyncio.wait_for(fired.wait(), timeout=PATIENCE)
    finally:
        await h.close()
    assert not _sweeper_tasks()


def _sweeper_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "escala-timers" and not t.done()]


async def test_a_sweep_killed_mid_handler_leaves_the_timer_to_fire_again() -> None:
    """The process dies (here: its task is cancelled) while handling a popped timer;
    another process's sweep fires it once the lease runs out."""
    clock = FakeClock()
    store = MemoryStore()
    started = asyncio.Event()

    async def hangs(key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    dying = Timers(store, clock)
    dying.on("probe", hangs)
    await dying.schedule("probe", "x", clock.now())
    sweep = asyncio.create_task(dying.sweep())
    await started.wait()
    sweep.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sweep

    seen: list[str] = []

    async def handler(key: str) -> None:
        seen.append(key)

    survivor = Timers(store, clock)
    survivor.on("probe", handler)
    assert await survivor.sweep() == 0  # still leased to the dead one
    clock.advance(seconds=RETRY_LATER.total_seconds())
    assert await survivor.sweep() == 1
    assert seen == ["x"]
    clock.advance(seconds=RETRY_LATER.total_seconds())
    assert await survivor.sweep() == 0  # handled: the lease was dropped


async def test_a_stopping_server_gives_a_hung_sweep_only_what_is_left_of_its_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The sweep's usual grace (10 s) would outlast a 1 s shutdown timeout; the server
    gives it what is left of the budget, and the timer keeps its lease (above)."""
    h = Harness(shutdown_timeout_seconds=1.0)
    started = asyncio.Event()

    async def hangs(key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    h.escala.timers.on("probe", hangs)
    await h.escala.timers.schedule("probe", "x", h.clock.now())
    await h.start()
    await asyncio.wait_for(started.wait(), timeout=PATIENCE)
    with caplog.at_level(logging.WARNING, logger="bot.timers"):
        await h.close()
    (said,) = [r.getMessage() for r in caplog.records if "timer sweep still busy" in r.getMessage()]
    grace = float(said.split("after ")[1].split("s;")[0])
    assert 0 <= grace <= 1.0 < TIMER_GRACE_SECONDS, said
    assert not _sweeper_tasks()
