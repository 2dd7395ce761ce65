"""Issue 10: the start-up benchmark runs both configurations through ``python -m bench``
and reports sane figures. No assertion on speed (a shared CI machine)."""

from __future__ import annotations

from pathlib import Path

from bench import startup
from tests.bench.test_bench_smoke import run
from tests.bench.test_e2e_smoke import _children


def test_startup_benchmark_measures_both_configurations(tmp_path: Path) -> None:
    before = _children()
    result = run(tmp_path, "startup", "--quick")["startup"]
    assert _children() == before  # every server it started has stopped

    assert result["repetitions"] == startup.QUICK_REPETITIONS
    for name in startup.CONFIGS:
        row = result[name]
        for figure in ("serve_time_to_healthy", "check"):
            summary = row[figure]
            assert summary["runs"] == startup.QUICK_REPETITIONS == len(summary["samples_s"])
            assert 0 < summary["median_s"] <= summary["max_s"]
        for verb in ("serve", "check"):
            assert set(row["imports"][verb]) == set(startup.HEAVY)
    # a server with Telegram and Slack configured imports both libraries
    for package in startup.HEAVY:
        seen = result["all-channels"]["imports"]["serve"][package]
        assert seen["imported"] and seen["cumulative_us"] > 0
    ask = result["kb_ask"]
    assert ask["runs"] == startup.QUICK_REPETITIONS and 0 < ask["median_s"] <= ask["max_s"]
    # start-up reached the fake providers, nothing else: setWebhook and auth.test, once
    # per all-channels server (timed runs plus the import probe)
    servers = startup.QUICK_REPETITIONS + 1
    assert result["fake_calls"] == {"telegram": servers, "slack": servers}


def test_imported_reads_python_importtime_reports() -> None:
    report = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       120 |        120 |     aiogram.utils",
            "import time:       300 |       9000 |   aiogram",
            "import time:        50 |         50 | slack_sdk",
        ]
    )
    assert startup.imported(report) == {
        "aiogram": {"imported": True, "cumulative_us": 9000},
        "slack_bolt": {"imported": False, "cumulative_us": None},
    }
