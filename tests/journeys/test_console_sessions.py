"""`escala chat` on a shared store (Redis) is run again and again by the same person."""

from __future__ import annotations

import io
from dataclasses import replace

from bot.app import build
from bot.models import Agent, Role
from bot.settings import default_settings
from bot.store import MemoryStore, Store
from channels.console import Console


async def test_a_second_chat_session_on_the_same_store_is_answered(store: Store) -> None:
    """Each run numbers its messages from 1: the ids must still differ between runs,
    or the second run's messages are dropped as provider retries of the first's."""
    settings = default_settings()
    for run in (1, 2):
        out = io.StringIO()
        console = Console(build(settings, store=store).edge, out, "pt-BR", "ana", echo=False)
        await console.customer("qual o horário de atendimento?")
        assert "Atendemos de segunda a sexta" in out.getvalue(), f"run {run}: {out.getvalue()!r}"


async def test_console_availability_and_routing() -> None:
    """Issue 13 from ``escala chat``: ``/agent away|online``, ``/agent who`` shows it, and
    a router routes with ``/agent route``."""
    base = default_settings()
    agents = (*base.agents, Agent("rita", "Rita", ("N1",), role=Role.ROUTER))
    escala = build(replace(base, agents=agents), store=MemoryStore())
    out = io.StringIO()
    console = Console(escala.edge, out, "pt-BR", "ana", echo=False)
    await console.agent_command("away")
    await console.agent_command("who")
    await console.customer("quero falar com um atendente")
    await console.agent_command("as rita")
    await console.agent_command("claim")
    await console.agent_command("route N2 priority=high skills=setup")
    await console.agent_command("route 1001 N9")
    lines = out.getvalue().splitlines()
    assert "[desk] Ana is away" in lines
    assert "[desk] ana: Ana, tiers N1, skills billing, resolver, away (you)" in lines
    assert "[desk] Rita routes tickets (route them on), and does not own them in N1" in lines
    assert "[desk] #1001 routed: N1 → N2; priority high; skills setup" in lines
    assert any(
        line.startswith("bot> Seu chamado #1001 foi encaminhado para a equipe N2") for line in lines
    )
    assert lines[-1] == "[desk] route: did not understand 'N9' (tiers: N1, N2, N3)"
