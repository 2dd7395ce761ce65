"""Real OS processes for the Redis tests: a ``redis-server`` one test may kill and
restart on the same data directory, and router processes (:mod:`tests.redis.router`).

Every process started here is stopped by its owner (``stop``), pipes are closed and
exit codes collected, so no ``ResourceWarning`` leaks into a test run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _stop, _wait_until_ready

ROOT = Path(__file__).resolve().parents[2]


def redis_server_binary() -> str:
    server = shutil.which("redis-server")
    if server is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; Redis tests may not be skipped in CI", pytrace=False)
        pytest.skip(reason)
    return server


class RedisServer:
    """A private ``redis-server`` on a unix socket in ``directory``, optionally with an
    append-only file there (``appendfsync always``: every write reaches the disk before
    its reply)."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.appendonly = appendonly
        self.socket = directory / "redis.sock"
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        assert self.process is None, "already running"
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else [
            "--appendonly", "no"
        ]  # fmt: skip
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port", "0",
                    "--unixsocket", str(self.socket),
                    "--unixsocketperm", "700",
                    "--dir", str(self.directory),
                    "--save", "",
                    *persistence,
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_until_ready(self.process, self.socket, self.log)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None
        self.socket.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class Router:
    """One ``python -m tests.redis.router`` process."""

    def __init__(self, redis_url: str, log: Path, *extra: str) -> None:
        self.log = log
        with log.open("ab") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.redis.router", "--redis-url", redis_url, *extra],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()  # the router prints it once it serves
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"router did not start:\n{line}{log.read_text()}")
        self.url = f"http://{line.removeprefix('listening on ').strip()}"

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
