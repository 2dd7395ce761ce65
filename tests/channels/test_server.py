"""The server around the channels: healthz, body limit, 503 on store failure, shutdown."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.errors import ConfigError, StoreUnavailable
from bot.models import Identity, OutboundMessage
from bot.server import GC_YOUNG_THRESHOLD, build_plugins, parse_server, run_server
from bot.settings import default_settings, load_settings
from bot.store import Lease, MemoryStore
from bot.store.base import TurnStart
from channels.telegram.config import parse_telegram
from channels.twilio.config import parse_twilio
from tests.channels.harness import PUBLIC, SMS_FROM, Harness, message


class FlakyStore(MemoryStore):
    """A memory store that can be told it is unreachable."""

    down = False

    async def try_lock(self, conversation_id: str, ttl_seconds: float) -> Lease | None:
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().try_lock(conversation_id, ttl_seconds)

    async def begin_turn(
        self,
        conversation_id: str,
        seen_key: str,
        identity: Identity,
        lock_ttl_seconds: float,
        recent: int = 12,
    ) -> TurnStart | None:
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().begin_turn(
            conversation_id, seen_key, identity, lock_ttl_seconds, recent
        )

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")


@pytest.fixture
async def flaky() -> AsyncIterator[Harness]:
    h = Harness(FlakyStore())
    await h.start()
    yield h
    await h.close()


async def test_healthz_follows_the_store(flaky: Harness) -> None:
    response = await flaky.http.get("/healthz")
    assert response.status == 200 and await response.text() == "ok\n"
    assert isinstance(flaky.store, FlakyStore)
    flaky.store.down = True
    assert (await flaky.http.get("/healthz")).status == 503


async def test_store_down_answers_503_so_the_provider_retries(flaky: Harness) -> None:
    assert isinstance(flaky.store, FlakyStore)
    flaky.store.down = True
    response = await flaky.telegram_text("oi", update_id=77)
    assert response.status == 503
    assert "Traceback" not in await response.text()
    response = await flaky.sms_text("oi", sid="SMretry")
    assert response.status == 503
    # The retry after the store is back is processed, not dropped as a duplicate.
    flaky.store.down = False
    assert (await flaky.telegram_text("oi", update_id=77)).status == 200
    assert flaky.fake_telegram.texts(4242)
    assert (await flaky.sms_text("oi", sid="SMretry")).status == 200
    assert flaky.fake_twilio.texts("+5511912340000")


async def test_body_over_the_limit_is_413(harness: Harness) -> None:
    big = b'{"update_id": 1, "pad": "' + b"x" * (70 * 1024) + b'"}'
    assert (await harness.telegram_post(big)).status == 413
    fields = {"MessageSid": "SM1", "From": "+5511912340000", "Body": "x" * (70 * 1024)}
    assert (await harness.twilio_post("/twilio/sms", fields)).status == 413


async def test_only_channel_routes_and_healthz_are_served(harness: Harness) -> None:
    assert (await harness.http.get("/")).status == 404
    assert (await harness.http.get("/telegram/webhook")).status == 405
    assert (await harness.http.post("/admin")).status == 404


async def test_shutdown_flushes_outbound_retries() -> None:
    h = Harness()
    await h.start()
    from tests.channels.fakes import Failure

    h.fake_telegram.fail_next(Failure(500), Failure(500))
    await h.telegram.sender.send("4242", OutboundMessage("still delivered"), "pt-BR")
    await h.http.close()  # the app's cleanup stops the plugins: they flush first
    assert h.fake_telegram.texts(4242) == ["still delivered"]
    await h.fake_telegram.close()
    await h.fake_twilio.close()


async def test_shutdown_stops_within_its_timeout_and_keeps_unsent_replies() -> None:
    """A provider that hangs cannot hold a stopping server past ``[server]
    shutdown_timeout_seconds``: the reply it never answered stays in the outbox, for
    the next process (the flush used to wait 30 s of its own, whatever the setting)."""
    h = Harness(shutdown_timeout_seconds=1.0)
    await h.start()
    h.fake_telegram.answering.clear()
    update = {
        "update_id": 5,
        "message": message(4242, "pt-br", text="Qual o horário de atendimento?"),
    }
    assert (await h.telegram_post(update)).status == 200  # stored, the answer queued
    async with asyncio.timeout(60):  # the answer reached the provider, which hangs
        await h.fake_telegram.holding.wait()
    async with asyncio.timeout(20):  # 1 s asked; without the bound, 30 s
        await h.http.close()
    conversation = await h.store.find_conversation("telegram", "4242")
    assert conversation is not None
    kept = await h.store.outbox(conversation.id)
    stalled = h.fake_telegram.calls[-1].fields["text"]
    assert kept and kept[0].text == stalled and "8h" in stalled
    h.fake_telegram.answering.set()
    await h.fake_telegram.close()
    await h.fake_twilio.close()


# --- configuration ---------------------------------------------------------------------


def test_server_section_is_validated() -> None:
    config = parse_server("f.toml", {"port": 9000, "public_base_url": "https://x.example/"})
    assert config.port == 9000 and config.public_base_url == "https://x.example"
    with pytest.raises(ConfigError) as bad:
        parse_server("f.toml", {"port": 70000})
    assert bad.value.place == "server.port"
    with pytest.raises(ConfigError) as unknown:
        parse_server("f.toml", {"hots": "0.0.0.0"})
    assert unknown.value.place == "server.hots"


def test_telegram_section_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as bad:
        parse_telegram("f.toml", {"mode": "push", "token_env": "TG"}, "pt-BR")
    assert (bad.value.file, bad.value.place) == ("f.toml", "channels.telegram.mode")
    with pytest.raises(ConfigError) as secret:
        parse_telegram("f.toml", {"token_env": "TG"}, "pt-BR")
    assert secret.value.place == "channels.telegram.secret_token_env"
    monkeypatch.delenv("TG_TOKEN", raising=False)
    with pytest.raises(ConfigError) as unset:
        parse_telegram("f.toml", {"mode": "polling", "token_env": "TG_TOKEN"}, "pt-BR")
    assert "TG_TOKEN" in unset.value.reason
    monkeypatch.setenv("TG_TOKEN", "123:abc")
    config = parse_telegram("f.toml", {"mode": "polling", "token_env": "TG_TOKEN"}, "en")
    assert config.mode == "polling" and config.default_locale == "en"
    assert "123:abc" not in repr(config)


def test_twilio_section_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SID", "AC1")
    monkeypatch.setenv("TOKEN", "t0k3n")
    table = {"account_sid_env": "SID", "auth_token_env": "TOKEN", "from_number": "+15550001111"}
    with pytest.raises(ConfigError) as no_url:
        parse_twilio("f.toml", "sms", table, "pt-BR")
    assert no_url.value.place == "channels.sms.public_base_url"
    config = parse_twilio("f.toml", "whatsapp", table, "pt-BR", PUBLIC)
    assert config.from_number == "whatsapp:+15550001111"
    assert config.webhook_url == PUBLIC + "/twilio/whatsapp"
    assert "t0k3n" not in repr(config)
    with pytest.raises(ConfigError) as number:
        parse_twilio("f.toml", "sms", {**table, "from_number": "5550001111"}, "pt-BR", PUBLIC)
    assert number.value.place == "channels.sms.from_number"


async def test_build_plugins_mounts_every_enabled_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TG_SECRET", "TW_SID", "TW_TOKEN"):
        monkeypatch.setenv(name, "x1-long-enough-secret")
    monkeypatch.setenv("TG_TOKEN", "123456:TEST-token")
    config = tmp_path / "escala.toml"
    config.write_text(
        f"""
[channels.telegram]
token_env = "TG_TOKEN"
secret_token_env = "TG_SECRET"

[channels.sms]
account_sid_env = "TW_SID"
auth_token_env = "TW_TOKEN"
from_number = "{SMS_FROM}"
public_base_url = "{PUBLIC}"

[channels.whatsapp]
enabled = false
account_sid_env = "TW_SID"
auth_token_env = "TW_TOKEN"
from_number = "{SMS_FROM}"
public_base_url = "{PUBLIC}"
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    harness = Harness()
    plugins = build_plugins(settings, harness.escala)
    try:
        assert [p.name for p in plugins] == ["telegram", "sms"]
        paths = [r.path for p in plugins for r in p.routes()]
        assert paths == ["/telegram/webhook", "/twilio/sms", "/twilio/sms/status"]
    finally:
        for plugin in plugins:
            await plugin.stop()


class Recorder:
    """A plugin that records start and stop; ``refuse`` makes its start fail."""

    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name = name
        self.refuse = refuse
        self.calls: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return []

    async def start(self) -> None:
        self.calls.append("start")
        if self.refuse:
            raise ConfigError("escala.toml", "slack.app_token_env", "cannot reach Slack")

    async def stop(self) -> None:
        self.calls.append("stop")


class ClosingStore(MemoryStore):
    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_plugin_refusing_to_start_stops_the_others_and_closes_the_store() -> None:
    store = ClosingStore()
    started, refusing = Recorder("telegram"), Recorder("slack", refuse=True)

    with pytest.raises(ConfigError, match=r"slack\.app_token_env"):
        await run_server(
            default_settings(), store, host="127.0.0.1", port=0, extra_plugins=[started, refusing]
        )

    assert started.calls == ["start", "stop"]
    assert store.closed


async def test_a_serving_process_collects_young_garbage_less_often() -> None:
    """Issue 18: at CPython's default the collector took 2-6% of a server's CPU."""
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    async def ready(escala: object, base_url: str) -> None:
        seen.append(gc.get_threshold())
        os.kill(os.getpid(), signal.SIGTERM)  # run_server's own handler stops it

    try:
        await run_server(default_settings(), MemoryStore(), host="127.0.0.1", port=0, ready=ready)
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    assert seen == [(GC_YOUNG_THRESHOLD, *before[1:])]
    assert before[0] < GC_YOUNG_THRESHOLD
