"""Issue 12, "Conversation quality": one journey through the engine per reported bug.

Each test is named after what went wrong on the embedded default (shipped KB, flows and
routing rules) and asserts on what the customer and the agents see.
"""

from __future__ import annotations

import logging
import re

import pytest

from bot.models import Direction, EventKind, TicketState
from tests.journeys.harness import Journey

NOT_UNDERSTOOD = "Desculpe, não entendi"
CODE = re.compile(r"#(\d+), (?:código|code) ([A-Z0-9]{4})")


@pytest.fixture
def journey() -> Journey:
    return Journey()


async def ticket_after_resolution(journey: Journey, locale: str = "pt-BR") -> int:
    """A ticket opened, claimed and resolved: the CSAT question is pending."""
    await journey.say("atendente", locale=locale)
    number = journey.workspace.opened[-1].ticket.number
    assert (await journey.desk.claim("ana", number)).ok
    assert (await journey.desk.resolve("ana", number)).ok
    return number


# --- saying thanks opens a ticket ------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "locale"),
    [
        (["obrigado", "valeu"], "pt-BR"),
        (["thanks", "bye"], "en"),
        (["👍", "????", "thanks"], "en"),
        (["obrigado!", "valeu mesmo", "tchau", "kkkk", "oi de novo"], "pt-BR"),
    ],
)
async def test_saying_thanks_opens_no_ticket(
    journey: Journey, messages: list[str], locale: str
) -> None:
    for message in messages:
        replies = await journey.say(message, locale=locale)
        assert replies, f"no reply to {message!r}"
        assert NOT_UNDERSTOOD not in replies[-1].text
    assert journey.workspace.opened == []
    conversation = await journey.escala.store.find_conversation("telegram", "1001")
    assert conversation is not None and conversation.failed_attempts == 0


async def test_thanks_gets_a_friendly_word_in_the_customers_language(journey: Journey) -> None:
    assert (await journey.say("obrigado"))[-1].text.startswith("De nada!")
    assert (await journey.say("thanks", locale="en", address="2"))[-1].text.startswith(
        "You're welcome!"
    )
    assert (await journey.say("oi de novo"))[-1].text.startswith("Oi de novo!")


# --- CSAT typos drop the survey and open a ticket ----------------------------------------


@pytest.mark.parametrize(
    ("answers", "locale", "score"),
    [
        (["great", "five"], "en", 5),
        (["great", "5"], "en", 5),
        (["ótimo", "4"], "pt-BR", 4),
        (["7", "4"], "pt-BR", 4),
        (["nota 4!"], "pt-BR", 4),
        (["cinco"], "pt-BR", 5),
        (["⭐⭐⭐"], "pt-BR", 3),
        (["👍"], "en", 5),
        (["4 - demorou mas resolveu"], "pt-BR", 4),
    ],
)
async def test_csat_typos_keep_the_survey_and_open_no_ticket(
    journey: Journey, answers: list[str], locale: str, score: int
) -> None:
    number = await ticket_after_resolution(journey, locale)
    for answer in answers:
        await journey.say(answer, locale=locale)
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat == score
    assert len(journey.workspace.opened) == 1  # only the ticket that was resolved


async def test_out_of_range_score_is_asked_once_more(journey: Journey) -> None:
    await ticket_after_resolution(journey)
    replies = await journey.say("7")
    assert "de 1 (muito insatisfeito) a 5" in replies[-1].text
    assert len(replies[-1].choices) == 5


async def test_second_csat_miss_ends_the_survey_politely_without_a_ticket(journey: Journey) -> None:
    number = await ticket_after_resolution(journey)
    await journey.say("ótimo")
    replies = await journey.say("excelente")
    assert replies[-1].text.startswith("Tudo bem, sem problemas!")
    assert len(journey.workspace.opened) == 1
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat is None
    # the survey is over: the next message is an ordinary one again
    replies = await journey.say("obrigado")
    assert replies[-1].text.startswith("De nada!")


async def test_comment_after_a_low_score_is_recorded_on_the_ticket(journey: Journey) -> None:
    number = await ticket_after_resolution(journey)
    replies = await journey.say("2")
    assert "o que podemos melhorar" in replies[-1].text
    await journey.say("demorou demais para responder")
    ticket = await journey.desk.ticket(number)
    assert ticket is not None and ticket.csat == 2
    events = await journey.escala.store.events(ticket_id=ticket.id)
    comments = [e.data["text"] for e in events if e.kind == EventKind.CSAT_COMMENT]
    assert comments == ["demorou demais para responder"]
    view = await journey.escala.views.view(ticket, full_transcript=True)
    assert "CSAT comment: demorou demais para responder" in [m.text for m in view.transcript]


# --- short replies get confident wrong answers -------------------------------------------


@pytest.mark.parametrize("text", ["no", "sim", "?", "oi de novo", "hmm", "ajuda"])
async def test_short_replies_get_no_confident_kb_answer(journey: Journey, text: str) -> None:
    await journey.say(text, locale="en" if text == "no" else "pt-BR")
    events = await journey.escala.store.events()
    assert not [e for e in events if e.kind == EventKind.KB_ANSWERED]
    assert journey.workspace.opened == []


async def test_no_to_suggestions_is_none_of_these(journey: Journey) -> None:
    # "quero mudar" (change what?) is ambiguous for the word matcher and for the fused
    # one alike; "quero trocar" was, until embeddings read it as "exchange an item"
    replies = await journey.say("quero mudar", locale="en")
    assert replies[-1].choices, "expected suggestions"
    replies = await journey.say("no")
    events = await journey.escala.store.events()
    assert not [e for e in events if e.kind == EventKind.KB_ANSWERED]
    assert any(
        e.kind == EventKind.KB_MISSED and e.data.get("reason") == "none of the suggestions"
        for e in events
    )


# --- triage is a keyword list ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tier", "priority", "private"),
    [
        ("minha conta foi invadida", "N3", "urgent", False),
        ("alguem entrou na minha conta sem permissao", "N3", "urgent", False),
        ("estao fazendo compras na minha conta que nao reconheço", "N3", "urgent", False),
        ("someone logged into my account from another country", "N3", "urgent", False),
        ("o site de vcs caiu? ninguem aqui consegue entrar", "N3", "urgent", False),
        ("a api ta retornando erro desde ontem", "N3", "high", False),
        ("the webhook is not firing anymore", "N3", "high", False),
        ("nao consigo instalar o aplicativo", "N2", "normal", False),
        ("a maquininha nao liga", "N2", "normal", False),
        ("the device won't pair with my phone", "N2", "normal", False),
        ("fui cobrado duas vezes esse mes", "N1", "normal", True),
        ("vou processar vocês", "N2", "high", False),
        ("vou denunciar no procon", "N2", "high", False),
        ("my lawyer will contact you", "N2", "high", False),
        ("quero conversar com uma pessoa", "N1", "normal", False),
        ("can I speak to someone?", "N1", "normal", False),
    ],
)
async def test_triage_understands_ordinary_phrasings(
    journey: Journey, text: str, tier: str, priority: str, private: bool
) -> None:
    locale = "pt-BR" if any(c in text for c in "ãçéõ") or (" " in text and text.isascii()) else "en"
    replies = await journey.say(text, locale=locale)
    assert len(journey.workspace.opened) == 1, f"no ticket for {text!r}: {replies[-1].text!r}"
    ticket = journey.workspace.opened[0].ticket
    assert (ticket.tier, ticket.priority.label, ticket.private) == (tier, priority, private)
    assert ticket.label in replies[-1].text


async def test_agents_see_the_nearest_example_and_its_score(journey: Journey) -> None:
    await journey.say("alguem entrou na minha conta sem permissao")
    reasons = journey.workspace.opened[0].ticket.reasons
    assert reasons[0] == "Possible security incident or data leak"
    assert re.fullmatch(r"matched: example '.+' \(score \d+\)", reasons[1])


# --- the bot keeps talking after the handoff ---------------------------------------------


async def test_bot_stops_talking_after_the_handoff(journey: Journey) -> None:
    for message in ("cadê meu pedido", "123", "abc"):
        await journey.say(message)
    replies = await journey.say("xyz")
    assert len(journey.workspace.opened) == 1
    assert len(replies) == 1 and journey.workspace.opened[0].ticket.label in replies[0].text
    # later messages go to the ticket, not to the bot
    assert await journey.say("alguém aí?") == []
    assert journey.workspace.relayed[-1][1].text == "alguém aí?"


# --- customer commands while a ticket is open are swallowed -------------------------------


async def test_status_answers_after_an_agent_claimed_the_ticket(journey: Journey) -> None:
    await journey.say("atendente")
    ticket = journey.workspace.opened[0].ticket
    await journey.desk.claim("ana", ticket.number)
    replies = await journey.say("status")
    assert replies[-1].text == f"Chamado {ticket.label}: em atendimento com a equipe N1."


async def test_cancel_during_a_ticket_asks_then_closes_and_tells_agents(journey: Journey) -> None:
    await journey.say("atendente")
    ticket = journey.workspace.opened[0].ticket
    await journey.desk.claim("ana", ticket.number)
    replies = await journey.say("cancelar")
    assert f"encerrar o chamado {ticket.label}" in replies[-1].text
    assert [c.label for c in replies[-1].choices] == ["Sim, encerrar", "Não, manter aberto"]
    replies = await journey.say("1")
    assert replies[-1].text.startswith(f"Pronto, encerrei o chamado {ticket.label}")
    closed = await journey.desk.ticket(ticket.number)
    assert closed is not None and closed.state is TicketState.CLOSED
    view, change = journey.workspace.changed[-1]
    assert (view.ticket.number, change.value) == (ticket.number, "closed_by_customer")
    assert await journey.escala.store.queue("N1") == []
    assert await journey.escala.store.assigned("ana") == []
    # the bot has the conversation back
    replies = await journey.say("obrigado")
    assert replies[-1].text.startswith("De nada!")


async def test_cancel_can_be_taken_back(journey: Journey) -> None:
    await journey.say("atendente")
    ticket = journey.workspace.opened[0].ticket
    await journey.say("cancelar")
    replies = await journey.say("Não, manter aberto")
    assert replies[-1].text == f"Combinado, o chamado {ticket.label} continua aberto."
    still = await journey.desk.ticket(ticket.number)
    assert still is not None and still.state is TicketState.QUEUED


async def test_start_over_during_a_ticket_closes_it_and_restarts(journey: Journey) -> None:
    await journey.say("atendente")
    ticket = journey.workspace.opened[0].ticket
    replies = await journey.say("recomeçar")
    assert "Para recomeçar, vou encerrar o chamado" in replies[-1].text
    replies = await journey.say("Sim, recomeçar")
    assert replies[0].text.startswith("Pronto, encerrei o chamado")
    assert replies[-1].text.startswith("Olá!")  # the greeting menu again
    closed = await journey.desk.ticket(ticket.number)
    assert closed is not None and closed.state is TicketState.CLOSED


# --- reasons are duplicated --------------------------------------------------------------


async def test_handoff_reasons_are_not_duplicated(journey: Journey) -> None:
    await journey.say("atendente")
    reasons = journey.workspace.opened[0].ticket.reasons
    assert reasons == ("customer asked for a human",)


# --- card numbers are stored in clear ----------------------------------------------------


async def test_card_numbers_are_masked_before_anything_stores_them(
    journey: Journey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await journey.say("quero pagar a fatura com outro cartão")
    ticket = journey.workspace.opened[0].ticket
    await journey.say("o número é 4111 1111 1111 1111 e meu cpf 529.982.247-25")
    view = await journey.escala.views.view(ticket, full_transcript=True)
    inbound = [m.text for m in view.transcript if m.direction is Direction.INBOUND]
    assert inbound[-1] == "o número é [cartão •••• 1111] e meu cpf [CPF •••.•••.•••-25]"
    relayed = journey.workspace.relayed[-1][1].text
    assert relayed == inbound[-1]
    assert "4111" not in caplog.text and "529.982" not in caplog.text


async def test_order_and_phone_numbers_are_not_masked(journey: Journey) -> None:
    await journey.say("atendente")
    text = "pedido #4111111111111111 e 1234567890123, meu fone +55 11 98765-4321"
    await journey.say(text)
    assert journey.workspace.relayed[-1][1].text == text


# --- anyone can read any ticket's state --------------------------------------------------


async def test_status_of_another_customers_ticket_reveals_nothing(journey: Journey) -> None:
    replies = await journey.say("minha fatura veio com cobrança errada")
    found = CODE.search(replies[-1].text)
    assert found, replies[-1].text
    number, code = found.groups()
    other = {"channel": "sms", "address": "+5511988887777"}
    denied = (await journey.say(f"status {number}", **other))[-1].text  # type: ignore[arg-type]
    unknown = (await journey.say("status 9999", **other))[-1].text  # type: ignore[arg-type]
    assert "fila" not in denied and "posição" not in denied
    assert denied.replace(number, "N") == unknown.replace("9999", "N")
    allowed = (await journey.say(f"status {number} {code}", **other))[-1].text  # type: ignore[arg-type]
    assert allowed.startswith(f"Chamado #{number}: aguardando na fila N1")


# --- smaller items -----------------------------------------------------------------------


async def test_reply_to_a_resolved_ticket_says_it_is_resolved(journey: Journey) -> None:
    number = await ticket_after_resolution(journey)
    result = await journey.desk.reply("ana", number, "mais uma coisa")
    assert not result.ok
    assert "resolved" in result.message and "claim it first" not in result.message


async def test_kb_opening_hours_agree_with_the_business_hours(journey: Journey) -> None:
    hours = journey.settings.business_hours
    replies = await journey.say("vocês abrem sábado?")
    answer = replies[0].text
    assert 5 not in hours.days  # Saturday is not a working day by default ...
    assert "sábados das" not in answer and "Saturdays 9" not in answer  # ... nor in the KB
