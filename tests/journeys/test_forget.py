"""Issue 11 (8): ``escala forget`` erases a customer on both backends; on Redis no
key (nor timer, nor event in the shared log) of the customer remains."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.clock import stable_id
from bot.models import Identity
from bot.store import Store
from bot.store.base import ERASED
from bot.store.redis import RedisStore
from tests.journeys.harness import Journey

ROOT = Path(__file__).resolve().parents[2]
GONE = "5511990007777"  # the customer who asks to be forgotten
STAYS = "5511990008888"


async def customers_with_history(store: Store) -> Journey:
    journey = Journey(store=store)
    for address in (GONE, STAYS):
        await journey.say("oi", address=address)
        await journey.say("qual o horário de atendimento?", address=address)
        await journey.say("quero falar com um atendente, meu CPF é 123", address=address)
    ticket = await store.open_ticket_of(stable_id("cnv", "telegram", GONE))
    assert ticket is not None
    await journey.desk.claim("bruno", ticket.number)
    await journey.desk.reply("bruno", ticket.number, "Olá, vou ver isso")
    return journey


async def test_forget_erases_the_customer_and_nobody_else(store: Store) -> None:
    await customers_with_history(store)
    gone = stable_id("cnv", "telegram", GONE)
    stays = stable_id("cnv", "telegram", STAYS)
    kept_transcript = await store.transcript(stays)
    contact = await store.find_contact(Identity("telegram", GONE))
    assert contact is not None

    erased = await store.forget_contact(contact.id)

    assert (erased.conversations, erased.tickets) == (1, 1)
    assert await store.get_contact(contact.id) is None
    assert await store.find_contact(Identity("telegram", GONE)) is None
    assert await store.get_conversation(gone) is None
    assert await store.transcript(gone) == []
    assert await store.events(conversation_id=gone) == []
    assert await store.open_ticket_of(gone) is None
    assert await store.assigned("bruno") == []
    assert await store.outbox(gone) == []
    everything = await store.events()
    assert not [e for e in everything if e.conversation_id == gone]
    tombstones = [e for e in everything if e.conversation_id == ERASED]
    assert tombstones and all("CPF" not in json.dumps(dict(e.data)) for e in tombstones)
    # the other customer is untouched
    assert await store.transcript(stays) == kept_transcript
    assert await store.open_ticket_of(stays) is not None
    assert await store.find_contact(Identity("telegram", STAYS)) is not None
    again = await store.forget_contact(contact.id)
    assert not again.found


async def test_no_redis_key_of_a_forgotten_customer_remains(redis_url: str, tmp_path: Path) -> None:
    store = RedisStore.from_url(redis_url)
    await store.redis.flushdb()
    try:
        await customers_with_history(store)
        gone = stable_id("cnv", "telegram", GONE)
        contact = await store.find_contact(Identity("telegram", GONE))
        assert contact is not None
        ticket = await store.open_ticket_of(gone)
        assert ticket is not None
        marks = [contact.id, gone, GONE, ticket.id]
        config = tmp_path / "escala.toml"
        config.write_text(f'[store]\nbackend = "redis"\nurl = "{redis_url}"\n')
        forget = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "forget", "--config", str(config),
             "--address", f"telegram:{GONE}"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert forget.returncode == 0, forget.stderr
        assert json.loads(forget.stdout) == {"erased": True, "conversations": 1, "tickets": 1}

        keys = [key.decode() async for key in store.redis.scan_iter(count=1000)]
        assert keys, "the other customer's keys are there"
        assert [k for k in keys if any(mark in k for mark in marks)] == []
        for key in keys:  # nor inside any value: lists, hashes, sorted sets, strings
            kind = _text(await store.redis.type(key))
            values: list[Any]
            if kind == "list":
                values = await store.redis.lrange(key, 0, -1)
            elif kind == "hash":
                found = await store.redis.hgetall(key)
                values = [*found.keys(), *found.values()]
            elif kind == "zset":
                values = await store.redis.zrange(key, 0, -1)
            elif kind == "set":
                values = list(await store.redis.smembers(key))
            elif kind == "stream":
                values = [fields for _, fields in await store.redis.xrange(key) or []]
            else:
                values = [await store.redis.get(key) or b""]
            for value in values:
                text = _text(value)
                assert not any(mark in text for mark in marks), (key, text)
        erasures = [e for e in await store.events() if e.kind == "contact.erased"]
        assert [dict(e.data) for e in erasures] == [{"conversations": 1, "tickets": 1}]

        missing = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "forget", "--config", str(config),
             "--contact", "ct_nobody"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert missing.returncode == 1 and json.loads(missing.stdout) == {"erased": False}
    finally:
        await store.close()


def _text(value: Any) -> str:
    if isinstance(value, dict):  # a stream entry's fields
        return " ".join(_text(v) for pair in value.items() for v in pair)
    return value.decode() if isinstance(value, bytes) else str(value)
