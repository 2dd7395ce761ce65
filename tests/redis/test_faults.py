"""Issue 3: what a crash, a Redis restart or a Redis outage leaves behind.

Real processes: routers from :mod:`tests.redis.router`, and a ``redis-server`` per
test where the test kills and restarts Redis itself.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.processes import RedisServer
from bot.clock import stable_id
from bot.errors import ConfigError, StoreUnavailable
from bot.models import Direction, EventKind, Message
from bot.settings import StoreSettings, default_settings
from bot.store import MemoryStore, open_store
from bot.store.redis import RedisStore
from tests.conftest import redis_server
from tests.redis.processes import Router
from tests.redis.router import sent_key
from tests.waits import PATIENCE

ADDRESS = "5511999990001"
CONVERSATION = stable_id("cnv", "telegram", ADDRESS)
HANDOFF = "Abri o chamado"
T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
#: How long a test waits for a router to get through a Redis restart.
#: How long a provider keeps retrying while Redis comes back (a hang guard).
RECOVERY_SECONDS = PATIENCE


def delivery(text: str, message_id: str) -> dict[str, Any]:
    return {
        "channel": "telegram",
        "address": ADDRESS,
        "text": text,
        "provider_message_id": message_id,
        "locale": "pt-BR",
    }


async def post_inbound(router: Router, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{router.url}/inbound", json=body) as response,
    ):
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def deliver_until_accepted(router: Router, body: dict[str, Any]) -> tuple[str, int]:
    """POST like a provider does: again after every 503. The outcome and the 503s seen."""
    refused = 0
    async with asyncio.timeout(RECOVERY_SECONDS):
        while True:
            status, answer = await post_inbound(router, body)
            if status == 200:
                return str(answer["outcome"]), refused
            assert status == 503, answer
            refused += 1
            await asyncio.sleep(0.05)  # a provider's retry back-off, bounded by the timeout


async def sent_texts(store: RedisStore) -> list[str]:
    raws = await store.redis.lrange(sent_key("telegram", ADDRESS), 0, -1)
    return [json.loads(raw)["text"] for raw in raws]


def inbound_texts(transcript: list[Message]) -> list[str]:
    return [m.text for m in transcript if m.direction is Direction.INBOUND]


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A dedicated redis-server with ``appendonly yes`` on a data dir in ``tmp_path``."""
    with redis_server(tmp_path, appendonly=True) as server:
        yield server


# -- (1) a router killed in the middle of a handoff ------------------------------------


async def test_a_router_killed_mid_handoff_still_tells_the_customer_the_ticket_number(
    redis_url: str, shared_store: RedisStore, tmp_path: Path
) -> None:
    """Issue 11 (1): the provider's retry of the message that opened the ticket finishes
    that handoff (the confirmation with the number), instead of relaying it to agents."""
    dying = Router(redis_url, tmp_path / "dying.log", "--die-after-open-ticket", "--lock-ttl", "1")
    # Only the dying router's lock must free itself quickly; the survivor keeps the
    # default lease, so a slow turn on a busy machine does not outlive its own lock.
    survivor = Router(redis_url, tmp_path / "survivor.log")
    try:
        assert await post_inbound(dying, delivery("oi", "m1")) == (200, {"outcome": "handled"})
        with pytest.raises(aiohttp.ClientError):  # the process dies under the request
            await post_inbound(dying, delivery("quero falar com um atendente", "m2"))
        assert dying.wait(timeout=PATIENCE) == -signal.SIGKILL

        # the half-done handoff: a queued ticket the conversation does not point to
        (ticket,) = await shared_store.queue("N1")
        assert ticket.conversation_id == CONVERSATION
        stored = await shared_store.get_conversation(CONVERSATION)
        assert stored is not None and stored.ticket_id is None
        seen_before = await sent_texts(shared_store)
        assert not any(HANDOFF in text for text in seen_before)

        # the provider retries the killed delivery on the survivor: the same handoff ends
        outcome, _ = await deliver_until_accepted(
            survivor, delivery("quero falar com um atendente", "m2")
        )
        assert outcome == "handled"
        sent = await sent_texts(shared_store)
        confirmations = [text for text in sent[len(seen_before) :] if HANDOFF in text]
        assert len(confirmations) == 1 and ticket.label in confirmations[0]
        # and the customer's next message goes to the ticket, not to the bot
        outcome, _ = await deliver_until_accepted(survivor, delivery("alguém aí?", "m3"))
        assert outcome == "relayed"

        assert await sent_texts(shared_store) == sent, "the bot answered a relayed message"
        assert await shared_store.queue("N1") == [ticket], "one ticket, not two"
        owned = await shared_store.get_conversation(CONVERSATION)
        assert owned is not None
        assert (owned.ticket_id, owned.last_ticket_id) == (ticket.id, ticket.id)
        assert await shared_store.open_ticket_of(CONVERSATION) == ticket
        handoffs = [
            e
            for e in await shared_store.events(conversation_id=CONVERSATION)
            if e.kind == EventKind.HANDOFF
        ]
        assert [e.data["number"] for e in handoffs] == [ticket.number]
    finally:
        dying.stop()
        survivor.stop()


# -- (1b) a router killed with replies queued: another process delivers them ----------


async def test_replies_queued_in_a_killed_router_are_delivered_by_a_survivor(
    redis_url: str, shared_store: RedisStore, tmp_path: Path
) -> None:
    """Issue 11 (2): the provider is down for the first router, which answers 200 (the
    replies are stored) and is SIGKILLed; nobody restarts it. The surviving router
    delivers every stored reply, in order, once the dead router's lease expires."""
    stuck = Router(redis_url, tmp_path / "stuck.log", "--provider-down", "--outbox-lease", "1")
    survivor = Router(redis_url, tmp_path / "survivor.log", "--outbox-lease", "1")
    customers = [f"55119888800{n:02d}" for n in range(10)]
    try:
        for address in customers:
            body = {
                **delivery("qual o horário de atendimento?", f"q-{address}"),
                "address": address,
            }
            assert await post_inbound(stuck, body) == (200, {"outcome": "handled"})
        stuck.process.kill()
        assert stuck.wait(timeout=10) == -signal.SIGKILL

        async def delivered(address: str) -> list[str]:
            raws = await shared_store.redis.lrange(sent_key("telegram", address), 0, -1)
            return [json.loads(raw)["text"] for raw in raws]

        async with asyncio.timeout(120):  # the lease (1 s) and a sweep: a few seconds
            while True:
                outstanding = [
                    a
                    for a in customers
                    if await shared_store.outbox(stable_id("cnv", "telegram", a))
                ]
                if not outstanding:
                    break
                await asyncio.sleep(0.1)
        for address in customers:
            conversation_id = stable_id("cnv", "telegram", address)
            transcript = await shared_store.transcript(conversation_id)
            bot_lines = [m.text for m in transcript if m.direction is Direction.BOT]
            assert bot_lines and await delivered(address) == bot_lines, address
            failures = [
                e
                for e in await shared_store.events(conversation_id=conversation_id)
                if e.kind == EventKind.DELIVERY_FAILED
            ]
            assert failures == []
    finally:
        stuck.stop()
        survivor.stop()


# -- (2) an accepted message survives a Redis crash (append-only file) -------------------


async def test_an_accepted_message_survives_a_redis_crash(
    aof_redis: RedisServer, tmp_path: Path
) -> None:
    router = Router(aof_redis.url, tmp_path / "router.log")
    try:
        assert await post_inbound(router, delivery("oi", "m1")) == (200, {"outcome": "handled"})
        aof_redis.kill()  # SIGKILL: no shutdown save
        aof_redis.start()

        store = RedisStore.from_url(aof_redis.url)
        try:
            transcript = await store.transcript(CONVERSATION)
            assert inbound_texts(transcript) == ["oi"]
            assert any(m.direction is Direction.BOT for m in transcript)
            assert await store.turn_seen(CONVERSATION, "in:telegram:m1")
        finally:
            await store.close()
        # the same router carries on once Redis is back; the redelivery is a duplicate
        outcome, _ = await deliver_until_accepted(router, delivery("oi", "m1"))
        assert outcome == "duplicate"
    finally:
        router.stop()


# -- (3) Redis unreachable at start-up --------------------------------------------------


async def test_unreachable_redis_at_start_up_stops_with_a_clear_message(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/no-such.sock"
    store = RedisStore.from_url(missing)
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()

    settings = replace(default_settings(), store=StoreSettings("redis", url=missing))
    with pytest.raises(ConfigError) as refused:
        await open_store(settings)
    assert refused.value.place == "store.url"
    assert f"cannot reach Redis at {missing}: " in refused.value.reason


async def test_start_up_error_masks_the_redis_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALA_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    settings = replace(default_settings(), store=StoreSettings("redis", url_env="ESCALA_REDIS_URL"))
    with pytest.raises(ConfigError) as refused:
        await open_store(settings)
    assert refused.value.place == "store.url_env"
    assert "redis://:***@127.0.0.1:1/0" in str(refused.value)
    assert "s3cret" not in str(refused.value)


async def test_open_store_builds_the_configured_backend(redis_url: str) -> None:
    bounds = {"transcript_hot_messages": 2, "transcript_archive_messages": 1}
    memory = await open_store(replace(default_settings(), store=StoreSettings(**bounds)))  # type: ignore[arg-type]
    assert isinstance(memory, MemoryStore)
    redis_settings = StoreSettings("redis", url=redis_url, **bounds)  # type: ignore[arg-type]
    store = await open_store(replace(default_settings(), store=redis_settings))
    try:
        assert isinstance(store, RedisStore)
        await store.redis.flushdb()
        for backend in (memory, store):
            for n in range(5):
                await backend.append_message(
                    Message(
                        f"msg_{n}", "cnv_1", Direction.INBOUND, str(n), T0 + timedelta(seconds=n)
                    )
                )
            assert [m.text for m in await backend.transcript("cnv_1")] == ["2", "3", "4"]
    finally:
        await store.close()


# -- (4) Redis goes away while serving ---------------------------------------------------


async def test_redis_outage_is_503_and_the_retry_is_processed_exactly_once(
    aof_redis: RedisServer, tmp_path: Path
) -> None:
    router = Router(aof_redis.url, tmp_path / "router.log")
    try:
        assert await post_inbound(router, delivery("oi", "m1")) == (200, {"outcome": "handled"})
        aof_redis.kill()

        status, answer = await post_inbound(router, delivery("como troco minha senha?", "m2"))
        assert status == 503 and "unreachable" in answer["error"]

        aof_redis.start()
        store = RedisStore.from_url(aof_redis.url)
        try:
            # nothing of the refused delivery was written
            assert inbound_texts(await store.transcript(CONVERSATION)) == ["oi"]
            sent_before = await sent_texts(store)

            outcome, _ = await deliver_until_accepted(
                router, delivery("como troco minha senha?", "m2")
            )
            assert outcome == "handled"
            again, _ = await deliver_until_accepted(
                router, delivery("como troco minha senha?", "m2")
            )
            assert again == "duplicate"

            transcript = await store.transcript(CONVERSATION)
            assert inbound_texts(transcript) == ["oi", "como troco minha senha?"]
            sent = await sent_texts(store)
            bot_lines = [m.text for m in transcript if m.direction is Direction.BOT]
            assert sent == bot_lines and len(sent) > len(sent_before)
            arrivals = await store.events(conversation_id=CONVERSATION)
            assert sum(e.kind == EventKind.MESSAGE_IN for e in arrivals) == 2
        finally:
            await store.close()
    finally:
        router.stop()
