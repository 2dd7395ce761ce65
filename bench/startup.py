"""Part 5: start-up time of the command line (issue 10).

For two configurations, each a real subprocess (``python -m bot.cli``), repeated:

* **sms-only**: ``[channels.sms]`` (Twilio SMS) on the memory store;
* **all-channels**: Telegram (webhook mode), SMS, WhatsApp and Slack (HTTP mode).

What is measured:

* ``escala serve``: from spawning the process to the first ``GET /healthz`` = 200
  (polled every ``POLL_SECONDS``), then it is stopped with SIGTERM;
* ``escala check``: wall time of the whole process;
* ``escala kb ask`` on the packaged KB: wall time per call, and the share of it spent
  importing (``python -m bench.startup --kb-ask`` times only this, 11 runs);
* whether ``aiogram`` and ``slack_bolt`` are imported at all, by ``serve`` and by
  ``check``: one more run of each under ``python -X importtime`` (not timed), whose
  report names every module the process imported.

Nothing leaves the machine: Telegram's ``api_base`` points at a fake Bot API on
127.0.0.1 (start-up calls ``setWebhook``); Slack's start-up token check (``auth.test``)
goes to a fake Web API on 127.0.0.1 (:mod:`bench.offline_serve` sets the Slack SDK's
default address: ``[slack]`` has no key for it); Twilio is not called at start-up.
Secrets are made-up values in environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.e2e import FakeTelegramApi, spawn
from bench.offline_serve import SLACK_API_ENV
from bench.processes import HOST, START_SECONDS, free_port, stop_process, tail
from bench.progress import Progress

REPO_ROOT = Path(__file__).resolve().parent.parent
KB = REPO_ROOT / "kb" / "content"
QUESTION = "qual o horário de atendimento?"
REPETITIONS = 5
#: `kb ask` is quick and noisy: more runs for its median.
KB_ASK_REPETITIONS = 11
QUICK_REPETITIONS = 1
#: How often ``/healthz`` is polled while a server starts (the resolution of the figure).
POLL_SECONDS = 0.01
#: Modules whose presence in an SMS-only process means a channel was imported eagerly.
HEAVY = ("aiogram", "slack_bolt")

ENV = {
    "ESCALA_BENCH_TG_TOKEN": "123456:BENCH-token",
    "ESCALA_BENCH_TG_SECRET": "bench-secret_token-0123456789",
    "ESCALA_BENCH_TWILIO_SID": "AC" + "0" * 32,
    "ESCALA_BENCH_TWILIO_TOKEN": "bench-twilio-token",
    "ESCALA_BENCH_SLACK_TOKEN": "xoxb-bench-token",
    "ESCALA_BENCH_SLACK_SECRET": "bench-slack-signing-secret",
}

SERVER = """\
[server]
host = "{host}"
port = {port}
"""

SMS = """
[channels.sms]
account_sid_env = "ESCALA_BENCH_TWILIO_SID"
auth_token_env = "ESCALA_BENCH_TWILIO_TOKEN"
from_number = "+15550001111"
public_base_url = "http://{host}:{port}"
"""

OTHERS = """
[channels.whatsapp]
account_sid_env = "ESCALA_BENCH_TWILIO_SID"
auth_token_env = "ESCALA_BENCH_TWILIO_TOKEN"
from_number = "whatsapp:+15550002222"
public_base_url = "http://{host}:{port}"

[channels.telegram]
mode = "webhook"
token_env = "ESCALA_BENCH_TG_TOKEN"
secret_token_env = "ESCALA_BENCH_TG_SECRET"
webhook_url = "https://escala.bench.invalid/telegram/webhook"  # sent to the fake only
api_base = "{telegram_api}"

[slack]
mode = "http"
bot_token_env = "ESCALA_BENCH_SLACK_TOKEN"
signing_secret_env = "ESCALA_BENCH_SLACK_SECRET"
channels = {{ N1 = "C0BENCH1", N2 = "C0BENCH2", N3 = "C0BENCH3" }}
private_channels = {{ N1 = "G0BENCH1" }}
agents = {{ U0BENCH1 = "ana" }}
"""

CONFIGS = ("sms-only", "all-channels")


class FakeSlackApi:
    """Answers every Slack Web API method with ``ok`` (start-up only calls ``auth.test``)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, HOST, port).start()
        self.url = f"http://{HOST}:{port}/api/"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(request.match_info["method"])
        return web.json_response(
            {"ok": True, "url": "https://bench.invalid/", "team": "bench", "user": "escala",
             "team_id": "T0BENCH", "user_id": "U0ESCALA", "bot_id": "B0ESCALA"}
        )  # fmt: skip


@dataclass(frozen=True)
class Fakes:
    telegram: str
    slack: str


def write_config(directory: Path, name: str, port: int, fakes: Fakes) -> Path:
    """The TOML of configuration ``name`` for a server on ``port``."""
    values = {"host": HOST, "port": port, "telegram_api": fakes.telegram}
    text = SERVER.format(**values) + SMS.format(**values)
    if name == "all-channels":
        text += OTHERS.format(**values)
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(fakes: Fakes) -> dict[str, str]:
    return {**os.environ, **ENV, SLACK_API_ENV: fakes.slack}


def _command(
    verb: str, *args: str, importtime: bool = False, offline_slack: bool = False
) -> list[str]:
    """``python -m bot.cli VERB ARGS``; a server with ``[slack]`` runs through
    :mod:`bench.offline_serve`, which points the Slack SDK at the fake."""
    module = ["bench.offline_serve"] if offline_slack else ["bot.cli", verb]
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", *module, *args]


async def _time_to_healthy(
    config: Path, port: int, fakes: Fakes, log: Path, *, slack: bool, importtime: bool = False
) -> float:
    """Spawn ``escala serve``, return seconds until ``/healthz`` answered 200, stop it."""
    command = _command("serve", "--config", str(config), importtime=importtime, offline_slack=slack)
    url = f"http://{HOST}:{port}/healthz"
    timeout = aiohttp.ClientTimeout(total=START_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        process = spawn(command, log, env=_env(fakes))
        try:
            while True:
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            healthy = time.perf_counter() - started
                            break
                except aiohttp.ClientConnectionError:
                    pass  # not listening yet
                if process.poll() is not None:
                    raise RuntimeError(f"escala serve exited early:\n{tail(log)}")
                if time.perf_counter() - started > START_SECONDS:
                    raise RuntimeError(
                        f"escala serve not healthy in {START_SECONDS}s:\n{tail(log)}"
                    )
                await asyncio.sleep(POLL_SECONDS)  # polling a start-up, bounded above
        finally:
            await asyncio.to_thread(stop_process, process)
    if process.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"escala serve exited with {process.returncode}:\n{tail(log)}")
    return healthy


def _timed_run(command: Sequence[str], fakes: Fakes) -> tuple[float, str]:
    """Wall seconds of one command, and its standard error (must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=_env(fakes), capture_output=True, text=True,
        timeout=START_SECONDS, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr}")
    return elapsed, done.stderr


def imported(importtime_report: str) -> dict[str, Any]:
    """From ``-X importtime`` output: which :data:`HEAVY` packages were imported, and the
    cumulative microseconds of each one's top-level import."""
    found: dict[str, Any] = {}
    for package in HEAVY:
        cumulative = None
        for line in importtime_report.splitlines():
            if not line.startswith("import time:"):
                continue
            parts = line.split("|")
            if len(parts) != 3 or parts[2].strip() != package:
                continue
            try:
                cumulative = int(parts[1])
            except ValueError:
                continue
        found[package] = {"imported": cumulative is not None, "cumulative_us": cumulative}
    return found


def _summary(samples: Sequence[float]) -> dict[str, Any]:
    return {
        "runs": len(samples),
        "median_s": round(statistics.median(samples), 3),
        "max_s": round(max(samples), 3),
        "samples_s": [round(s, 3) for s in samples],
    }


async def _measure(repetitions: int, progress: Progress, directory: Path) -> dict[str, Any]:
    telegram, slack = FakeTelegramApi(), FakeSlackApi()
    await telegram.start()
    await slack.start()
    try:
        fakes = Fakes(telegram=telegram.url, slack=slack.url)
        results: dict[str, Any] = {}
        for name in CONFIGS:
            port = free_port()
            config = write_config(directory, name, port, fakes)
            log = directory / f"{name}.log"
            with_slack = name == "all-channels"
            serve = []
            for i in range(repetitions):
                serve.append(await _time_to_healthy(config, port, fakes, log, slack=with_slack))
                progress.say(f"[startup {name}] serve healthy in {serve[-1]:.2f}s ({i + 1})")
            check = []
            for _ in range(repetitions):
                command = _command("check", "--config", str(config))
                check.append((await asyncio.to_thread(_timed_run, command, fakes))[0])
            progress.say(f"[startup {name}] check median {statistics.median(check):.2f}s")
            await _time_to_healthy(config, port, fakes, log, slack=with_slack, importtime=True)
            serve_imports = imported(log.read_text(errors="replace"))
            check_command = _command("check", "--config", str(config), importtime=True)
            _, check_report = await asyncio.to_thread(_timed_run, check_command, fakes)
            results[name] = {
                "serve_time_to_healthy": _summary(serve),
                "check": _summary(check),
                "imports": {"serve": serve_imports, "check": imported(check_report)},
            }
        results["kb_ask"] = await _kb_ask(repetitions, progress, fakes)
        results["fake_calls"] = {
            "telegram": telegram.other_calls + telegram.calls,
            "slack": len(slack.calls),
        }
        return results
    finally:
        await telegram.close()
        await slack.close()


async def _kb_ask(repetitions: int, progress: Progress, fakes: Fakes) -> dict[str, Any]:
    """Wall time of ``escala kb ask`` (a whole process each), and what it imported."""
    ask = []
    command = _command("kb", "ask", "--kb", str(KB), QUESTION)
    for _ in range(repetitions):
        ask.append((await asyncio.to_thread(_timed_run, command, fakes))[0])
    progress.say(f"[startup] kb ask median {statistics.median(ask):.2f}s")
    _, report = await asyncio.to_thread(
        _timed_run, _command("kb", "ask", "--kb", str(KB), QUESTION, importtime=True), fakes
    )
    return _summary(ask) | {"imports": imported(report), "import_us": _import_total(report)}


def _import_total(importtime_report: str) -> int:
    """Microseconds of every top-level import of a ``-X importtime`` report."""
    total = 0
    for line in importtime_report.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[2][1:2] != " ":
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total


def run_kb_ask(*, repetitions: int = KB_ASK_REPETITIONS, progress: Progress) -> dict[str, Any]:
    """Only ``escala kb ask``: no server, no fakes called."""
    fakes = Fakes(telegram="http://127.0.0.1:9", slack="http://127.0.0.1:9")
    return {"repetitions": repetitions, "question": QUESTION,
            "kb_ask": asyncio.run(_kb_ask(repetitions, progress, fakes))}  # fmt: skip


def run(*, repetitions: int = REPETITIONS, progress: Progress) -> dict[str, Any]:
    """Start-up figures of both configurations, ``repetitions`` runs each."""
    with tempfile.TemporaryDirectory(prefix="startup-") as directory:
        results = asyncio.run(_measure(repetitions, progress, Path(directory)))
    return {"repetitions": repetitions, "question": QUESTION, **results}


def markdown(results: Mapping[str, Any]) -> str:
    """The tables of one run (figures in seconds: median and max of the runs)."""
    lines = [
        f"### Start-up (median / max of {results['repetitions']} runs, seconds)",
        "",
        "| configuration | serve → /healthz 200 | check | aiogram imported (serve, check) "
        "| slack_bolt imported (serve, check) |",
        "|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        row = results[name]
        serve, check, imports = row["serve_time_to_healthy"], row["check"], row["imports"]

        def said(package: str, imports: Mapping[str, Any] = imports) -> str:
            return ", ".join(
                "yes" if imports[verb][package]["imported"] else "no" for verb in ("serve", "check")
            )

        lines.append(
            f"| {name} | {serve['median_s']:.2f} / {serve['max_s']:.2f} "
            f"| {check['median_s']:.2f} / {check['max_s']:.2f} | {said('aiogram')} "
            f"| {said('slack_bolt')} |"
        )
    lines += ["", kb_ask_line(results), ""]
    return "\n".join(lines)


def kb_ask_line(results: Mapping[str, Any]) -> str:
    ask = results["kb_ask"]
    heavy = [p for p, seen in ask.get("imports", {}).items() if seen["imported"]]
    return (
        f"`escala kb ask` on the packaged KB: {ask['median_s']:.2f} / {ask['max_s']:.2f} s "
        f"per call (median / max of {ask['runs']}, a whole process each); imports "
        f"{ask.get('import_us', 0) / 1e6:.2f} s of it; SDKs imported: {', '.join(heavy) or 'none'}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--repetitions", type=int, default=None)
    parser.add_argument("--kb-ask", action="store_true", help="only time `escala kb ask`")
    options = parser.parse_args(argv)
    if options.kb_ask:
        repetitions = options.repetitions or KB_ASK_REPETITIONS
        print(kb_ask_line(run_kb_ask(repetitions=repetitions, progress=Progress())))
        return 0
    options.repetitions = options.repetitions or REPETITIONS
    print(markdown(run(repetitions=options.repetitions, progress=Progress())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
