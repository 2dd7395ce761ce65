"""Issue 11 (5): races at the desk, across two router processes on one Redis.

* An N1 agent's claim racing another agent's escalation of the same waiting ticket
  to N2: the N1 agent must never end up owning an N2 ticket (the claim re-checks the
  tier in its store script).
* An owner's reply racing their own escalation: the reply is counted in the old tier
  or refused (and not sent), never as the new tier's first response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import stable_id
from bot.models import EventKind
from bot.sla import waiting_for_first_response
from bot.store.redis import RedisStore
from tests.redis.processes import Router, post
from tests.redis.router import sent_key

ROUNDS = 24
REPLY = "Olá, estou verificando"


@pytest.fixture
def routers(redis_url: str, shared_store: RedisStore, tmp_path: Path) -> Iterator[list[Router]]:
    started: list[Router] = []
    try:
        for n in range(2):
            started.append(Router(redis_url, tmp_path / f"router{n}.log"))
        yield started
    finally:
        for router in started:
            router.stop()


async def open_tickets(
    http: aiohttp.ClientSession, router: Router, store: RedisStore, prefix: str
) -> list[tuple[str, int]]:
    """One handed-off customer per round: (address, ticket number)."""
    opened = []
    for n in range(ROUNDS):
        address = f"{prefix}{n:04d}"
        body = {
            "channel": "telegram",
            "address": address,
            "text": "quero falar com um atendente",
            "provider_message_id": f"{address}-h",
            "locale": "pt-BR",
        }
        await post(http, f"{router.url}/inbound", body)
        ticket = await store.open_ticket_of(stable_id("cnv", "telegram", address))
        assert ticket is not None and ticket.tier == "N1"
        opened.append((address, ticket.number))
    return opened


async def test_a_claim_racing_an_escalation_never_gives_an_n1_agent_an_n2_ticket(
    routers: list[Router], shared_store: RedisStore
) -> None:
    async with aiohttp.ClientSession() as http:
        opened = await open_tickets(http, routers[0], shared_store, "5521")
        for _, number in opened:
            claim = {"action": "claim", "agent": "ana", "number": number}  # ana works N1
            escalate = {
                "action": "escalate",
                "agent": "bruno",  # bruno works N1 and N2: he may escalate a waiting N1 ticket
                "number": number,
                "to_tier": "N2",
                "reason": "precisa de especialista",
            }
            claimed, escalated = await asyncio.gather(
                post(http, f"{routers[0].url}/desk", claim),
                post(http, f"{routers[1].url}/desk", escalate),
            )
            ticket = await shared_store.find_ticket(number)
            assert ticket is not None
            assert not (claimed["ok"] and escalated["ok"]), (claimed, escalated)
            if ticket.assignee == "ana":
                assert ticket.tier == "N1", f"ana (N1 only) owns {ticket.label} in {ticket.tier}"
                assert claimed["ok"] and not escalated["ok"]
                # make room under ana's max of open tickets for the next rounds
                assert (await post(http, f"{routers[0].url}/desk", {
                    "action": "resolve", "agent": "ana", "number": number
                }))["ok"]  # fmt: skip
            else:
                assert ticket.tier == "N2" and escalated["ok"] and not claimed["ok"]


async def test_an_owners_reply_racing_their_escalation_is_never_the_new_tiers_response(
    routers: list[Router], shared_store: RedisStore
) -> None:
    async with aiohttp.ClientSession() as http:
        opened = await open_tickets(http, routers[0], shared_store, "5531")
        for address, number in opened:
            claim = {"action": "claim", "agent": "bruno", "number": number}
            assert (await post(http, f"{routers[0].url}/desk", claim))["ok"]
            reply = {"action": "reply", "agent": "bruno", "number": number, "text": REPLY}
            escalate = {
                "action": "escalate",
                "agent": "bruno",
                "number": number,
                "to_tier": "N3",
                "reason": "falha no sistema",
            }
            replied, escalated = await asyncio.gather(
                post(http, f"{routers[0].url}/desk", reply),
                post(http, f"{routers[1].url}/desk", escalate),
            )
            assert escalated["ok"]
            ticket = await shared_store.find_ticket(number)
            assert ticket is not None and ticket.tier == "N3"
            assert waiting_for_first_response(ticket, "N3"), (
                f"{ticket.label}: the N1/N2 reply was counted as N3's first response"
            )
            raws = await shared_store.redis.lrange(sent_key("telegram", address), 0, -1)
            sent = [json.loads(raw)["text"] for raw in raws]
            delivered = any(REPLY in text for text in sent)
            if replied["ok"]:
                assert ticket.first_response_at is not None
                # Counted in the old tier: the KPIs' reply event names the tier the
                # store saw it in (the two processes' clocks cannot order it).
                events = await shared_store.events(ticket_id=ticket.id)
                replies = [e for e in events if e.kind == EventKind.AGENT_REPLY]
                assert [e.data["tier"] for e in replies] == ["N1"], "counted in N3"
            else:
                assert not delivered, "a refused reply was sent anyway"
                # refused at the desk's first look, or by the store's check
                assert any(
                    why in replied["message"] for why in ("no longer yours", "claim it first")
                ), replied
            # delivery is in the background: a counted reply reaches the customer
            if replied["ok"]:
                async with asyncio.timeout(60):
                    while not delivered:
                        await asyncio.sleep(0.05)
                        raws = await shared_store.redis.lrange(sent_key("telegram", address), 0, -1)
                        delivered = any(REPLY in json.loads(r)["text"] for r in raws)
