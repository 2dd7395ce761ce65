"""Channels are plug-ins (issue 10): a channel registered through the
``escala.channels`` entry points, as a third-party package would, is found by
``escala check`` and ``escala serve`` with no change to ``bot/``; and an SMS-only
server never imports aiogram or slack_bolt."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot import plugins
from tests.waits import PATIENCE, POLL_SECONDS

ROOT = Path(__file__).resolve().parents[2]
#: A subprocess on a loaded 2-core machine may take long to import and bind.
START_LIMIT_SECONDS = PATIENCE

SMS = """
[channels.sms]
account_sid_env = "ESCALA_TEST_SID"
auth_token_env = "ESCALA_TEST_TOKEN"
from_number = "+15550001111"
public_base_url = "https://bot.example.com"
"""

ECHO = """
[channels.echo]
path = "/echo"
"""


def _install_echo_distribution(where: Path) -> None:
    """What ``pip install`` of a package declaring the entry point leaves behind."""
    info = where / "escala_echo_channel-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: escala-echo-channel\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[escala.channels]\necho = tests.plugins.echo_channel:channel\n", encoding="utf-8"
    )


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "ESCALA_TEST_SID": "AC1",
        "ESCALA_TEST_TOKEN": "token",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=PATIENCE) as response:
        return json.loads(response.read())


def _post(url: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:
        status: int = response.status
        return status


def _check(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``escala check --config config`` in a process of its own (entry points are read
    once per process)."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", "--config", str(config)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=START_LIMIT_SECONDS,
    )


class Serve:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bot.cli", "serve", "--config", str(config)),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_LIMIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=PATIENCE) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                e.close()  # not 200 yet; closed here, not left to the garbage collector
            except OSError:
                pass  # not listening yet
            if self.process.poll() is not None:
                pytest.fail(f"escala serve exited: {self.process.communicate()[0].decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"escala serve not healthy within {START_LIMIT_SECONDS:g} s")
            time.sleep(POLL_SECONDS)  # polling a real process start-up, bounded above

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=START_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output.decode()


def test_the_packaged_channels_are_entry_points() -> None:
    found = plugins.discover()
    assert {"console", "telegram", "sms", "whatsapp", "slack"} <= set(found)
    assert isinstance(plugins.terminal(), plugins.TerminalSpec)


def test_a_third_party_channel_is_checked_without_touching_the_core(tmp_path: Path) -> None:
    _install_echo_distribution(tmp_path / "site")
    config = tmp_path / "escala.toml"
    config.write_text(ECHO, encoding="utf-8")
    result = _check(config, _env(tmp_path / "site"))
    assert result.returncode == 0, result.stderr.decode()
    assert "channels: echo" in result.stdout.decode()

    config.write_text('[channels.echo]\npath = "no-slash"\n', encoding="utf-8")
    result = _check(config, _env(tmp_path / "site"))
    assert result.returncode == 2
    assert "channels.echo.path: must be a path starting with '/'" in result.stderr.decode()


def test_without_the_distribution_the_channel_is_unknown(tmp_path: Path) -> None:
    config = tmp_path / "escala.toml"
    config.write_text(ECHO, encoding="utf-8")
    result = _check(config, _env(tmp_path / "empty-site"))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "channels.echo: unknown channel (known: " in err and "telegram" in err


def test_every_bad_channel_table_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "escala.toml"
    config.write_text(
        '[channels.fax]\nnumber = "1"\n\n[channels.telegram]\nmode = "carrier-pigeon"\n',
        encoding="utf-8",
    )
    result = _check(config)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "channels.fax: unknown channel" in err
    assert "channels.telegram.mode" in err


def test_a_third_party_channel_serves_customers_and_sms_only_imports_no_sdk(
    tmp_path: Path,
) -> None:
    _install_echo_distribution(tmp_path / "site")
    config = tmp_path / "escala.toml"
    config.write_text(SMS + ECHO, encoding="utf-8")
    server = Serve(config, _env(tmp_path / "site"))
    try:
        server.wait_healthy()
        assert _post(f"{server.url}/echo", {"from": "ana", "id": "1", "text": "oi"}) == 200
        sent = _get(f"{server.url}/echo/outbox")
        assert sent and sent[0]["to"] == "ana"
        assert sent[0]["text"].startswith("Olá! 👋 Sou o assistente virtual."), sent
        # An SMS-only server (the echo channel imports nothing heavy) never pays for
        # aiogram or Slack's SDK; Twilio's it needs.
        modules = _get(f"{server.url}/echo/modules")
        assert modules == {
            "aiogram": False,
            "slack_bolt": False,
            "slack_sdk": False,
            "twilio": True,
        }
    finally:
        output = server.stop()
    assert "Traceback" not in output, output
