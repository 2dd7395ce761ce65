"""Issue 18's two small benchmarks run end to end on tiny inputs; their numbers are not
judged (a shared machine): Telegram CPU per send (stock, held, lean) and the KB index
build's time, peak RSS and live size."""

from __future__ import annotations

from pathlib import Path

from bench import kb_build, telegram_sends
from tests.bench.test_bench_smoke import write_datasets
from tests.bench.test_e2e_smoke import _children


def test_telegram_sends_benchmark_measures_every_variant() -> None:
    before = _children()
    result = telegram_sends.run(sends=20, rounds=1)
    assert _children() == before  # the fake Bot API process has stopped
    for variant in telegram_sends.VARIANTS:
        row = result[variant]
        assert row["cpu_us_per_send"] > 0 and row["wall_us_per_send"] > 0
        assert row["slowest_ms"] > 0
    assert "| lean |" in telegram_sends.markdown(result)


def test_kb_build_benchmark_reports_time_peak_and_live(tmp_path: Path) -> None:
    write_datasets(tmp_path)
    result = kb_build.run(sizes=(30,), datasets=tmp_path)
    row = result["30"]
    assert row["phrasings"] == 30 and row["entries"] == 6  # 3 intents in each data set
    assert row["build_seconds"] > 0 and row["live_mb"] > 0 and row["before_mb"] > 0
    assert row["process_peak_mb"] >= row["before_mb"]
    assert "| 30 |" in kb_build.markdown(result)
