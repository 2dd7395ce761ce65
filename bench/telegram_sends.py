"""CPU per Telegram send: aiogram's ``Bot.send_message`` against the lean path (issue 18).

Both variants run in the same benchmark, alternately, each in a fresh client process
(``python -m bench.telegram_sends --client stock|lean``) so that one cannot warm the
other's caches:

* **stock**: ``await bot.send_message(chat_id=..., text=...)`` as the adapter did before,
  in a process that never imports ``channels.telegram.sends`` (so pydantic's weak cache
  of ``Response[Message]`` behaves as it does for any aiogram user);
* **held**: the same ``bot.send_message``, in a process that holds the parametrised
  response models (``channels.telegram.sends.HELD_RESPONSE_MODELS``): no rebuilds, but
  every echoed ``Message`` still validated;
* **lean**: ``channels.telegram.sends.LeanSends.send_message``, what the adapter does now.

The fake Bot API is a separate process on 127.0.0.1 (its CPU is not counted). Each client
sends ``SENDS`` messages one after the other (closed loop, one connection), after
``WARMUP`` unmeasured sends, and reports its own CPU time (``time.process_time``) per send
and the slowest send (a ``Response[Message]`` rebuild shows as a ~25 ms stall).

``python -m bench.telegram_sends [--sends N] [--rounds R]`` prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.processes import HOST, free_port, stop_process, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:BENCH-sends"
SENDS = 3000
WARMUP = 200
ROUNDS = 3
VARIANTS = ("stock", "held", "lean")
TEXT = "Atendemos de segunda a sexta, das 8h às 20h, e aos sábados das 9h às 14h."


async def _serve_fake(port: int) -> None:
    """A minimal Bot API: every sendMessage succeeds and echoes a Message like Telegram."""
    counter = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal counter
        fields = await request.post()
        counter += 1
        if request.match_info["method"] != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        message = {
            "message_id": counter,
            "from": {
                "id": 123456,
                "is_bot": True,
                "first_name": "Escala",
                "username": "escala_bot",
            },
            "chat": {"id": int(str(fields["chat_id"])), "first_name": "Rita", "type": "private"},
            "date": 1700000000,
            "text": str(fields["text"]),
        }
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handle)
    app.router.add_get("/healthz", lambda _: _ok())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    await asyncio.Event().wait()


async def _ok() -> web.Response:
    return web.Response(text="ok")


async def _client(variant: str, port: int, sends: int) -> dict[str, float]:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://{HOST}:{port}"))
    bot = Bot(TOKEN, session=session)
    if variant == "lean":
        from channels.telegram.sends import LeanSends

        lean = LeanSends(bot)

        async def send(n: int) -> None:
            await lean.send_message(4242, TEXT)

    else:
        if variant == "held":
            from channels.telegram.sends import HELD_RESPONSE_MODELS

            assert HELD_RESPONSE_MODELS

        async def send(n: int) -> None:
            await bot.send_message(chat_id=4242, text=TEXT)

    try:
        for n in range(WARMUP):
            await send(n)
        gc.collect()
        slowest = 0.0
        cpu = time.process_time()
        wall = time.perf_counter()
        for n in range(sends):
            started = time.perf_counter()
            await send(n)
            slowest = max(slowest, time.perf_counter() - started)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    finally:
        await session.close()
    return {
        "cpu_us_per_send": cpu / sends * 1e6,
        "wall_us_per_send": wall / sends * 1e6,
        "slowest_ms": slowest * 1e3,
    }


def run(*, sends: int = SENDS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Alternate the variants ``rounds`` times against one fake; medians per variant."""
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "bench.telegram_sends", "--fake", str(port)], cwd=REPO_ROOT
    )
    try:
        import urllib.request

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(healthy, process=fake, what="the fake Bot API")
        samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(rounds):
            for variant in VARIANTS:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.telegram_sends", "--client", variant,
                     "--port", str(port), "--sends", str(sends)],
                    cwd=REPO_ROOT, check=True, capture_output=True, text=True,
                )  # fmt: skip
                samples[variant].append(json.loads(out.stdout))
    finally:
        stop_process(fake)
    result: dict[str, Any] = {"sends": sends, "rounds": rounds}
    for variant, runs in samples.items():
        result[variant] = {
            key: statistics.median(r[key] for r in runs)
            for key in ("cpu_us_per_send", "wall_us_per_send")
        } | {"slowest_ms": max(r["slowest_ms"] for r in runs)}
    result["cpu_ratio"] = result["stock"]["cpu_us_per_send"] / result["lean"]["cpu_us_per_send"]
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### Telegram sends ({result['sends']} sends per run, median of {result['rounds']} "
        "alternating runs)",
        "",
        "| variant | client CPU per send | wall per send | slowest send |",
        "|---|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        row = result[variant]
        lines.append(
            f"| {variant} | {row['cpu_us_per_send']:.0f} µs | {row['wall_us_per_send']:.0f} µs "
            f"| {row['slowest_ms']:.1f} ms |"
        )
    lines += ["", f"CPU per send, stock / lean: {result['cpu_ratio']:.2f}×"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telegram_sends", description=__doc__)
    parser.add_argument("--sends", type=int, default=SENDS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.fake is not None:
        asyncio.run(_serve_fake(options.fake))
        return 0
    if options.client is not None:
        print(json.dumps(asyncio.run(_client(options.client, options.port, options.sends))))
        return 0
    print(markdown(run(sends=options.sends, rounds=options.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
