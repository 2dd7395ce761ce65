"""The flows Escala ships, walked the way a customer would."""

from __future__ import annotations

import pytest

from flows.loader import default_flows_path, load_flows
from flows.model import Ask, Collect
from flows.position import FlowPosition
from flows.runner import FlowReply, FlowRunner
from tests.unit.test_flows_runner import FakeHost


@pytest.fixture(scope="module")
def runner() -> FlowRunner:
    return FlowRunner(load_flows([default_flows_path()]))


async def reply(
    runner: FlowRunner, position: FlowPosition | None, host: FakeHost, text: str
) -> FlowPosition | None:
    assert position is not None, "the flow ended before this reply"
    return await runner.resume(position, FlowReply(text), host)


async def test_greeting_offers_the_menu_in_both_locales(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("greeting", host)
    assert position is not None
    assert host.texts[0].startswith("Olá!")
    assert host.last_options == [
        "Status do pedido",
        "Redefinir senha",
        "Falar com um atendente",
        "Outro assunto",
    ]
    english = FakeHost(locale="en")
    await runner.start("greeting", english)
    assert english.last_options[-1] == "Something else"


async def test_greeting_to_a_human(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("greeting", host)
    assert await reply(runner, position, host, "3") is None
    assert host.handoffs == [(None, None, "customer chose 'talk to a human' from the menu")]


async def test_greeting_something_else(runner: FlowRunner) -> None:
    host = FakeHost(locale="en")
    position = await runner.start("greeting", host)
    assert await reply(runner, position, host, "something else") is None
    assert host.texts[-1].startswith("Sure! Type your question")


async def test_greeting_hands_a_non_option_back_to_the_engine(runner: FlowRunner) -> None:
    # Not a menu option: probably a question. The flow ends without a word, so the
    # engine handles the message as a new one (KB, triage) instead of losing it.
    host = FakeHost(kb={"qual o horario": "Das 8h às 20h."})
    position = await runner.start("greeting", host)
    sent = len(host.texts)
    assert await reply(runner, position, host, "Qual o horário?") is None
    assert len(host.texts) == sent


async def test_greeting_into_order_status(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("greeting", host)
    position = await reply(runner, position, host, "Status do pedido")
    assert position is not None and position.flow_id == "order_status"
    assert host.texts[-1].startswith("Qual é o número do pedido?")


async def test_order_status_needs_more_help(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("order_status", host)
    position = await reply(runner, position, host, "pedido 12")
    assert host.texts[-1].startswith("Não reconheci esse número")
    position = await reply(runner, position, host, "#1234567")
    assert "#1234567" in host.texts[-2]
    assert host.last_options == ["Sim", "Não"]
    assert await reply(runner, position, host, "sim") is None
    assert host.handoffs == [("N1", None, "order #1234567: customer needs help")]


async def test_order_status_done(runner: FlowRunner) -> None:
    host = FakeHost(locale="en")
    position = await runner.start("order_status", host)
    position = await reply(runner, position, host, "98765432")
    assert await reply(runner, position, host, "No") is None
    assert host.texts[-1].startswith("All set!")
    assert host.handoffs == []


async def test_password_reset_by_email_then_it_failed(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("password_reset", host)
    assert host.last_options == ["E-mail", "SMS"]
    position = await reply(runner, position, host, "email")
    position = await reply(runner, position, host, "ana@exemplo")
    assert host.texts[-1].startswith("Hmm, isso não parece um e-mail")
    position = await reply(runner, position, host, "ana@exemplo.com")
    assert "ana@exemplo.com" in host.texts[-2]
    assert host.texts[-1] == "Deu certo?"
    assert await reply(runner, position, host, "2") is None
    assert host.handoffs == [("N1", None, "password reset failed after guided steps")]


async def test_password_reset_by_sms_worked(runner: FlowRunner) -> None:
    host = FakeHost(locale="en")
    position = await runner.start("password_reset", host)
    position = await reply(runner, position, host, "2")
    assert host.texts[-2].startswith("Done! We've texted the link")
    assert await reply(runner, position, host, "yes") is None
    assert host.texts[-1].startswith("Great!")
    assert host.handoffs == []


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("pt-BR", "Não entendi 🙂 Como prefere receber o link: por e-mail ou por SMS?"),
        ("en", "Sorry, I didn't catch that 🙂 How would you like to receive the link"),
    ],
)
async def test_a_reply_that_is_no_option_is_told_so_with_the_options_again(
    runner: FlowRunner, locale: str, said: str
) -> None:
    """Not the question again word for word (the customer would wonder whether they
    were heard): the flow says it did not understand, and offers the options again."""
    host = FakeHost(locale=locale)
    position = await runner.start("password_reset", host)
    options = host.last_options
    position = await reply(runner, position, host, "no" if locale == "en" else "não")
    assert position is not None and position.retries == 1
    assert host.texts[-1].startswith(said) and host.last_options == options


def test_every_shipped_question_that_asks_again_says_it_did_not_understand() -> None:
    flows = load_flows([default_flows_path()])
    asking_again = [
        (flow.id, step.id, step.error)
        for flow in (flows.get(i) for i in flows.ids())
        if flow is not None
        for step in flow.steps.values()
        if isinstance(step, (Ask, Collect)) and step.max_retries > 0
    ]
    assert asking_again  # the shipped flows do ask again
    for flow_id, step_id, error in asking_again:
        assert error is not None, f"{flow_id}.{step_id} repeats its question word for word"
        assert error.by_locale.keys() == {"pt-BR", "en"}, f"{flow_id}.{step_id}: both locales"


async def test_talk_to_human(runner: FlowRunner) -> None:
    host = FakeHost()
    assert await runner.start("talk_to_human", host) is None
    assert host.texts == ["Claro! Vou te passar para a nossa equipe."]
    assert host.handoffs == [(None, None, "customer asked for a human")]


@pytest.mark.parametrize(
    ("variables", "expected"), [({"ticket_number": "1042"}, [1042]), ({}, [None])]
)
async def test_ticket_status(
    runner: FlowRunner, variables: dict[str, str], expected: list[int | None]
) -> None:
    host = FakeHost()
    assert await runner.start("ticket_status", host, variables) is None
    assert host.statuses == expected


async def test_kb_feedback(runner: FlowRunner) -> None:
    host = FakeHost()
    position = await runner.start("kb_feedback", host, {"kb_entry": "hours"})
    assert host.last_options == ["Sim", "Não"]
    assert await reply(runner, position, host, "Sim") is None
    assert host.texts[-1].startswith("Que bom!")

    host = FakeHost(locale="en")
    position = await runner.start("kb_feedback", host)
    assert host.last_options == ["Yes", "No"]
    assert await reply(runner, position, host, "no") is None
    assert host.handoffs == [(None, None, "KB answer did not help")]


async def test_kb_feedback_hands_the_next_question_back_to_the_engine(
    runner: FlowRunner,
) -> None:
    host = FakeHost(kb={"qual o prazo de entrega": "A entrega leva 5 dias úteis."})
    position = await runner.start("kb_feedback", host)
    sent = len(host.texts)
    assert await reply(runner, position, host, "qual o prazo de entrega?") is None
    assert len(host.texts) == sent
