"""Issue 6 part 3 on a tiny load: the end-to-end benchmark runs, loses nothing and
leaves no process behind. No assertion on speed (a shared CI machine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench.e2e import StoreName, _server_command, markdown, run_scenario
from bench.processes import START_SECONDS, RedisUnavailable, redis_server_binary
from bench.progress import Progress

CUSTOMERS = 3
MESSAGES = 3
OPEN_RATE = 20.0
OPEN_SECONDS = 0.5
#: Bounds, not expectations: a loaded machine is slow, and these runs must still finish
#: every message (no figure here is compared with a threshold).
PATIENCE = START_SECONDS


def _children() -> set[int]:
    """Live child processes of this one (Linux ``/proc``)."""
    me = str(os.getpid())
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


def _has_redis_server() -> bool:
    try:
        redis_server_binary()
    except RedisUnavailable:
        return False
    return True


def _stores() -> list[Any]:
    """Redis too when ``redis-server`` is there; in CI it must be (never skipped)."""
    missing = not _has_redis_server() and os.environ.get("CI") != "true"
    skip = pytest.mark.skipif(missing, reason="redis-server is not installed")
    return ["memory", pytest.param("redis", marks=skip)]


@pytest.mark.parametrize("store", _stores())
async def test_e2e_tiny_load_every_message_is_answered(store: StoreName) -> None:
    before = _children()
    result = await run_scenario(
        "escala",
        store=store,
        customers=CUSTOMERS,
        messages_per_customer=MESSAGES,
        rate=OPEN_RATE,
        closed_seconds=PATIENCE,
        open_seconds=OPEN_SECONDS,
        max_seconds=PATIENCE,
        reply_timeout=PATIENCE,
        progress=Progress(quiet=True),
    )
    assert _children() == before  # the server (and redis-server) stopped

    assert result["replies_per_message"] == 2  # the KB answer, then "did this help?"
    closed = result["closed_loop"]
    assert closed["sent"] == closed["answered"] == CUSTOMERS * MESSAGES
    assert closed["lost"] == 0 and closed["errors"] == {}
    assert closed["messages_per_second"] > 0
    assert 0 < closed["p50_ms"] <= closed["p99_ms"] <= closed["max_ms"]
    opened = result["open_loop"]
    assert opened["sent"] == opened["answered"] == round(OPEN_RATE * OPEN_SECONDS)
    assert opened["lost"] == 0 and opened["not_sent_overload"] == 0
    assert 0 < opened["p50_ms"] <= opened["p99_ms"]
    # No reply lost or duplicated: calibration + warm-up + both phases, two replies each.
    messages = 1 + CUSTOMERS + closed["sent"] + opened["sent"]
    assert result["fake_api_calls"] == {"sendMessage": 2 * messages, "other": 0}
    cost = result["closed_loop_cost_per_message"]
    assert cost["server_cpu_ms"] is None or cost["server_cpu_ms"] > 0
    if store == "redis":
        assert cost["redis_commands_per_message"] > 0

    table = markdown(
        {
            "machine": {"cpu": "cpu", "cores": 2, "python": "3.11"},
            "quick": True,
            "scenarios": {f"escala-{store}": {**result, "ratio_to_fair_ceiling": 0.5}},
            "targets": {"skipped": "no ceiling in this test"},
        }
    )
    assert f"| escala-{store} | 2 | {closed['messages_per_second']} | 50% |" in table


async def test_old_ceiling_app_answers_each_webhook_with_one_send() -> None:
    before = _children()
    result = await run_scenario(
        "old-ceiling",
        customers=CUSTOMERS,
        messages_per_customer=MESSAGES,
        rate=0,  # no open loop
        closed_seconds=PATIENCE,
        max_seconds=PATIENCE,
        reply_timeout=PATIENCE,
        progress=Progress(quiet=True),
    )
    assert _children() == before
    assert result["replies_per_message"] == 1 and "open_loop" not in result
    closed = result["closed_loop"]
    assert closed["sent"] == closed["answered"] == CUSTOMERS * MESSAGES
    assert closed["lost"] == 0 and closed["messages_per_second"] > 0
    assert result["fake_api_calls"]["sendMessage"] == 1 + CUSTOMERS + closed["sent"]


async def test_the_decided_row_serves_every_message_with_decisions_remembered(
    tmp_path: Path,
) -> None:
    """Issue 18's diagnostic row: ``bench.decided`` is a whole ``escala serve``."""
    command = _server_command("escala", "x", tmp_path, 1, "http://127.0.0.1:1", None, decided=True)
    assert command[1:4] == ["-m", "bench.decided", "serve"]
    before = _children()
    result = await run_scenario(
        "escala",
        store="memory",
        decided=True,
        customers=CUSTOMERS,
        messages_per_customer=MESSAGES,
        rate=0,
        closed_seconds=PATIENCE,
        max_seconds=PATIENCE,
        reply_timeout=PATIENCE,
        progress=Progress(quiet=True),
    )
    assert _children() == before
    assert result["decided"] is True
    assert result["replies_per_message"] == 2  # the same answer and "did this help?"
    closed = result["closed_loop"]
    assert closed["sent"] == closed["answered"] == CUSTOMERS * MESSAGES
    assert closed["lost"] == 0 and closed["errors"] == {}


async def test_the_web_chat_row_answers_every_message_over_websocket() -> None:
    from bench.webchat import markdown as webchat_markdown
    from bench.webchat import run_webchat

    before = _children()
    result = await run_webchat(
        customers=CUSTOMERS, messages_per_customer=MESSAGES, seconds=60.0,
        progress=Progress(quiet=True),
    )  # fmt: skip
    assert _children() == before
    assert result["answered"] == CUSTOMERS * MESSAGES and result["lost"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert "| 3 |" in webchat_markdown(result)
