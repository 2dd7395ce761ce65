"""Issue 18: the end-to-end benchmark's rows and report on a few messages -- the fair
ceiling, the old ceiling and ``escala serve --workers 2`` on Redis -- with every
column filled. Nothing here is compared with a speed (a shared CI machine); the Redis
counts of the fair ceiling are exact, since it makes one script call per message."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bench.e2e import (
    COLUMNS,
    compare,
    decision_cost,
    markdown,
    rounds_markdown,
    rounds_summary,
    run_rows,
    trips_cell,
)
from bench.progress import Progress
from tests.bench.test_e2e_smoke import _children, _has_redis_server
from tests.waits import PATIENCE

ROWS = ("fair-ceiling", "old-ceiling", "escala-redis-2workers")
NUMBER = r"\d+(\.\d+)?"


@pytest.mark.skipif(not _has_redis_server(), reason="redis-server is not installed")
async def test_quick_rows_report_every_column() -> None:
    before = _children()
    result = await run_rows(
        True, Progress(quiet=True), rows=ROWS, webchat=False, reply_timeout=PATIENCE
    )
    assert _children() == before  # servers, workers and redis-servers all stopped

    scenarios = result["scenarios"]
    assert list(scenarios) == list(ROWS)
    for name, row in scenarios.items():
        closed = row["closed_loop"]
        assert closed["answered"] == closed["sent"] > 0 and closed["lost"] == 0, name
        assert closed["messages_per_second"] > 0, name
        assert 0 < closed["p50_ms"] <= closed["p99_ms"], name
        opened = row["open_loop"]
        assert opened["answered"] == opened["sent"] > 0 and opened["lost"] == 0, name
        assert 0 < opened["p50_ms"] <= opened["p99_ms"], name
        assert row["open_loop"]["fraction_of_max"] == pytest.approx(0.8, abs=0.01), name
        cost = row["closed_loop_cost_per_message"]
        assert cost["server_cpu_ms"] is not None and cost["server_cpu_ms"] >= 0, name

    fair = scenarios["fair-ceiling"]
    assert fair["replies_per_message"] == 2 and scenarios["old-ceiling"]["replies_per_message"] == 1
    fair_cost = fair["closed_loop_cost_per_message"]
    # One EVALSHA per message, running SET, RPUSH and LTRIM: commands are exact. Round
    # trips are the server's read events: one per request, plus a few a run of a few
    # dozen messages cannot dilute (a new connection's greeting, a connection closing, a
    # request split across two reads on a loaded machine: 1.2 seen in CI-like runs).
    # So: one round trip per message, never two.
    assert 1.0 <= fair_cost["redis_round_trips_per_message"] < 2.0
    assert fair_cost["redis_commands_per_message"] == 4.0
    assert fair_cost["redis_cpu_ms"] is not None and fair_cost["redis_cpu_ms"] >= 0
    assert (
        "redis_round_trips_per_message"
        not in scenarios["old-ceiling"]["closed_loop_cost_per_message"]
    )

    workers = scenarios["escala-redis-2workers"]
    assert workers["workers"] == 2 and workers["replies_per_message"] == 2
    cost = workers["closed_loop_cost_per_message"]
    assert cost["server_processes"] == 3  # the supervisor and its two workers
    # A lone message makes 3 (lock-and-read, commit, the outbox's acknowledgement:
    # tests/redis/test_round_trips.py); group commit shares the steps of messages that
    # arrive together, so under load fewer than one per message is normal (0.76-0.80 in
    # the full runs). A few more read events come from connections opening.
    assert 0 < cost["redis_round_trips_per_message"] < 4
    assert cost["redis_commands_per_message"] >= cost["redis_round_trips_per_message"]
    # The server's own periodic round trips, watched idle, come off in the net figure.
    assert cost["redis_background_round_trips_per_second"] >= 0
    assert 0 < cost["redis_round_trips_per_message_net"] <= cost["redis_round_trips_per_message"]
    assert workers["ratio_to_fair_ceiling"] > 0

    table = markdown(result)
    assert "| " + " | ".join(COLUMNS) + " |" in table
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    for name in ROWS:
        cells = [c.strip() for c in lines[name].strip("|").split("|")]
        assert len(cells) == len(COLUMNS), (name, cells)
    fair_cells = [c.strip() for c in lines["fair-ceiling"].strip("|").split("|")]
    assert fair_cells[6:8] == [trips_cell(fair_cost), "4.0"]
    old_cells = [c.strip() for c in lines["old-ceiling"].strip("|").split("|")]
    assert old_cells[5:8] == ["–", "–", "–"]  # no Redis
    two = [c.strip() for c in lines["escala-redis-2workers"].strip("|").split("|")]
    assert re.fullmatch(r"\d+%", two[3]) and all(re.match(NUMBER, c) for c in two[4:8])
    # What the machine gave each part: server (all 3 processes), Redis, the generator.
    assert re.fullmatch(rf"{NUMBER} \+ {NUMBER} \+ {NUMBER}", two[-1]), two[-1]
    assert re.fullmatch(rf"{NUMBER} \+ – \+ {NUMBER}", old_cells[-1]), old_cells[-1]
    assert "Load average at the start" in table


def _round(ceiling: tuple[float, float], **rows: tuple[float, float]) -> dict[str, Any]:
    """A run's result as run_rows gives it: (msg/s, server CPU ms per message) per row."""
    scenarios = {
        name: {
            "closed_loop": {"messages_per_second": rate},
            "closed_loop_cost_per_message": {"server_cpu_ms": cpu},
        }
        for name, (rate, cpu) in {"fair-ceiling": ceiling, **rows}.items()
    }
    return {"scenarios": scenarios}


def test_rounds_compare_each_row_with_the_ceiling_of_its_own_round() -> None:
    results = [
        _round((1000.0, 0.5), **{"escala-redis": (250.0, 2.0)}),  # 25% / 25%
        _round((500.0, 1.0), **{"escala-redis": (250.0, 2.5)}),  # a slow round: 50% / 40%
        _round((800.0, 0.6), **{"escala-redis": (320.0, 2.0)}),  # 40% / 30%
    ]
    summary = rounds_summary(results)
    redis = summary["escala-redis"]
    assert redis["msg_s"] == {"rounds": [250.0, 250.0, 320.0], "median": 250.0}
    assert redis["server_cpu_ms"]["median"] == 2.0
    assert redis["share_by_msg_s"] == {"rounds": [0.25, 0.5, 0.4], "median": 0.4}
    assert redis["share_by_cpu"] == {"rounds": [0.25, 0.4, 0.3], "median": 0.3}
    assert summary["fair-ceiling"]["share_by_cpu"]["median"] is None
    table = rounds_markdown(summary)
    assert "| escala-redis | 250, 250, 320 (**250**) | 2, 2.5, 2 (**2**) |" in table
    assert "25%, 50%, 40% (**40%**) | 25%, 40%, 30% (**30%**) |" in table


def test_the_decision_is_the_plain_row_minus_the_decided_one() -> None:
    scenarios = compare(
        _round(
            (1000.0, 0.6),
            **{
                "escala-memory": (400.0, 1.5),
                "escala-memory-decided": (650.0, 0.9),
                "escala-redis": (300.0, 1.8),
            },
        )["scenarios"]
    )
    cost = decision_cost(scenarios)
    # Redis has no decided row: nothing said of it.
    assert cost == {"memory": {"decision_cpu_ms": 0.6, "decided_ratio_to_fair_ceiling": 0.65}}
    result = {
        "machine": {"cpu": "a CPU", "cores": 2, "python": "3.11"},
        "load_average": None,
        "quick": True,
        "limits": {"max_seconds": 1, "max_requests": 1},
        "question": "?",
        "scenarios": {},
        "targets": {"skipped": "no Redis run"},
        "metrics_overhead": {"skipped": "no Redis runs"},
        "decision_cost": cost,
    }
    assert (
        "The decision (issue 18, the -decided rows): memory: 0.6 ms of server CPU per "
        "message; with decisions remembered, 65% of the fair ceiling."
    ) in markdown(result)
