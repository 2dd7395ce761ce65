"""``escala report`` and ``escala events export`` over a real Redis (issue 14): exact
figures of a fake-clock journey, and an export past the stream's cap."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import event_stream
from bot.cli import main
from bot.models import Event, EventKind
from bot.settings import default_settings
from bot.store import MemoryStore
from bot.store.redis import RedisStore
from tests.journeys.harness import JOURNEY_KB, Journey
from tests.journeys.test_kpis import days_work

CAP = 1000


def write_config(tmp_path: Path, redis_url: str) -> Path:
    config = tmp_path / "escala.toml"
    config.write_text(
        f'[kb]\npaths = ["{JOURNEY_KB}"]\n'
        f'[store]\nbackend = "redis"\nurl = "{redis_url}"\nevents_stream_cap = {CAP}\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture
def journey_config(redis_url: str, tmp_path: Path) -> Path:
    """The day's work of tests/journeys/test_kpis.py, on Redis, on 2026-11-23 (BRT)."""

    async def run() -> None:
        store = RedisStore.from_url(redis_url, events_cap=CAP)
        try:
            await store.redis.flushdb()
            settings = default_settings()
            journey = Journey(
                replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,))), store
            )
            await days_work(journey)
        finally:
            await store.close()

    asyncio.run(run())
    return write_config(tmp_path, redis_url)


def report(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", "--config", str(config), *args]) == 0
    return capsys.readouterr().out


DAY = ("--from", "2026-11-23", "--to", "2026-11-24")


def test_report_table(journey_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = report(journey_config, capsys, *DAY)
    assert out == (
        "Escala report: 2026-11-23T00:00-03:00 to 2026-11-24T00:00-03:00\n"
        "conversations 4, solved by the bot 1/4 (25%), tickets 3, escalated 1/3 (33%)\n"
        "busiest hours: 11h (4 messages), 10h (3 messages)\n"
        "\n"
        "tier  opened  escalated in  resolved  first contact  first response p50  p90       "
        "resolution p50  p90       SLA breached  escalated  to    CSAT     1/2/3/4/5\n"
        "N1    3       0             1         1/1 (100%)     5.0 min             5.0 min   "
        "30.0 min        30.0 min  1/3 (33%)     1/3 (33%)  N2 1  3.0 (1)  0/0/1/0/0\n"
        "N2    0       1             1         0/1 (0%)       40.0 min            40.0 min  "
        "60.0 min        60.0 min  0/1 (0%)      0/1 (0%)   -     5.0 (1)  0/0/0/0/1\n"
        "N3    0       0             0         -              -                   -         "
        "-               -         -             -          -     -        0/0/0/0/0\n"
        "all   3       1             2         1/2 (50%)      22.5 min            40.0 min  "
        "45.0 min        60.0 min  1/4 (25%)     1/4 (25%)  N2 1  4.0 (2)  0/0/1/0/1\n"
    )


def test_report_csv_for_one_tier(journey_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(
        csv.DictReader(
            io.StringIO(report(journey_config, capsys, *DAY, "--tier", "N2", "--format", "csv"))
        )
    )
    assert [r["tier"] for r in rows] == ["N2", "all"]
    n2, overall = rows
    assert n2 == {
        "tier": "N2",
        "opened": "0",
        "escalated_in": "1",
        "stays": "1",
        "resolved": "1",
        "first_contact_resolved": "0",
        "first_contact_rate": "0.0",
        "first_response_median_seconds": "2400.0",
        "first_response_p90_seconds": "2400.0",
        "resolution_median_seconds": "3600.0",
        "resolution_p90_seconds": "3600.0",
        "sla_breaches": "0",
        "sla_breach_rate": "0.0",
        "resolution_breaches": "0",
        "escalations": "0",
        "escalation_rate": "0.0",
        "escalated_to": "",
        "csat_mean": "5.0",
        "csat_count": "1",
        "csat_1": "0",
        "csat_2": "0",
        "csat_3": "0",
        "csat_4": "0",
        "csat_5": "1",
    }
    assert (overall["first_response_median_seconds"], overall["escalated_to"]) == ("1350.0", "N2:1")
    assert (overall["sla_breaches"], overall["stays"], overall["sla_breach_rate"]) == (
        "1",
        "4",
        "0.25",
    )


def test_report_json(journey_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(report(journey_config, capsys, *DAY, "--format", "json"))
    assert data["period"] == {
        "from": "2026-11-23T00:00:00-03:00",
        "to": "2026-11-24T00:00:00-03:00",
    }
    assert data["coverage"] is None
    assert (data["conversations"], data["deflected"], data["deflection_rate"]) == (4, 1, 0.25)
    assert (data["tickets"], data["escalated_tickets"], data["escalation_rate"]) == (3, 1, 0.3333)
    assert data["busiest_hours"] == [{"hour": 11, "messages": 4}, {"hour": 10, "messages": 3}]
    n1, n2, n3 = data["tiers"]
    assert n1["escalated_to"] == {"N2": 1} and n1["first_responses"] == 1
    assert (n1["first_response_median_seconds"], n1["sla_breaches"], n1["stays"]) == (300.0, 1, 3)
    assert (n2["escalated_in"], n2["first_response_median_seconds"]) == (1, 2400.0)
    assert (n2["resolution_median_seconds"], n2["csat_distribution"]["5"]) == (3600.0, 1)
    assert n3["stays"] == 0 and n3["sla_breach_rate"] is None
    assert data["overall"]["csat_mean"] == 4.0


def test_a_period_before_the_journey_is_empty(
    journey_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(report(journey_config, capsys, "--to", "2026-11-22", "--format", "json"))
    assert (data["tickets"], data["conversations"], data["coverage"]) == (0, 0, None)


def test_report_refuses_a_bad_period_or_tier(
    journey_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--config", str(journey_config), "--tier", "N9"]) == 2
    assert "--tier: N9: no such tier (tiers: N1, N2, N3)" in capsys.readouterr().err
    assert main(["report", "--config", str(journey_config), "--from", "yesterday"]) == 2
    assert "--from: yesterday: expected a date" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                "--config",
                str(journey_config),
                "--from",
                "2026-11-24",
                "--to",
                "2026-11-23",
            ]
        )
        == 2
    )
    assert "must be before --to" in capsys.readouterr().err


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def numbered(n: int) -> Event:
    return Event(f"evt_{n}", EventKind.MESSAGE_IN, T0 + timedelta(seconds=n), f"cnv_{n}")


def test_export_after_the_cap_loses_nothing_kept_and_says_what_is_gone(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = 3 * CAP

    async def fill() -> int:
        store = RedisStore.from_url(redis_url, events_cap=CAP)
        try:
            await store.redis.flushdb()
            for n in range(1, total + 1):
                await store.append_event(numbered(n))
            return (await store.stream_info()).length
        finally:
            await store.close()

    kept = asyncio.run(fill())
    assert CAP <= kept < total
    config = write_config(tmp_path, redis_url)
    assert main(["events", "export", "--config", str(config), "--since", "2026-03-02"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    # Everything the stream keeps, in order, up to the last event: nothing lost after the cut.
    assert [r["id"] for r in rows] == [f"evt_{n}" for n in range(total - kept + 1, total + 1)]
    assert event_stream.event_of(rows[-1]) == numbered(total)
    oldest = numbered(total - kept + 1).at.isoformat(timespec="seconds")
    assert (
        f"escala: the event stream keeps events since {oldest} only: {total - kept} older events "
        f"were dropped by its cap ([store] events_stream_cap = {CAP}), so figures before then "
        "are missing\n"
    ) in err
    assert f"escala: {kept} events exported" in err

    # A window inside what is kept: complete, and nothing to warn about.
    since = numbered(total - 10).at.isoformat()
    assert (
        main(["events", "export", "--config", str(config), "--since", since, "--format", "csv"])
        == 0
    )
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == [f"evt_{n}" for n in range(total - 10, total + 1)]
    assert json.loads(rows[0]["data"]) == {} and rows[0]["kind"] == "message.in"
    assert "dropped" not in err and "11 events exported" in err

    # The report over the lost period says so too.
    data = json.loads(
        report(config, capsys, "--from", "2026-03-01", "--to", "2026-03-03", "--format", "json")
    )
    assert data["coverage"] is not None and f"{total - kept} older events" in data["coverage"]


async def test_a_follower_exports_each_event_once_and_resumes_after_a_restart() -> None:
    store = MemoryStore(events_stream_cap=CAP)
    for n in range(1, 6):
        await store.append_event(numbered(n))
    warnings: list[str] = []

    class Output(io.StringIO):
        """Stops the follower once it has written five lines."""

        def __init__(self) -> None:
            super().__init__()
            self.stop = asyncio.Event()

        def write(self, text: str) -> int:
            written = super().write(text)
            if self.getvalue().count("\n") >= 5:
                self.stop.set()
            return written

    async def run_once(out: Output) -> int:
        return await event_stream.follow(
            store, out, "jsonl", group="wh", consumer="c1", stop=out.stop, warn=warnings.append,
            block_seconds=0.01,
        )  # fmt: skip

    first = Output()
    assert await run_once(first) == 5
    assert [json.loads(line)["id"] for line in first.getvalue().splitlines()] == [
        f"evt_{n}" for n in range(1, 6)
    ]
    for n in range(6, 11):
        await store.append_event(numbered(n))
    second = Output()
    assert await run_once(second) == 5  # only the new ones: the first five were acknowledged
    assert [json.loads(line)["id"] for line in second.getvalue().splitlines()] == [
        f"evt_{n}" for n in range(6, 11)
    ]
    assert warnings == []
