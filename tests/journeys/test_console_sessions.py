"""`escala chat` on a shared store (Redis) is run again and again by the same person."""

from __future__ import annotations

import io

from bot.app import build
from bot.settings import default_settings
from bot.store import Store
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
