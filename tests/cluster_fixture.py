"""A real 3-master Redis Cluster on loopback, for the contract suite and a journey
across processes (issue 18: "every script touches one hash tag only", proven).

Three ``redis-server --cluster-enabled yes`` on free ports, joined by
``redis-cli --cluster create``; each stopped by its PID at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

START_SECONDS = 30.0
NODES = 3


def _free_port() -> int:
    """A port free now, whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _wait(check: object, what: str, processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{log.read_text()}")
        try:
            if check():  # type: ignore[operator]
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready after {START_SECONDS}s:\n{log.read_text()}")
        time.sleep(0.05)  # poll interval, bounded by the deadline above


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        reason = "redis-server / redis-cli are not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; Redis tests may not be skipped in CI", pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("cluster")
    log = directory / "cluster.log"
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        with log.open("ab") as output:
            for n in range(NODES):
                port = _free_port()
                node_dir = directory / f"node{n}"
                node_dir.mkdir()
                processes.append(
                    subprocess.Popen(
                        [
                            server,
                            "--port", str(port),
                            "--bind", "127.0.0.1",
                            "--cluster-enabled", "yes",
                            "--cluster-config-file", str(node_dir / "nodes.conf"),
                            "--dir", str(node_dir),
                            "--save", "",
                            "--appendonly", "no",
                        ],
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
                ports.append(port)
        clients = [redis.Redis(host="127.0.0.1", port=p) for p in ports]
        try:
            _wait(lambda: all(c.ping() for c in clients), "cluster nodes", processes, log)
            with log.open("ab") as output:
                subprocess.run(
                    [
                        cli, "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes",
                    ],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=START_SECONDS,
                )  # fmt: skip

            def ready() -> bool:
                infos = [cast(Any, c).execute_command("CLUSTER INFO") for c in clients]
                return all(b"cluster_state:ok" in _bytes(info) for info in infos)

            _wait(ready, "cluster", processes, log)
        finally:
            for client in clients:
                client.close()
        yield f"redis://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _bytes(info: object) -> bytes:
    if isinstance(info, dict):
        return f"cluster_state:{info.get('cluster_state')}".encode()
    return info if isinstance(info, bytes) else str(info).encode()
