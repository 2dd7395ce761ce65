"""A ticket's whole life in Slack, asserted on what the fake Slack received and what
the customer saw."""

from __future__ import annotations

from bot.models import Direction
from tests.slack.conftest import ANA, BRUNO, CUSTOMER, World, blocks_text

N = 1001  # the first ticket number


async def test_handoff_claim_reply_escalate_resolve_csat(world: World) -> None:
    fake = world.fake
    # -- the customer asks for a human: a card in N1's channel
    await world.customer_says("quero falar com um atendente")
    card = world.card("C111")
    shown = blocks_text(card["blocks"])
    assert "Ticket #1001 · N1" in shown
    assert "telegram" in shown and "…1001" in shown and CUSTOMER not in shown
    assert "quero falar com um atendente" in shown  # the transcript
    assert "escala_claim" in shown and "escala_escalate" in shown
    assert card["text"] == "Ticket #1001 in N1 (normal)"
    ticket_ts = world.card_ts("C111")

    # -- Ana claims: the card says so
    status, _ = await world.slack.click("escala_claim", N, ANA, ts=ticket_ts)
    assert status == 200
    assert "Claimed by <@U0AAA>" in world.updates("C111")[-1]
    assert "escala_resolve" in world.updates("C111")[-1]

    # -- the customer writes: it lands in the card's thread
    await world.customer_says("meu pedido 123 não chegou")
    assert world.thread("C111") == ["*customer:* meu pedido 123 não chegou"]

    # -- Ana answers in the thread: the customer gets it, under her name
    await world.slack.thread_reply(ANA, "Oi! Vou verificar &amp; já volto", ticket_ts)
    assert "Oi! Vou verificar & já volto" in world.customer[-1]
    assert "Ana" in world.customer[-1]

    # -- a private note stays inside
    before = list(world.customer)
    await world.slack.thread_reply(ANA, "// cliente VIP, cuidado", ticket_ts)
    assert world.customer == before
    transcript = await world.journey.escala.store.transcript(
        (await world.journey.escala.desk.ticket(N)).conversation_id  # type: ignore[union-attr]
    )
    assert any(
        m.direction is Direction.NOTE and m.text == "cliente VIP, cuidado" for m in transcript
    )

    # -- Escalate opens a modal with the tiers; submitting it moves the ticket to N2
    await world.slack.click("escala_escalate", N, ANA, ts=ticket_ts)
    (opened,) = fake.of("views.open")
    assert opened["trigger_id"] == f"trigger-{ANA}"
    modal = opened["view"]
    assert modal["callback_id"] == "escala_escalate_view"
    select = modal["blocks"][0]["element"]
    assert [o["value"] for o in select["options"]] == ["N2", "N3"]
    assert select["initial_option"]["value"] == "N2"

    status, _ = await world.slack.submit_escalation(
        N, ANA, "N2", "precisa de configuração avançada"
    )
    assert status == 200
    old = world.updates("C111")[-1]
    assert "Escalated N1 → N2 by Ana: precisa de configuração avançada" in old
    assert "escala_claim" not in old and "escala_resolve" not in old  # history now
    new = world.card("C222")
    new_shown = blocks_text(new["blocks"])
    assert "Ticket #1001 · N2" in new_shown
    assert "Escalated from N1* by Ana: precisa de configuração avançada" in new_shown
    assert "quero falar com um atendente" in new_shown  # full transcript
    assert "Oi! Vou verificar" in new_shown
    assert "#1001" in world.customer[-1] and "N2" in world.customer[-1]  # the desk told them
    n2_ts = world.card_ts("C222")

    # -- Bruno (N1/N2) claims in N2, answers, resolves
    await world.slack.click("escala_claim", N, BRUNO, channel="C222", ts=n2_ts)
    assert "Claimed by <@U0BBB>" in world.updates("C222")[-1]
    await world.customer_says("ainda está dando erro")
    assert world.thread("C222") == ["*customer:* ainda está dando erro"]
    await world.slack.thread_reply(BRUNO, "Pode reiniciar o roteador?", n2_ts, channel="C222")
    assert "Pode reiniciar o roteador?" in world.customer[-1]
    assert "Bruno" in world.customer[-1]

    await world.slack.click("escala_resolve", N, BRUNO, channel="C222", ts=n2_ts)
    assert "Resolved by Bruno" in world.updates("C222")[-1]
    assert "escala_" not in world.updates("C222")[-1]  # no more buttons
    csat = world.journey.channels["telegram"].last()
    assert len(csat.choices) == 5

    # -- the customer rates: the card shows the score
    await world.customer_says("5")
    assert "CSAT 5/5" in world.updates("C222")[-1]
    assert not fake.of("chat.postEphemeral")  # nobody was refused anything


async def test_release_puts_ticket_back(world: World) -> None:
    await world.customer_says("quero falar com um atendente")
    await world.slack.click("escala_claim", N, ANA)
    await world.slack.click("escala_release", N, ANA)
    last = world.updates("C111")[-1]
    assert "Waiting in the N1 queue (released by Ana)" in last
    assert "escala_claim" in last
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.assignee is None
