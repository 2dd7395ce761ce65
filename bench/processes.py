"""Real OS processes for the benchmarks and the tests: a private ``redis-server`` on a
free loopback port, and how to wait for and stop a process we started.

One place for this, so the test fixture (``tests/conftest.py``), the Redis fault tests
and every benchmark start Redis the same way. Every process is stopped through its own
PID (``Popen``), never by name, and waited for, so no zombie or ``ResourceWarning`` is
left behind.

Waits are conditions with generous limits: on a busy 2-core machine a process can take
far longer than usual to come up, and a benchmark or a test must not fail because of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import redis

HOST = "127.0.0.1"
#: How long a process may take to come up before we call it broken (a loaded CI machine
#: can be very slow; a healthy start takes well under a second).
START_SECONDS = 300.0
#: How long a process may take to stop after SIGTERM before it is killed.
STOP_SECONDS = 60.0
#: How often a start-up condition is polled.
POLL_SECONDS = 0.02
#: Where Debian and Homebrew put ``redis-server`` when it is not on ``PATH``.
REDIS_LOCATIONS = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
#: A port picked by :func:`free_port` can be taken by someone else before redis-server
#: binds it; then we try another one.
PORT_ATTEMPTS = 5


class RedisUnavailable(Exception):
    """There is no ``redis-server`` binary on this machine."""


def redis_server_binary() -> str:
    """The ``redis-server`` executable, or :class:`RedisUnavailable` saying how to get it."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    for candidate in REDIS_LOCATIONS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise RedisUnavailable("redis-server is not installed (apt-get install redis-server)")


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(count: int, host: str = HOST) -> int:
    """The first of ``count`` consecutive free ports (a worker ``i`` listens on the
    first + ``i``): a lone free port's neighbour may be anyone's."""
    for _ in range(100):
        first = free_port(host)
        if first + count <= 65536 and all(_free(host, first + i) for i in range(1, count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaps the process and closes its pipes."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes] | None = None,
    what: str,
    log: Path | None = None,
    timeout: float = START_SECONDS,
    poll: float = POLL_SECONDS,
) -> None:
    """Poll ``ready()`` until it is true. Fails at once if ``process`` exits, and only
    after ``timeout`` otherwise (a generous limit: a busy machine is slow, not broken)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(poll)  # polling a condition, bounded by the deadline above


def tail(log: Path | None, lines: int = 30) -> str:
    """The last lines of a log file, for an error message."""
    if log is None:
        return "(no log)"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RedisServer:
    """A private ``redis-server`` on a free loopback port, its files in ``directory``.

    No snapshots; with ``appendonly`` an append-only file with ``appendfsync always``
    (every write is on disk before its reply), so a test can SIGKILL it (:meth:`kill`)
    and :meth:`start` it again on the same data and port. Use as a context manager or
    call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, directory: Path, *, appendonly: bool = False, binary: str | None = None
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.directory = directory
        self.appendonly = appendonly
        self.log = directory / "redis.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    def _command(self) -> Sequence[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.appendonly
            else ["--appendonly", "no"]
        )
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.directory),
            "--save", "",
            *persistence,
        ]  # fmt: skip

    def start(self, timeout: float = START_SECONDS) -> None:
        """Start it and return once it answers PING (on the same port as before, if it
        ran before: clients keep their URL across a restart)."""
        assert self.process is None, "already running"
        restart = self.port != 0
        for _ in range(1 if restart else PORT_ATTEMPTS):
            if not restart:
                self.port = free_port()
            with self.log.open("ab") as output:
                self.process = subprocess.Popen(
                    self._command(), stdout=output, stderr=subprocess.STDOUT
                )
            try:
                wait_until(
                    self._answers, process=self.process, what="redis-server", log=self.log,
                    timeout=timeout,
                )  # fmt: skip
                return
            except RuntimeError:
                stop_process(self.process)
                self.process = None
                if restart or "Address already in use" not in tail(self.log, 5):
                    raise
        raise RuntimeError(f"redis-server found no free port in {PORT_ATTEMPTS} attempts")

    def _answers(self) -> bool:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=10)
        try:
            return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False  # not listening yet, or still loading its append-only file
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out."""
        assert self.process is not None, "not running"
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """SIGTERM (by PID) and wait; nothing if it is not running."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
