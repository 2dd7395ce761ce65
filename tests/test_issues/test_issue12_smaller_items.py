"""Issue 12, the smaller items: each fixed where a user met it (command line, console,
admin files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.settings import load_settings
from bot.triage import load_triage
from flows.errors import FlowError
from flows.loader import load_flows
from kb.errors import KbError
from kb.loader import load_kb
from tests.waits import PATIENCE

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "kb" / "content"


def escala(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def test_kb_ask_into_a_closed_pipe_ends_without_a_traceback() -> None:
    # `escala kb ask ... | head -2`: the reader closes the pipe after two lines
    done = subprocess.run(
        f"'{sys.executable}' -m bot.cli kb ask --kb '{KB}' 'qual o prazo de entrega?' | head -2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert len(done.stdout.splitlines()) == 2
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("escala 0.")


def test_escalate_to_an_unknown_tier_is_refused_not_sent_to_n2() -> None:
    done = escala(
        "chat",
        stdin="atendente\n/agent claim\n/agent escalate N9 precisa de alguém\n/agent ticket\n",
    )
    assert done.returncode == 0, done.stderr
    assert "[desk] unknown tier N9 (tiers: N1, N2, N3)" in done.stdout
    assert "[N2 queue]" not in done.stdout
    assert "assigned in N1" in done.stdout


def test_kb_ask_says_none_for_no() -> None:
    done = escala("kb", "ask", "--kb", str(KB), "no")
    assert json.loads(done.stdout)["outcome"] == "none"


# --- positions count from 1, and every problem of a file is reported ----------------------


def test_settings_report_every_problem_with_one_based_positions(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[engine]
default_locale = "fr"
[kb]
max_suggestions = 0
[[tiers]]
name = "N1"
level = 1
first_response_minutes = 15
[[tiers]]
name = "N2"
level = 2
first_response_minutes = 0
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    places = [place for _, place, _ in caught.value.problems]
    assert places == [
        "engine.default_locale",
        "kb.max_suggestions",
        "tiers[2].first_response_minutes",
    ]
    assert str(caught.value).count("\n") == 2


def test_routing_rules_report_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(
        """
[[rule]]
name = "one"
reason = "r"
tier = "N9"
[rule.when]
keywords = ["x"]

[[rule]]
name = "two"
reason = "r"
tier = "N1"
[rule.when]
regex = ["("]
""",
        encoding="utf-8",
    )
    settings = load_settings(None)
    with pytest.raises(ConfigError) as caught:
        load_triage(path, settings.tiers, settings.business_hours)
    assert [place for _, place, _ in caught.value.problems] == [
        "rule[1] 'one'.tier",
        "rule[2] 'two'.when.regex[1]",
    ]


def test_kb_reports_every_problem_with_one_based_positions(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        """
[[entry]]
id = "one"
category = "c"
questions = ["q", 3]
[entry.answers]
pt-BR = "a"
en = "a"

[[entry]]
id = "two"
category = "c"
questions = ["q"]
[entry.answers]
pt-BR = "a"
""",
        encoding="utf-8",
    )
    with pytest.raises(KbError) as caught:
        load_kb([tmp_path])
    assert [place for _, place, _ in caught.value.problems] == [
        "entry[1] 'one'.questions[2]",
        "entry[2] 'two'.answers.en",
    ]


def test_flows_report_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        """
[[flow]]
id = "one"
[[flow.step]]
id = "s"
type = "nope"

[[flow]]
id = "two"
[[flow.step]]
id = "s"
type = "say"
""",
        encoding="utf-8",
    )
    with pytest.raises(FlowError) as caught:
        load_flows([tmp_path])
    assert len(caught.value.problems) == 2
    assert [place.split(",")[0] for _, place, _ in caught.value.problems] == [
        "flow 'one'",
        "flow 'two'",
    ]


def test_the_command_line_prints_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[engine]\ndefault_locale = "fr"\n[kb]\nmax_suggestions = 0\n', encoding="utf-8"
    )
    done = escala("check", "--config", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert (
        lines[0].startswith("escala: configuration error:") and "engine.default_locale" in lines[0]
    )
    assert "kb.max_suggestions" in lines[1]
