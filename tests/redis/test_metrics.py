"""Issue 14: ``/metrics`` of two real ``escala serve`` processes on one Redis after a
scripted journey. Per-process counters add up to the journey, desk gauges agree
between the processes, and the exposition parses with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.e2e import _wait_healthz, spawn, update
from bench.processes import free_port, stop_process
from bot.app import build
from bot.models import Availability
from bot.settings import default_settings
from bot.store.redis import RedisStore
from tests.channels.fakes import FakeTelegram
from tests.waits import PATIENCE, POLL_SECONDS

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:METRICS-token"
SECRET = "metrics-secret-token"
SCRAPE_TOKEN = "scrape-me-0123456789"
WEBHOOK = "/telegram/webhook"
CONFIG = """\
[store]
backend = "redis"
url = "{redis_url}"

[channels.telegram]
mode = "webhook"
token_env = "ESCALA_TEST_TG_TOKEN"
secret_token_env = "ESCALA_TEST_TG_SECRET"
api_base = "{api}"

[metrics]
token_env = "ESCALA_TEST_SCRAPE_TOKEN"
{metrics_port}

[logging]
format = "json"
"""
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@asynccontextmanager
async def serve(
    tmp_path: Path, name: str, redis_url: str, api: str, http: aiohttp.ClientSession,
    metrics_port: int | None = None,
) -> AsyncIterator[str]:  # fmt: skip
    port = free_port()
    config = tmp_path / f"{name}.toml"
    config.write_text(
        CONFIG.format(
            redis_url=redis_url,
            api=api,
            metrics_port=f"port = {metrics_port}" if metrics_port else "",
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "ESCALA_TEST_TG_TOKEN": TOKEN,
        "ESCALA_TEST_TG_SECRET": SECRET,
        "ESCALA_TEST_SCRAPE_TOKEN": SCRAPE_TOKEN,
    }
    log = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "bot.cli", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    process = spawn(command, log, env=env)
    try:
        await _wait_healthz(http, process, f"http://127.0.0.1:{port}/healthz", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(stop_process, process)
    assert process.returncode == 0, log.read_text()


async def scrape(http: aiohttp.ClientSession, url: str) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        body = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):  # the exposition must parse
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return body, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every sample whose labels include ``labels``."""
    return sum(
        value
        for (sample, found), value in samples.items()
        if sample == name and set(labels.items()) <= set(found)
    )


async def post(http: aiohttp.ClientSession, base: str, body: bytes, secret: str = SECRET) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
    async with http.post(base + WEBHOOK, data=body, headers=headers) as response:
        return response.status


async def test_two_processes_add_up_to_the_journey_and_agree_on_the_desk(
    redis_url: str, tmp_path: Path
) -> None:
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    fake = FakeTelegram()
    await fake.start_fake()
    metrics_port = free_port()
    try:
        async with (
            aiohttp.ClientSession() as http,
            serve(tmp_path, "a", redis_url, fake.url, http) as a,
            serve(tmp_path, "b", redis_url, fake.url, http, metrics_port) as b,
        ):
            a_metrics, b_metrics = f"{a}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"
            # The journey: small talk on A, a KB answer on B, a handoff on A and its
            # redelivery on B (a duplicate), and a forged request on A.
            assert await post(http, a, update(1, 111, "oi")) == 200
            assert (
                await post(http, b, update(2, 111, "Qual o horário de atendimento de vocês?"))
                == 200
            )
            assert await post(http, a, update(3, 222, "quero falar com um atendente")) == 200
            assert await post(http, b, update(3, 222, "quero falar com um atendente")) == 200
            assert await post(http, a, update(4, 333, "oi"), secret="forged") == 403

            # Replies are queued: wait until both processes counted every call the fake saw.
            deadline = time.monotonic() + PATIENCE
            while True:
                (_, sa), (_, sb) = await scrape(http, a_metrics), await scrape(http, b_metrics)
                sent = len(fake.texts())
                calls = sum(
                    total(s, "escala_provider_send_seconds_count", channel="telegram", result="ok")
                    for s in (sa, sb)
                )
                handoff = any("#" in text for text in fake.texts(222))
                if handoff and calls == sent and sent >= 4:
                    break
                assert time.monotonic() < deadline, f"sent {sent}, counted {calls}"
                await asyncio.sleep(POLL_SECONDS)  # polling real processes, bounded above

            def both(name: str, **labels: str) -> float:
                return total(sa, name, **labels) + total(sb, name, **labels)

            for outcome, count in (
                ("small_talk", 1), ("answered", 1), ("handed_off", 1), ("duplicate", 1),
            ):  # fmt: skip
                assert (
                    both("escala_messages_in_total", channel="telegram", outcome=outcome) == count
                )
                assert both("escala_turn_seconds_count", channel="telegram") == 4
            assert both("escala_messages_in_total") == 4
            assert total(sa, "escala_messages_in_total", outcome="duplicate") == 0  # B had it
            assert both("escala_tickets_opened_total", tier="N1") == 1
            assert both("escala_tickets_opened_total") == 1
            assert both("escala_kb_outcomes_total", outcome="answered") == 1
            assert both("escala_events_total", kind="message.in") == 3
            assert both("escala_events_total", kind="ticket.opened") == 1
            assert total(sa, "escala_http_responses_total", route=WEBHOOK, status="200") == 2
            assert total(sb, "escala_http_responses_total", route=WEBHOOK, status="200") == 2
            assert total(sa, "escala_http_responses_total", route=WEBHOOK, status="403") == 1
            assert total(sa, "escala_redis_operation_seconds_count", operation="begin_turn") == 2
            assert both("escala_redis_errors_total") == 0
            assert both("escala_delivery_failures_total") == 0

            # The desk, as each process reads it from the store.
            for samples in (sa, sb):
                assert total(samples, "escala_queue_depth", tier="N1") == 1
                assert total(samples, "escala_open_tickets", tier="N1", state="queued") == 1
                assert total(samples, "escala_agents_busy") == 0
                assert total(samples, "escala_event_stream_length") > 0
            desk = build(default_settings(), store=store).desk
            ticket = (await store.queue("N1"))[0]
            assert (await desk.claim("ana", ticket.number)).ok
            (body_a, sa), (body_b, sb) = (
                await scrape(http, a_metrics),
                await scrape(http, b_metrics),
            )
            for samples in (sa, sb):
                assert total(samples, "escala_queue_depth", tier="N1") == 0
                assert total(samples, "escala_open_tickets", tier="N1", state="assigned") == 1
                assert total(samples, "escala_agent_open_tickets", agent="ana") == 1
                assert total(samples, "escala_agents_busy") == 1
            # Agents online: what each said, read from the store by either process.
            agents = len(desk.agents)
            assert (await desk.set_availability("ana", Availability.AWAY)).ok
            for samples in (
                (await scrape(http, a_metrics))[1],
                (await scrape(http, b_metrics))[1],
            ):
                assert total(samples, "escala_agents", availability="away") == 1
                assert total(samples, "escala_agents", availability="online") == agents - 1
                assert total(samples, "escala_agents", availability="offline") == 0
            desk_lines = [
                [
                    line
                    for line in body.splitlines()
                    if line.startswith(("escala_queue", "escala_open", "escala_agent"))
                ]
                for body in (body_a, body_b)
            ]
            assert desk_lines[0] == desk_lines[1]

            # No customer data in any label: no chat id, no text.
            customer_data = ("111", "222", "333", "atendente", "horário", "oi")
            for samples in (sa, sb):
                for _, labels in samples:
                    for _, value in labels:
                        assert not any(value == d or d in value.split() for d in customer_data)
                        assert "111" not in value and "222" not in value

            # Guarded: a token is needed; B serves it on its own port only.
            async with http.get(a_metrics) as response:
                assert response.status == 401
            async with http.get(f"{b}/metrics") as response:
                assert response.status == 404
    finally:
        await fake.close()
        await store.close()
