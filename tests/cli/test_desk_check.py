"""Issue 13: ``escala check`` refuses a desk that would leave tickets stuck, naming the
file, the key and the reason of every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

TIERS = """
[[tiers]]
name = "N1"
level = 1
first_response_minutes = 15

[[tiers]]
name = "N2"
level = 2
first_response_minutes = 120
on_first_response_breach = ["notify", "escalate"]

[[tiers]]
name = "N3"
level = 3
first_response_minutes = 480

[[agents]]
id = "ana"
tiers = ["N1", "N2"]
"""

RULES = """
[[rule]]
name = "urgent-to-n2"
reason = "urgent"
tier = "N2"
on_resolution_breach = ["escalate"]
[rule.when]
keywords = ["urgente"]

[[rule]]
name = "private-billing"
reason = "billing data"
tier = "N1"
private = true
[rule.when]
keywords = ["fatura"]
"""

SLACK = """
[slack]
channels = { N1 = "C0111AAAA", N2 = "C0222BBBB", N3 = "C0333CCCC" }
agents = { U0AAAAAAA = "ana" }
"""


def write(tmp_path: Path, *, slack: str = "", tiers: str = TIERS) -> Path:
    rules = tmp_path / "routing.toml"
    rules.write_text(RULES)
    config = tmp_path / "escala.toml"
    config.write_text(f'[triage]\nrules = "routing.toml"\n{tiers}\n{slack}')
    return config


def test_a_tier_nobody_works_and_escalations_into_it_are_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path)
    assert main(["check", "--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    rules = tmp_path / "routing.toml"
    assert lines == [
        f"escala: configuration error: {config}: tiers[3].name: no agent works tier 'N3'"
        " (add it to an [[agents]] tiers list): its tickets could never be claimed",
        f"{config}: tiers[2].on_first_response_breach: escalates into tier 'N3', which no"
        " agent works",
        f"{rules}: rule[1] 'urgent-to-n2'.on_resolution_breach: escalates into tier 'N3',"
        " which no agent works",
    ]


def test_a_private_rule_without_a_private_slack_channel_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret-of-16-chars")
    config = write(tmp_path, slack=SLACK)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    rules = tmp_path / "routing.toml"
    # the desk's problems and Slack's, in one report
    assert "tiers[3].name: no agent works tier 'N3'" in err
    assert (
        f"{rules}: rule[2] 'private-billing'.private: sensitive tickets go to tier N1, which"
        f" has no private Slack channel ({config}: slack.private_channels.N1): their cards"
        " would show in the open channel"
    ) in err.splitlines()


def test_a_desk_that_works_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret-of-16-chars")
    tiers = TIERS.replace('tiers = ["N1", "N2"]', 'tiers = ["N1", "N2", "N3"]')
    slack = SLACK.replace("agents =", 'private_channels = { N1 = "G0444DDDD" }\nagents =')
    config = write(tmp_path, slack=slack, tiers=tiers)
    assert main(["check", "--config", str(config)]) == 0
    assert "3 tiers, 1 agents, channels: slack" in capsys.readouterr().out
