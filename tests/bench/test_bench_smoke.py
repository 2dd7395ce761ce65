"""The benchmark code runs on a tiny synthetic dataset (issue 6); its numbers are not judged."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import cli

INTENTS = {
    "card_arrival": ["where is my new card", "my card has not arrived yet", "card still not here"],
    "exchange_rate": ["what is the exchange rate", "how much is the euro rate", "rate for dollars"],
    "lost_card": ["i lost my card", "my card was stolen", "someone took my card"],
}
TESTS = [
    ("when will my card arrive", "card_arrival"),
    ("euro exchange rate today", "exchange_rate"),
]


def write_datasets(root: Path) -> None:
    banking = root / "banking77"
    banking.mkdir(parents=True)
    for name, rows in (
        ("train.csv", [(t, i) for i, texts in INTENTS.items() for t in texts]),
        ("test.csv", [*TESTS, ("somebody stole the card", "lost_card")]),
    ):
        with (banking / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(rows)
    (banking / "categories.json").write_text(json.dumps(list(INTENTS)))
    clinc = root / "clinc150"
    clinc.mkdir()
    train = [[t, i] for i, texts in INTENTS.items() for t in texts]
    oos = [["what is the weather in paris", "oos"], ["tell me a joke", "oos"]]
    data = {
        "train": train,
        "val": [list(t) for t in TESTS],
        "test": [list(t) for t in TESTS],
        "oos_train": oos,
        "oos_val": oos,
        "oos_test": oos,
    }
    (clinc / "data_full.json").write_text(json.dumps(data))


def run(tmp_path: Path, only: str, *extra: str) -> dict[str, Any]:
    output = tmp_path / "out" / "latest.json"
    code = cli.main(["--quiet", "--only", only, "--output", str(output), *extra])
    assert code == 0
    result: dict[str, Any] = json.loads(output.read_text())
    assert {"cpu", "cores", "python"} <= set(result["machine"])
    return result


def test_quality_reports_every_metric_in_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_datasets(tmp_path / "data")
    result = run(tmp_path, "kb-quality", "--datasets", str(tmp_path / "data"))
    assert set(result["kb-quality"]) == {"banking77", "clinc150"}
    for suite in result["kb-quality"].values():
        for method in ("matcher", "rapidfuzz_wratio", "difflib"):
            row = suite[method]
            for key in ("top1", "coverage", "precision"):
                assert 0.0 <= row[key] <= 1.0, (method, key)
            assert set(row["precision_at_coverage"]) == {"0.3", "0.5", "0.65", "0.8", "1"}
            assert all(0.0 <= v <= 1.0 for v in row["precision_at_coverage"].values())
        assert 0.0 <= suite["matcher"]["suggestion_hit_rate"] <= 1.0
    clinc = result["kb-quality"]["clinc150"]
    assert clinc["matcher"]["out_of_scope"] == 2
    assert 0.0 <= clinc["matcher"]["oos_not_answered"] <= 1.0
    assert result["kb-quality"]["banking77"]["matcher"]["top1"] > 0.0
    assert "| Escala matcher" in capsys.readouterr().out


def test_missing_datasets_are_skipped_with_a_message(tmp_path: Path) -> None:
    result = run(tmp_path, "kb-quality,kb-latency", "--datasets", str(tmp_path / "nowhere"))
    assert "not found" in result["kb-quality"]["datasets"]["skipped"]
    assert "not found" in result["kb-latency"]["skipped"]


def test_latency_reports_percentiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_datasets(tmp_path / "data")
    monkeypatch.setattr(cli, "QUICK_LATENCY_SIZES", (30, 60))
    monkeypatch.setattr(cli, "QUICK_LATENCY_QUERIES", 5)
    result = run(tmp_path, "kb-latency", "--quick", "--datasets", str(tmp_path / "data"))
    assert set(result["kb-latency"]) == {"30", "60"}
    for row in result["kb-latency"].values():
        assert 0.0 < row["p50_ms"] <= row["p99_ms"] < 1000.0
        assert row["build_seconds"] >= 0.0


def test_redis_memory_measures_or_says_why_not(tmp_path: Path) -> None:
    result = run(tmp_path, "redis-memory", "--quick")["redis-memory"]
    if "skipped" in result:
        # Only where redis-server is missing locally; in CI Redis is always there.
        assert os.environ.get("CI") != "true", result["skipped"]
        assert "redis-server" in result["skipped"]
        return
    assert result["conversations"] == cli.QUICK_CONVERSATIONS
    assert 1_000 < result["idle_conversation_bytes"] < 10_000
    assert 0 < result["bytes_per_extra_message"] < 4_000
    assert result["projected_1m_idle_gib"] > 0.0


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--only", "kb-speed"])
    assert "unknown benchmark 'kb-speed'" in capsys.readouterr().err
