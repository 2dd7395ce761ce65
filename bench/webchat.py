"""The web chat's row of the end-to-end benchmark (issue 17): messages per second over
WebSocket, closed loop, against a real ``escala serve`` subprocess on loopback.

N visitors each open a session and a socket, then send their messages one after the
other: the next once the previous turn is over (the server's ``typing off`` frame,
sent after every line of the turn). Latency: frame sent -> the first bot line for it
received. Bounded by ``max_seconds`` and ``messages_per_customer``; every process
started here is stopped here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import QUESTION, CpuMeter, _wait_healthz, percentile, spawn
from bench.processes import HOST, free_port, stop_process
from bench.progress import Progress

SECRET_ENV = "ESCALA_BENCH_WEBCHAT_SECRET"
SECRET = "bench-webchat-secret-0123456789"
CONFIG = """
[channels.webchat]
secret_env = "{secret_env}"
visitor_messages_per_minute = 100000
ip_requests_per_minute = 1000000
"""
#: A frame that does not come in this long counts the message as lost.
REPLY_TIMEOUT = 10.0


async def _visitor(
    session: aiohttp.ClientSession, url: str, number: int, messages: int, until: float,
    latencies: list[float], lost: list[int],
) -> int:  # fmt: skip
    async with session.post(
        f"{url}/webchat/session", json={"locale": "pt-BR"}, headers={"Origin": url}
    ) as response:
        token = (await response.json())["token"]
    sent = 0
    async with session.ws_connect(f"{url}/webchat/ws?token={token}", origin=url) as ws:
        while True:  # the opening replay ends with the ticket frame
            if json.loads((await ws.receive(timeout=REPLY_TIMEOUT)).data)["t"] == "ticket":
                break
        for n in range(messages):
            if time.monotonic() >= until:
                break
            start = time.monotonic()
            cid = f"bench{number:04d}x{n:06d}"
            await ws.send_str(json.dumps({"t": "msg", "cid": cid, "text": QUESTION}))
            first: float | None = None
            try:
                while True:
                    frame = json.loads((await ws.receive(timeout=REPLY_TIMEOUT)).data)
                    if frame["t"] == "m" and frame["dir"] == "bot" and first is None:
                        first = time.monotonic()
                    if frame["t"] == "typing" and frame["on"] is False:
                        break
            except (TimeoutError, TypeError):
                lost.append(n)
                break
            sent += 1
            if first is not None:
                latencies.append(first - start)
    return sent


async def run_webchat(
    *, customers: int, messages_per_customer: int, seconds: float, progress: Progress
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="escala-bench-webchat-") as tmp:
        directory = Path(tmp)
        config = directory / "escala.toml"
        config.write_text(CONFIG.format(secret_env=SECRET_ENV), encoding="utf-8")
        port = free_port()
        command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(config),
                   "--host", HOST, "--port", str(port)]  # fmt: skip
        log = directory / "webchat.log"
        process = spawn(command, log, env={**os.environ, SECRET_ENV: SECRET})
        url = f"http://{HOST}:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                await _wait_healthz(session, process, f"{url}/healthz", log)
                progress.say(f"[e2e webchat] {customers} visitors over WebSocket")
                latencies: list[float] = []
                lost: list[int] = []
                meter = CpuMeter({"server": process.pid})
                start = time.monotonic()
                sent = await asyncio.gather(
                    *(
                        _visitor(session, url, i, messages_per_customer, start + seconds,
                                 latencies, lost)
                        for i in range(customers)
                    )
                )  # fmt: skip
                elapsed = time.monotonic() - start
                cpu = meter.ms_per(sum(sent)).get("server_cpu_ms")
        finally:
            await asyncio.to_thread(stop_process, process)
    total = sum(sent)
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    return {
        "customers": customers,
        "answered": total,
        "lost": len(lost),
        "messages_per_second": round(total / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": None if p50 is None else round(1000 * p50, 2),
        "p99_ms": None if p99 is None else round(1000 * p99, 2),
        "server_cpu_ms_per_message": cpu,
    }


def markdown(result: dict[str, Any]) -> str:
    return (
        "### Web chat throughput (`escala serve`, WebSocket on loopback, memory store)\n\n"
        "| visitors | msg/s (closed loop) | p50 | p99 | server CPU / msg | lost |\n"
        "|---|---|---|---|---|---|\n"
        f"| {result['customers']} | {result['messages_per_second']} | {result['p50_ms']} ms "
        f"| {result['p99_ms']} ms | {result['server_cpu_ms_per_message']} ms | {result['lost']} |\n"
    )


if __name__ == "__main__":
    print(markdown(asyncio.run(run_webchat(
        customers=50, messages_per_customer=400, seconds=10.0, progress=Progress()
    ))))  # fmt: skip
