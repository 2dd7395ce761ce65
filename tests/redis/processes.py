"""Router processes for the Redis tests (:mod:`tests.redis.router`); the
``redis-server`` they share comes from :mod:`bench.processes` (``tests/conftest.py``).

Every process started here is stopped by its owner (``stop``), pipes are closed and
exit codes collected, so no ``ResourceWarning`` leaks into a test run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.processes import STOP_SECONDS, stop_process

ROOT = Path(__file__).resolve().parents[2]


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
        stop_process(self.process, timeout=STOP_SECONDS)


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON to a router process; its JSON answer (200 expected)."""
    async with http.post(url, json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 200, answer
        return answer
