"""Whole journeys through the engine, asserted on what customers and agents see."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.access_code import access_code
from bot.engine import MAX_MESSAGE_CHARS
from bot.models import Agent, Direction, EventKind, TicketState
from bot.settings import default_settings
from tests.journeys.harness import JOURNEY_KB, Journey


@pytest.fixture
def journey() -> Journey:
    settings = default_settings()
    settings = replace(settings, kb=replace(settings.kb, paths=(JOURNEY_KB,)))
    return Journey(settings)


def labels(message: object) -> list[str]:
    return [c.label for c in getattr(message, "choices", ())]


async def test_kb_answer_then_did_this_help(journey: Journey) -> None:
    replies = await journey.say("Qual o horário de atendimento de vocês?")
    assert replies[0].text == "Atendemos de segunda a sexta, das 8h às 20h."
    assert replies[0].choices == ()
    # the "did this help?" flow follows the answer, with two buttons
    assert len(replies) == 2
    assert labels(replies[1]) == ["Sim", "Não"]


@pytest.mark.parametrize(
    ("text", "locale", "first"),
    [
        ("Oi, bom dia!", "pt-BR", "Olá! 👋 Sou o assistente virtual. Como posso ajudar?"),
        ("Boa tarde, tudo bem?", "pt-BR", "Olá! 👋 Sou o assistente virtual. Como posso ajudar?"),
        ("oi tudo bem?", "pt-BR", "Tudo bem por aqui, obrigado! Como posso ajudar?"),
        ("Olá! Esqueci minha senha", "pt-BR", "Vamos resolver isso!"),
        ("hi, good morning", "en", "Hi there! 👋 I'm the virtual assistant. How can I help?"),
    ],
)
async def test_an_everyday_greeting_is_greeted(
    journey: Journey, text: str, locale: str, first: str
) -> None:
    """How most conversations begin: a greeting of a few words, perhaps with "tudo
    bem?", or before the request itself. Not "tell me more about what you need"."""
    replies = await journey.say(text, locale=locale)
    assert replies[0].text.startswith(first), replies[0].text


async def test_an_angry_emoji_is_asked_what_happened(journey: Journey) -> None:
    (reply,) = await journey.say("😡😡😡")
    assert reply.text.startswith("Pode me contar com um pouco mais de detalhes")
    assert "atendente" in reply.text  # a person is one word away


async def test_a_first_short_english_message_on_sms_is_answered_in_english(
    journey: Journey,
) -> None:
    """SMS says nothing of the language; "thanks, bye" holds no small word, but it is
    the contact's first message, so its words of courtesy decide (not the default)."""
    (reply,) = await journey.say("thanks, bye", channel="sms", locale_known=False)
    assert reply.text.startswith("You're welcome!")
    # a later message that says too little keeps the language
    (reply,) = await journey.say("ok", channel="sms", locale_known=False)
    assert reply.text.startswith("Great!")


async def test_english_customer_gets_english_answer(journey: Journey) -> None:
    replies = await journey.say("when are you open?", locale="en", address="77")
    assert replies[0].text == "We're open Monday to Friday, 8am to 8pm."
    assert labels(replies[1]) == ["Yes", "No"]


async def test_helpful_answer_ends_without_ticket(journey: Journey) -> None:
    await journey.say("qual o horario de atendimento")
    replies = await journey.say("Sim")
    assert replies and "#" not in replies[0].text
    assert journey.workspace.opened == []


@pytest.mark.parametrize(
    ("said", "helped"),
    [("👍", True), ("sim, obrigado!", True), ("não ajudou em nada", False), ("👎", False)],
)
async def test_did_this_help_is_answered_as_customers_answer(
    journey: Journey, said: str, helped: bool
) -> None:
    """Not only "Sim" and "Não": a thumbs up is a yes (it was "Combinado!" and no
    feedback), and "não ajudou em nada" a no (it was a new question for the KB)."""
    await journey.say("qual o horario de atendimento")
    replies = await journey.say(said)
    if helped:
        assert replies[0].text.startswith("Que bom!")
        assert journey.workspace.opened == []
    else:
        assert replies[0].text.startswith("Poxa, sinto muito.")
        assert len(journey.workspace.opened) == 1


async def test_suggestion_then_choice(journey: Journey) -> None:
    replies = await journey.say("quero cancelar")
    assert replies[-1].text.startswith("Não tenho certeza se entendi")
    offered = labels(replies[-1])
    assert "Cancelar pedido" in offered and "Cancelar assinatura" in offered
    assert offered[-1] == "Nenhuma dessas"
    pick = offered.index("Cancelar assinatura") + 1
    replies = await journey.say(str(pick))
    assert replies[0].text.startswith("Para cancelar a assinatura")


async def test_suggestion_picked_by_button(journey: Journey) -> None:
    replies = await journey.say("quero cancelar")
    choice = next(c for c in replies[-1].choices if c.label == "Cancelar pedido")
    replies = await journey.say("", choice_id=choice.id)
    assert replies[0].text.startswith("Para cancelar um pedido")


async def test_did_not_help_hands_off_with_ticket_and_sla(journey: Journey) -> None:
    await journey.say("qual o prazo de entrega?")
    replies = await journey.say("Não")
    assert len(journey.workspace.opened) == 1
    ticket = journey.workspace.opened[0].ticket
    assert ticket.tier == "N1"
    assert ticket.label in replies[-1].text
    assert "15 minutos" in replies[-1].text
    assert "KB answer did not help" in " ".join(ticket.reasons)


async def test_explicit_request_for_a_human(journey: Journey) -> None:
    replies = await journey.say("quero falar com um atendente")
    view = journey.workspace.opened[0]
    assert view.ticket.tier == "N1"
    assert view.ticket.state is TicketState.QUEUED
    assert any("human" in reason for reason in view.ticket.reasons)
    assert view.ticket.label in replies[-1].text


async def test_english_handoff_message(journey: Journey) -> None:
    replies = await journey.say("talk to a human", locale="en", address="55")
    ticket = journey.workspace.opened[0].ticket
    assert f"ticket {ticket.label}" in replies[-1].text
    assert "within 15 minutes" in replies[-1].text


async def test_triage_sends_security_incident_straight_to_n3(journey: Journey) -> None:
    replies = await journey.say("Acho que houve um vazamento de dados na minha conta")
    view = journey.workspace.opened[0]
    assert view.ticket.tier == "N3"
    assert view.ticket.reasons, "agents must see why"
    assert view.ticket.label in replies[-1].text
    events = await journey.escala.store.events(conversation_id=view.conversation.id)
    triaged = [e for e in events if e.kind == EventKind.TRIAGED]
    assert triaged and triaged[0].data["tier"] == "N3"


async def test_claim_race_has_exactly_one_winner(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    agents = tuple(Agent(id=f"a{i}", name=f"Agent {i}", tiers=("N1",)) for i in range(100))
    journey.desk.agents.update({a.id: a for a in agents})
    results = await asyncio.gather(*(journey.desk.claim(a.id, number) for a in agents))
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    assert all("already claimed" in r.message for r in results if not r.ok)
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.assignee == winners[0].ticket.assignee  # type: ignore[union-attr]


async def test_bot_is_silent_while_a_human_owns_the_conversation(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    assert (await journey.desk.claim("ana", number)).ok
    replies = await journey.say("qual o horário de atendimento?")
    assert replies == []
    view, message = journey.workspace.relayed[-1]
    assert view.ticket.number == number and message.text == "qual o horário de atendimento?"


async def test_agent_reply_reaches_the_customer_under_the_agent_name(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    result = await journey.desk.reply("ana", number, "Oi! Já estou vendo seu caso.")
    assert result.ok
    assert journey.channels["telegram"].last().text == "Ana: Oi! Já estou vendo seu caso."
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.first_response_at is not None


async def test_private_note_never_reaches_the_customer(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    sent_before = len(journey.channels["telegram"].sent)
    assert (await journey.desk.note("ana", number, "cliente VIP, cuidado")).ok
    assert len(journey.channels["telegram"].sent) == sent_before
    transcript = await journey.escala.store.transcript(journey.workspace.opened[0].conversation.id)
    assert transcript[-1].direction is Direction.NOTE


async def test_escalate_n1_n2_n3_keeps_the_whole_transcript(journey: Journey) -> None:
    await journey.say("meu app não sincroniza os pedidos")
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    assert (await journey.desk.claim("ana", number)).ok
    await journey.desk.reply("ana", number, "Vou verificar.")
    result = await journey.desk.escalate("ana", number, None, "needs product specialist")
    assert result.ok, result.message
    customer_saw = journey.channels["telegram"].last().text
    assert "N2" in customer_saw and "especialista" in customer_saw
    n2_card = journey.workspace.opened[-1]
    assert n2_card.ticket.tier == "N2" and n2_card.previous_tier == "N1"
    assert n2_card.note == "needs product specialist"
    assert (await journey.desk.claim("bruno", number)).ok
    result = await journey.desk.escalate("bruno", number, "N3", "sync bug in the API")
    assert result.ok, result.message
    n3_card = journey.workspace.opened[-1]
    assert n3_card.ticket.tier == "N3"
    assert n3_card.ticket.tier_history == ("N1", "N2", "N3")
    texts = [m.text for m in n3_card.transcript]
    assert "meu app não sincroniza os pedidos" in texts
    assert "Ana: Vou verificar." in texts
    assert any("N1 → N2" in t and "needs product specialist" in t for t in texts)
    assert any("N2 → N3" in t and "sync bug in the API" in t for t in texts)


async def test_escalation_refused_without_reason_or_ownership(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    assert not (await journey.desk.escalate("ana", number, "N2", "  ")).ok
    assert (await journey.desk.claim("ana", number)).ok
    assert not (await journey.desk.escalate("bruno", number, "N2", "mine now")).ok
    assert not (await journey.desk.escalate("ana", number, "N9", "typo")).ok


async def test_agents_only_claim_their_tiers(journey: Journey) -> None:
    await journey.say("Acho que houve um vazamento de dados na minha conta")
    number = journey.workspace.opened[0].ticket.number
    refused = await journey.desk.claim("ana", number)
    assert not refused.ok and "N3" in refused.message
    assert (await journey.desk.claim("carla", number)).ok


async def test_resolve_asks_csat_and_records_it(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    assert (await journey.desk.resolve("ana", number)).ok
    sent = journey.channels["telegram"].sent
    assert f"{journey.workspace.opened[0].ticket.label} foi resolvido" in sent[-2].message.text
    question = sent[-1].message
    assert "De 1 a 5" in question.text and len(question.choices) == 5
    replies = await journey.say("5")
    assert replies[0].text == "Obrigado pela sua avaliação!"
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat == 5 and ticket.state is TicketState.CLOSED
    events = await journey.escala.store.events(ticket_id=ticket.id)
    assert [e.data["score"] for e in events if e.kind == EventKind.CSAT_RECORDED] == [5]
    assert journey.workspace.changed[-1][0].ticket.csat == 5


async def test_invalid_csat_is_asked_again_once(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    await journey.desk.resolve("ana", number)
    replies = await journey.say("ótimo")
    assert "responda com um número de 1" in replies[0].text
    assert len(replies[0].choices) == 5
    # a second invalid answer: CSAT is dropped and the message is handled as a question
    replies = await journey.say("qual o prazo de entrega?")
    assert replies[0].text.startswith("A entrega leva")
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat is None


async def test_csat_by_button(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    await journey.desk.resolve("ana", number)
    question = journey.channels["telegram"].last()
    await journey.say("", choice_id=question.choices[3].id)
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat == 4


async def test_ticket_status_question_while_queued(journey: Journey) -> None:
    await journey.say("quero falar com um atendente", address="first")
    await journey.say("quero falar com um atendente", address="second")
    second = journey.workspace.opened[1].ticket
    replies = await journey.say("status do meu chamado", address="second")
    assert replies[-1].text.startswith(f"Chamado {second.label}: aguardando na fila N1")
    assert "posição 2 de 2" in replies[-1].text


async def test_ticket_status_by_number_from_another_channel(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    ticket = journey.workspace.opened[0].ticket
    await journey.desk.claim("ana", ticket.number)
    # another channel is another contact: the ticket's access code opens it (issue 12)
    code = access_code(ticket)
    assert f"{ticket.label}, código {code}," in journey.channels["telegram"].texts()[-1]
    replies = await journey.say(
        f"status {ticket.number} {code.lower()}", channel="sms", address="+5511999990000"
    )
    assert replies[-1].text == f"Chamado {ticket.label}: em atendimento com a equipe N1."
    # the owner's own conversation needs no code, and an unknown number says nothing
    replies = await journey.say(f"status {ticket.number}")
    assert replies[-1].text == f"Chamado {ticket.label}: em atendimento com a equipe N1."
    replies = await journey.say("status 999999", channel="sms", address="+5511999990000")
    assert "código de acesso" in replies[-1].text


async def test_duplicate_delivery_is_processed_once(journey: Journey) -> None:
    first = await journey.say("qual o horário de atendimento?", message_id="dup-1")
    again = await journey.say("qual o horário de atendimento?", message_id="dup-1")
    assert first and again == []
    transcript = await journey.escala.store.transcript(
        (await journey.escala.store.find_conversation("telegram", "1001")).id  # type: ignore[union-attr]
    )
    assert [m.text for m in transcript if m.direction is Direction.INBOUND] == [
        "qual o horário de atendimento?"
    ]


async def test_release_puts_the_ticket_back_in_its_queue(journey: Journey) -> None:
    await journey.say("quero falar com um atendente")
    number = journey.workspace.opened[0].ticket.number
    await journey.desk.claim("ana", number)
    assert not (await journey.desk.release("bruno", number)).ok
    assert (await journey.desk.release("ana", number)).ok
    queue = await journey.escala.store.queue("N1")
    assert [t.number for t in queue] == [number]
    taken = await journey.desk.take_next("bruno")
    assert taken.ok and taken.ticket is not None and taken.ticket.assignee == "bruno"


async def test_unknown_question_asks_to_rephrase_then_hands_off(journey: Journey) -> None:
    first = await journey.say("xyzzy plugh")
    assert "não entendi" in first[-1].text
    assert journey.workspace.opened == []
    second = await journey.say("blorft quux")
    assert journey.workspace.opened, "two failed attempts go to a human"
    assert journey.workspace.opened[0].ticket.label in second[-1].text


async def test_cancel_leaves_a_flow(journey: Journey) -> None:
    await journey.say("qual o prazo de entrega?")
    replies = await journey.say("cancelar")
    assert replies[0].text == "Tudo bem, cancelei. Como posso ajudar?"
    conversation = await journey.escala.store.find_conversation("telegram", "1001")
    assert conversation is not None and conversation.flow is None


async def test_greeting_starts_the_menu(journey: Journey) -> None:
    replies = await journey.say("Olá!")
    assert replies[-1].choices, "the greeting offers a menu"


async def test_an_enormous_message_is_bounded_not_lost(journey: Journey) -> None:
    replies = await journey.say("x" * 50_000)
    assert replies, "the customer still gets an answer"
    conversation = await journey.escala.store.find_conversation("telegram", "1001")
    assert conversation is not None
    transcript = await journey.escala.store.transcript(conversation.id)
    assert transcript[0].text == "x" * MAX_MESSAGE_CHARS
