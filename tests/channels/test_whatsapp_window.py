"""WhatsApp's 24-hour session window: free-form messages only within 24 hours of the
customer's last message; later the approved template, or nothing (and agents see why)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.models import EventKind, OutboundMessage
from channels.twilio.adapter import template_variable
from channels.twilio.config import parse_twilio
from tests.channels.harness import Harness

WA = "whatsapp:+5511987650000"
TEMPLATE = "HX" + "a1" * 16
#: The approved template as WhatsApp shows it (registered in the fake).
TEMPLATE_TEXT = "Temos novidades sobre o seu atendimento: {{1}} Responda para continuar."
OUTSIDE = "outside WhatsApp's 24-hour window"


@pytest.fixture
async def templated() -> AsyncIterator[Harness]:
    h = Harness()
    h.whatsapp_config = replace(h.whatsapp_config, template_content_sid=TEMPLATE)
    h.fake_twilio.contents[TEMPLATE] = TEMPLATE_TEXT
    await h.start()
    yield h
    await h.close()


async def _ticket_claimed_by_ana(h: Harness) -> None:
    await h.sms_text("quero falar com um atendente", number=WA, channel="whatsapp")
    assert (await h.escala.desk.claim("ana", 1001)).ok


async def test_agent_reply_within_24_hours_is_free_form(templated: Harness) -> None:
    await _ticket_claimed_by_ana(templated)
    templated.clock.advance(hours=23, minutes=59)
    assert (await templated.escala.desk.reply("ana", 1001, "Oi! Já estou vendo.")).ok
    await templated.delivered()
    last = templated.fake_twilio.sent(WA)[-1].fields
    assert last["Body"] == "Ana: Oi! Já estou vendo." and "ContentSid" not in last


async def test_agent_reply_after_24_hours_goes_as_the_approved_template(
    templated: Harness,
) -> None:
    await _ticket_claimed_by_ana(templated)
    templated.clock.advance(hours=25)
    reply = "Consegui resolver\n\no problema da sua fatura. " + "Detalhes " * 20
    assert (await templated.escala.desk.reply("ana", 1001, reply)).ok
    await templated.delivered()
    last = templated.fake_twilio.sent(WA)[-1].fields
    assert "Body" not in last and last["ContentSid"] == TEMPLATE
    variable = json.loads(last["ContentVariables"])["1"]
    assert variable.startswith("Ana: Consegui resolver o problema da sua fatura. Detalhes")
    assert len(variable) <= 100 and variable.endswith("…") and "\n" not in variable
    assert templated.fake_twilio.texts(WA)[-1] == TEMPLATE_TEXT.replace("{{1}}", variable)
    events = await templated.events("whatsapp", WA)
    assert [e.data["reason"] for e in events if e.kind == "delivery.template"] == [OUTSIDE]
    assert not [e for e in events if e.kind == EventKind.DELIVERY_FAILED]


async def test_a_long_message_outside_the_window_is_one_template(templated: Harness) -> None:
    await _ticket_claimed_by_ana(templated)
    templated.clock.advance(days=2)
    before = len(templated.fake_twilio.calls)
    await templated.whatsapp.sender.send(WA, OutboundMessage("palavra " * 500), "pt-BR")
    await templated.delivered()
    calls = templated.fake_twilio.calls[before:]
    assert [c.fields.get("ContentSid") for c in calls] == [TEMPLATE]


async def test_without_a_template_nothing_is_sent_and_agents_see_why(harness: Harness) -> None:
    await _ticket_claimed_by_ana(harness)
    harness.clock.advance(hours=30)
    before = len(harness.fake_twilio.calls)
    assert (await harness.escala.desk.reply("ana", 1001, "Ainda precisa de ajuda?")).ok
    await harness.delivered()
    assert (await harness.escala.desk.resolve("ana", 1001)).ok  # "resolved" and CSAT
    await harness.delivered()
    assert len(harness.fake_twilio.calls) == before  # Twilio never called
    failed = [
        e for e in await harness.events("whatsapp", WA) if e.kind == EventKind.DELIVERY_FAILED
    ]
    assert [e.data["reason"] for e in failed] == [OUTSIDE] * 3
    assert failed[0].data["text"] == "Ana: Ainda precisa de ajuda?"
    ticket = await harness.escala.desk.ticket(1001)
    assert ticket is not None
    # all three on the ticket, "resolved" and CSAT included: agents see them
    assert [e.ticket_id for e in failed] == [ticket.id] * 3


async def test_a_new_customer_message_reopens_the_window(harness: Harness) -> None:
    await _ticket_claimed_by_ana(harness)
    harness.clock.advance(hours=30)
    await harness.sms_text("alguém aí?", number=WA, channel="whatsapp")
    assert (await harness.escala.desk.reply("ana", 1001, "Sim, estou aqui.")).ok
    await harness.delivered()
    assert harness.fake_twilio.texts(WA)[-1] == "Ana: Sim, estou aqui."


async def test_sms_has_no_session_window(harness: Harness) -> None:
    await harness.sms_text("quero falar com um atendente")
    assert (await harness.escala.desk.claim("ana", 1001)).ok
    harness.clock.advance(days=3)
    assert (await harness.escala.desk.reply("ana", 1001, "Voltei.")).ok
    await harness.delivered()
    assert harness.fake_twilio.texts("+5511912340000")[-1] == "Ana: Voltei."


def test_template_variable_is_one_short_line() -> None:
    assert template_variable("Oi,\n\tRita!   Tudo bem?") == "Oi, Rita! Tudo bem?"
    long = template_variable("x" * 300)
    assert len(long) == 100 and long.endswith("…")


def _whatsapp(channel: str = "whatsapp", **more: Any) -> dict[str, Any]:
    return {
        "account_sid_env": "ESCALA_TEST_SID",
        "auth_token_env": "ESCALA_TEST_TOKEN",
        "from_number": "whatsapp:+5511999990001" if channel == "whatsapp" else "+5511999990000",
        "public_base_url": "https://bot.example.com",
        **more,
    }


def test_template_content_sid_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALA_TEST_SID", "AC" + "0" * 32)
    monkeypatch.setenv("ESCALA_TEST_TOKEN", "token")
    config = parse_twilio("e.toml", "whatsapp", _whatsapp(template_content_sid=TEMPLATE), "pt-BR")
    assert config.template_content_sid == TEMPLATE
    assert parse_twilio("e.toml", "whatsapp", _whatsapp(), "pt-BR").template_content_sid is None
    for channel, value, reason in (
        ("whatsapp", "HX123", "HX followed by 32 hex digits"),
        ("whatsapp", "SM" + "a1" * 16, "HX followed by 32 hex digits"),
        ("whatsapp", 42, "expected a string"),
        ("sms", TEMPLATE, "only WhatsApp"),
    ):
        with pytest.raises(ConfigError) as error:
            parse_twilio("e.toml", channel, _whatsapp(channel, template_content_sid=value), "en")
        assert error.value.file == "e.toml"
        assert error.value.place == f"channels.{channel}.template_content_sid"
        assert reason in error.value.reason
