"""``escala serve`` as a process: it serves, answers /healthz, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.waits import PATIENCE, POLL_SECONDS

CONFIG = """
[store]
backend = "{backend}"
{url}

[channels.sms]
account_sid_env = "ESCALA_TEST_SID"
auth_token_env = "ESCALA_TEST_TOKEN"
from_number = "+15550001111"
public_base_url = "https://bot.example.com"
"""


def _config(tmp_path: Path, backend: str = "memory", url: str = "") -> Path:
    path = tmp_path / "escala.toml"
    path.write_text(CONFIG.format(backend=backend, url=url), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "ESCALA_TEST_SID": "AC1", "ESCALA_TEST_TOKEN": "token"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(_config(tmp_path))]
    log = tmp_path / "serve.log"
    # Output to a file, not a pipe: nothing to leave unclosed for the garbage collector
    # to report in a later test (a ResourceWarning, an error), and no pipe to fill up.
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + PATIENCE
        url = f"http://127.0.0.1:{port}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=PATIENCE) as r:
                    assert r.status == 200
                    break
            except urllib.error.HTTPError as e:
                e.close()  # an answer other than 200: the store is not ready yet
            except OSError:
                pass  # not listening yet
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"escala serve not healthy after {PATIENCE}s"
            time.sleep(POLL_SECONDS)  # polling a real process start-up, bounded above
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PATIENCE) == 0, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    config = _config(tmp_path, "redis", f'url = "redis://:hunter2@127.0.0.1:{port}/0"')
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
        env=_env(),
        capture_output=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "store.url: cannot reach Redis at redis://:***@127.0.0.1" in err
    assert "hunter2" not in err and "Traceback" not in err
