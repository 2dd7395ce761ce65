"""Start-up weight of the one-shot commands (issue 18, part 5): ``escala kb ask`` with
the lexical matcher loads the KB and the matcher and nothing of the server (no SDK, no HTTP stack, no Redis
client, no store, no flows runner); ``escala check`` with every channel configured
checks their tables without importing aiogram or Slack's SDK.

Each command runs in a process of its own; a small wrapper runs ``bot.cli`` as
``python -m bot.cli`` would and then reports which modules the process imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.waits import PATIENCE

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, runpy, sys
watched = sys.argv[1].split(",")
sys.argv = ["escala", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("bot.cli", run_name="__main__")
except SystemExit as e:
    code = e.code
print(json.dumps({"exit": code, "imported": sorted(m for m in watched if m in sys.modules)}),
      file=sys.stderr)
"""
SDKS = ("aiogram", "slack_bolt", "slack_sdk", "twilio")
#: What a KB question never needs: the server's stack, the store, password hashing,
#: the flow runner, the event loop.
SERVER_STACK = (
    "aiohttp", "redis", "jinja2", "prometheus_client", "argon2", "pydantic", "asyncio",
    "bot.store", "bot.engine", "bot.events", "flows.runner", "flows.loader",
)  # fmt: skip

ALL_CHANNELS = """
[channels.sms]
account_sid_env = "ESCALA_TEST_TWILIO_SID"
auth_token_env = "ESCALA_TEST_TWILIO_TOKEN"
from_number = "+15550001111"
public_base_url = "http://127.0.0.1:8080"

[channels.whatsapp]
account_sid_env = "ESCALA_TEST_TWILIO_SID"
auth_token_env = "ESCALA_TEST_TWILIO_TOKEN"
from_number = "whatsapp:+15550002222"
public_base_url = "http://127.0.0.1:8080"

[channels.telegram]
mode = "webhook"
token_env = "ESCALA_TEST_TG_TOKEN"
secret_token_env = "ESCALA_TEST_TG_SECRET"
webhook_url = "https://escala.test.invalid/telegram/webhook"

[slack]
mode = "http"
bot_token_env = "ESCALA_TEST_SLACK_TOKEN"
signing_secret_env = "ESCALA_TEST_SLACK_SECRET"
channels = { N1 = "C0TEST1", N2 = "C0TEST2", N3 = "C0TEST3" }
private_channels = { N1 = "G0TEST1" }
agents = { U0TEST1 = "ana" }
"""
SECRETS = {
    "ESCALA_TEST_TWILIO_SID": "AC" + "0" * 32,
    "ESCALA_TEST_TWILIO_TOKEN": "test-twilio-token",
    "ESCALA_TEST_TG_TOKEN": "123456:TEST-token",
    "ESCALA_TEST_TG_SECRET": "test-secret_token-0123456789",
    "ESCALA_TEST_SLACK_TOKEN": "xoxb-test-token",
    "ESCALA_TEST_SLACK_SECRET": "test-slack-signing-secret",
}


def _run(watched: tuple[str, ...], *argv: str) -> tuple[dict[str, object], str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(watched), *argv],
        cwd=ROOT,
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert isinstance(report, dict)
    return report, result.stdout


def test_kb_ask_imports_no_sdk_and_nothing_of_the_server(tmp_path: Path) -> None:
    # The lexical matcher, whether or not the `semantic` extra is installed (the fused
    # matcher loads an encoder: a different, heavier command).
    config = tmp_path / "escala.toml"
    config.write_text("[kb]\nsemantic = false\n", encoding="utf-8")
    report, out = _run(
        (*SDKS, *SERVER_STACK),
        *("kb", "ask", "--kb", "kb/content", "--config", str(config)),
        "qual o horário de atendimento?",
    )
    assert report == {"exit": 0, "imported": []}
    answer = json.loads(out)
    assert answer["outcome"] == "answer", answer


def test_check_with_every_channel_imports_neither_aiogram_nor_slack_bolt(tmp_path: Path) -> None:
    config = tmp_path / "escala.toml"
    config.write_text(ALL_CHANNELS, encoding="utf-8")
    report, out = _run(SDKS, "check", "--config", str(config))
    assert report["exit"] == 0, (report, out)
    assert "channels: " in out and "telegram" in out and "slack" in out, out
    assert report["imported"] == [], report
