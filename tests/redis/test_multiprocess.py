"""Issue 3: two router processes on one Redis, every message delivered to both.

1,000 customers write three messages each (a greeting, a KB question, "talk to a
human"); conversations interleave, one conversation's messages go one after the
other, and every message is POSTed to *both* routers at once, as a provider retrying
on another node would. Each message must be processed exactly once, in order, and
each conversation must land in exactly one queue. Then 100 concurrent claims of one
ticket, split across the two processes, must give exactly one winner.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import stable_id
from bot.models import Direction
from bot.store.redis import RedisStore
from tests.redis.processes import Router, post
from tests.redis.router import sent_key

CONVERSATIONS = 1000
SCRIPT = ("oi", "como troco minha senha?", "quero falar com um atendente")
CONCURRENCY = 32
CLAIMS = 100
HANDOFF = "Abri o chamado"


@pytest.fixture(params=["single", "cluster"])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool, int]:
    """One redis-server, or the 3-master Redis Cluster (issue 18), and how many
    customers (fewer on the cluster: the same journey, a shorter run)."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster_url"), True, 200
    return request.getfixturevalue("redis_url"), False, CONVERSATIONS


@pytest.fixture
async def shared_store(backend: tuple[str, bool, int]) -> AsyncIterator[RedisStore]:
    url, cluster, _ = backend
    store = RedisStore.from_url(url, max_connections=256, cluster=cluster)
    await store.redis.flushdb()
    yield store
    await store.close()


@pytest.fixture
def routers(
    backend: tuple[str, bool, int], shared_store: RedisStore, tmp_path: Path
) -> Iterator[list[Router]]:
    url, cluster, _ = backend
    started: list[Router] = []
    try:
        for n in range(2):
            extra = ("--cluster",) if cluster else ()
            started.append(Router(url, tmp_path / f"router{n}.log", *extra))
        yield started
    finally:
        for router in started:
            router.stop()


async def test_two_routers_process_every_message_exactly_once_in_order(
    routers: list[Router], shared_store: RedisStore, backend: tuple[str, bool, int]
) -> None:
    conversations = backend[2]
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes: dict[str, list[str]] = {}
    connector = aiohttp.TCPConnector(limit=2 * CONCURRENCY)
    started = time.monotonic()

    async def customer(http: aiohttp.ClientSession, n: int) -> None:
        address = f"55{n:08d}"
        for step, text in enumerate(SCRIPT):
            body = {
                "channel": "telegram",
                "address": address,
                "text": text,
                "provider_message_id": f"{address}-{step}",
                "locale": "pt-BR",
            }
            async with limit:  # both deliveries returned before the next message
                answers = await asyncio.gather(
                    *(post(http, f"{r.url}/inbound", body) for r in routers)
                )
            outcomes[body["provider_message_id"]] = sorted(a["outcome"] for a in answers)

    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(customer(http, n) for n in range(conversations)))
    fed = time.monotonic() - started

    # every message: one router processed it, the other saw a duplicate
    assert len(outcomes) == conversations * len(SCRIPT)
    assert Counter(tuple(o) for o in outcomes.values()) == {
        ("duplicate", "handled"): conversations * len(SCRIPT)
    }

    addresses = [f"55{n:08d}" for n in range(conversations)]
    conversation_ids = {stable_id("cnv", "telegram", a): a for a in addresses}
    transcripts = await asyncio.gather(*(shared_store.transcript(c) for c in conversation_ids))
    for conversation_id, transcript in zip(conversation_ids, transcripts, strict=True):
        inbound = [m.text for m in transcript if m.direction is Direction.INBOUND]
        assert inbound == list(SCRIPT), conversation_id

    # every handoff in exactly one queue, one ticket per conversation
    waiting = [t for tier in ("N1", "N2", "N3") for t in await shared_store.queue(tier)]
    assert len(waiting) == conversations
    assert {t.conversation_id for t in waiting} == set(conversation_ids)
    for ticket in waiting:
        assert await shared_store.open_ticket_of(ticket.conversation_id) == ticket

    # what each customer saw: exactly one ticket confirmation, and it came last
    for address in addresses:
        sent = [json.loads(r)["text"] for r in await shared_store.redis.lrange(
            sent_key("telegram", address), 0, -1
        )]  # fmt: skip
        assert sum(HANDOFF in text for text in sent) == 1, (address, sent)
        assert HANDOFF in sent[-1], (address, sent)

    # 100 concurrent claims of one ticket, half on each process: one winner
    contested = min(waiting, key=lambda t: t.number)
    async with aiohttp.ClientSession() as http:
        claims = await asyncio.gather(
            *(
                post(
                    http,
                    f"{routers[n % 2].url}/claim",
                    {"agent": ("ana", "bruno")[n % 2], "number": contested.number},
                )
                for n in range(CLAIMS)
            )
        )
    assert sum(c["ok"] for c in claims) == 1, claims
    claimed = await shared_store.get_ticket(contested.id)
    assert claimed is not None and claimed.assignee in ("ana", "bruno")
    assert all(r.returncode is None for r in routers), "a router died"
    print(f"\n{conversations * len(SCRIPT) * 2} deliveries fed in {fed:.1f}s")
