"""``escala serve --workers N`` (issue 18): N worker processes on one port.

Python runs one event loop on one core; to use more cores, ``escala serve --workers N``
starts a small supervisor that spawns N workers. Each worker is a whole ``escala
serve`` (its own interpreter, event loop, store connections, plug-ins, timer sweeper
and outbox) that binds the same address with ``SO_REUSEPORT``, so the kernel spreads
new connections over the workers. Workers share nothing but the store, as separate
``escala serve`` processes behind a load balancer always could, hence:

* only a Redis store may have several workers (the memory store would give each
  worker a store of its own: state would diverge); refused at start-up;
* timers and outbox deliveries are already handed to one process at a time by the
  store (``pop_due`` and delivery leases), so N sweepers never double-act;
* metrics are per process: worker ``i`` serves ``/metrics`` on ``[metrics] port +
  i``, which must therefore be set (a scrape of a shared port would reach one
  random worker's counters); refused at start-up otherwise.

The supervisor forwards SIGTERM and SIGINT to every worker (each shuts down
gracefully) and SIGHUP to the first one only (a content reload is published once;
every worker then follows it). It restarts nothing: when a worker exits without
being asked, it logs that clearly, stops the others and exits non-zero, so the
service manager (systemd ``Restart=on-failure``, Kubernetes) restarts the whole
service and a crash loop stays visible instead of being hidden by silent respawns.
Workers watch a pipe from the supervisor: if the supervisor itself dies (SIGKILL),
they see the pipe close and shut down too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.metrics import MetricsConfig
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """What a worker process knows about its place: ``index`` of ``count`` (from 0),
    and the supervisor's end of the pipe it watches (None: not watched)."""

    index: int
    count: int
    supervisor_fd: int | None = None


def check_workers(settings: Settings, metrics: MetricsConfig, workers: int) -> None:
    """Refuse a configuration several workers cannot serve correctly (module docstring)."""
    file = str(settings.source or "settings")
    if workers < 1:
        raise ConfigError(file, "--workers", f"expected at least 1, got {workers}")
    if workers == 1:
        return
    if settings.store.backend != "redis":
        raise ConfigError(
            file,
            "store.backend",
            f"'{settings.store.backend}' keeps conversations inside one process: with "
            f"--workers {workers} each worker would have a store of its own and their "
            'state would diverge; use backend = "redis" (or one worker)',
        )
    if metrics.enabled and metrics.port is None:
        raise ConfigError(
            file,
            "metrics.port",
            f"--workers {workers}: each worker counts its own metrics and serves them on "
            "metrics.port + its index (0, 1, ...), so a scrape reaches every worker; set "
            "metrics.port (or metrics.enabled = false)",
        )
    if metrics.port is not None and metrics.port + workers - 1 > 65535:
        raise ConfigError(
            file, "metrics.port", f"{metrics.port} + {workers - 1} workers is beyond 65535"
        )


async def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run one worker per command until a signal or a worker's own exit; the exit
    status for the command line (0: every worker stopped cleanly when asked to).

    Each command gets ``--supervisor-fd FD`` appended: the read end of a pipe whose
    write end only this process holds."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    workers: list[asyncio.subprocess.Process] = []

    def stop_all(reason: str) -> None:
        if not stopping.is_set():
            live = sum(1 for p in workers if p.returncode is None)
            log.info("%s: stopping %d worker(s)", reason, live)
        stopping.set()
        for process in workers:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)

    def hangup() -> None:
        if workers and workers[0].returncode is None:
            log.info("SIGHUP: passed to worker 0 (pid %d), which publishes", workers[0].pid)
            workers[0].send_signal(signal.SIGHUP)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all, signal.Signals(sig).name)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    read_fd, write_fd = os.pipe()
    try:
        try:
            for index, command in enumerate(commands):
                if stopping.is_set():
                    break
                process = await asyncio.create_subprocess_exec(
                    *command, "--supervisor-fd", str(read_fd), pass_fds=(read_fd,)
                )
                workers.append(process)
                log.info("worker %d/%d started (pid %d)", index, len(commands), process.pid)
        finally:
            os.close(read_fd)  # the workers hold it now; ours would keep the pipe open
        return await _watch(workers, stopping, stop_all)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        os.close(write_fd)


async def _watch(
    workers: Sequence[asyncio.subprocess.Process],
    stopping: asyncio.Event,
    stop_all: Callable[[str], None],
) -> int:
    exits = {asyncio.ensure_future(p.wait()): i for i, p in enumerate(workers)}
    asked = asyncio.ensure_future(stopping.wait())
    failed: int | None = None
    reported: set[int] = set()
    try:
        done, _ = await asyncio.wait([*exits, asked], return_when=asyncio.FIRST_COMPLETED)
        if not stopping.is_set():
            for task in done:
                index, process = exits[task], workers[exits[task]]
                log.error(
                    "worker %d (pid %d) exited on its own with status %s; stopping the "
                    "others and exiting (the supervisor restarts nothing)",
                    index, process.pid, process.returncode,
                )  # fmt: skip
                failed = failed or _status(process.returncode)
                reported.add(index)
            stop_all("a worker exited")
        await asyncio.gather(*exits)
    finally:
        asked.cancel()
    for index, process in enumerate(workers):
        code = process.returncode
        if code not in (0, -signal.SIGTERM, -signal.SIGINT) and index not in reported:
            log.error("worker %d (pid %d) ended with status %s", index, process.pid, code)
            failed = failed or _status(code)
    if failed is None:
        log.info("all %d worker(s) stopped", len(workers))
    return failed or 0


def _status(code: int | None) -> int:
    """A worker's exit status as the supervisor's own (a signal death: 1)."""
    return code if code is not None and code > 0 else 1
