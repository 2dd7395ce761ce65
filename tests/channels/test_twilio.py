"""SMS and WhatsApp journeys over HTTP: signed webhooks in, the fake Twilio REST API out."""

from __future__ import annotations

from bot.models import EventKind, Identity, OutboundMessage
from channels.twilio.adapter import mask
from tests.channels.fakes import Failure
from tests.channels.harness import ACCOUNT_SID, PUBLIC, SMS_FROM, WHATSAPP_FROM, Harness

PHONE = "+5511912340000"
WA = "whatsapp:+5511987650000"


async def test_sms_handoff_tells_the_ticket_number(harness: Harness) -> None:
    response = await harness.sms_text("quero falar com um atendente")
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert "<Response/>" in await response.text()
    texts = harness.fake_twilio.texts(PHONE)
    assert texts[0] == "Claro! Vou te passar para a nossa equipe."
    assert "#1001" in texts[-1] and "15 minutos" in texts[-1]
    sent = harness.fake_twilio.sent(PHONE)[-1].fields
    assert sent["From"] == SMS_FROM
    assert sent["StatusCallback"] == PUBLIC + "/twilio/sms/status"


async def test_sms_choices_are_numbered_and_a_number_picks_one(harness: Harness) -> None:
    await harness.sms_text("qual o horário de atendimento?")
    question = harness.fake_twilio.texts(PHONE)[-1]
    assert question.splitlines()[-2:] == ["1. Sim", "2. Não"]
    await harness.sms_text("2")
    assert "#1001" in harness.fake_twilio.texts(PHONE)[-1]  # "Não" (did not help): handoff


async def test_an_english_text_is_answered_in_english_and_ok_changes_nothing(
    harness: Harness,
) -> None:
    # SMS says nothing of the customer's language: their words do (bot.language).
    await harness.sms_text("Hi, what are your opening hours?")
    question = harness.fake_twilio.texts(PHONE)[-1]
    assert question.splitlines()[-2:] == ["1. Yes", "2. No"]
    await harness.sms_text("2")  # "No": it did not help
    assert "I've opened ticket #1001" in harness.fake_twilio.texts(PHONE)[-1]
    await harness.sms_text("ok")  # says no language: still English
    contact = await harness.store.find_contact(Identity("sms", PHONE))
    assert contact is not None and contact.locale == "en"
    ticket = await harness.store.find_ticket(1001)
    assert ticket is not None
    conversation = await harness.store.get_conversation(ticket.conversation_id)
    assert conversation is not None and conversation.locale == "en"


async def test_a_customer_who_switches_to_english_gets_english_from_then_on(
    harness: Harness,
) -> None:
    await harness.sms_text("qual o horário de atendimento?", number=WA, channel="whatsapp")
    assert harness.fake_twilio.texts(WA)[-1].splitlines()[-2:] == ["1. Sim", "2. Não"]
    await harness.sms_text(
        "sorry, I don't speak Portuguese. I want to talk to a person", number=WA, channel="whatsapp"
    )
    texts = harness.fake_twilio.texts(WA)
    assert "Of course! I'm passing you to our team." in texts, texts[-3:]
    assert "I've opened ticket #1001" in texts[-1]


async def test_whatsapp_agent_reply_goes_back_to_whatsapp(harness: Harness) -> None:
    await harness.sms_text("quero falar com um atendente", number=WA, channel="whatsapp")
    assert (await harness.escala.desk.claim("ana", 1001)).ok
    assert (await harness.escala.desk.reply("ana", 1001, "Oi! Já estou vendo.")).ok
    await harness.delivered()
    last = harness.fake_twilio.sent(WA)[-1].fields
    assert last["Body"] == "Ana: Oi! Já estou vendo."
    assert last["From"] == WHATSAPP_FROM
    assert harness.fake_twilio.sent("+5511987650000") == []


async def test_duplicate_message_sid_is_processed_once(harness: Harness) -> None:
    for _ in range(2):
        assert (await harness.sms_text("oi", sid="SMdup")).status == 200
    inbound = [e for e in await harness.events("sms", PHONE) if e.kind == "message.in"]
    assert len(inbound) == 1


async def test_tampered_or_unsigned_webhooks_are_refused(harness: Harness) -> None:
    before = await harness.snapshot()
    fields = {"MessageSid": "SM1", "From": PHONE, "To": SMS_FROM, "Body": "atendente"}
    signature = harness.sign(PUBLIC + "/twilio/sms", fields)
    tampered = {**fields, "Body": "quero falar com um atendente agora"}
    assert (await harness.twilio_post("/twilio/sms", tampered, signature=signature)).status == 403
    assert (await harness.twilio_post("/twilio/sms", fields, signed=False)).status == 403
    # Signed over the URL the proxy forwarded to, not the public one: refused.
    local = harness.sign(str(harness.http.make_url("/twilio/sms")), fields)
    assert (await harness.twilio_post("/twilio/sms", fields, signature=local)).status == 403
    status = {"MessageSid": "SM9", "MessageStatus": "failed", "To": PHONE}
    assert (await harness.twilio_post("/twilio/sms/status", status, signed=False)).status == 403
    await harness.delivered()
    assert await harness.snapshot() == before
    assert harness.fake_twilio.calls == []


async def test_stop_suppresses_agent_replies_until_start(harness: Harness) -> None:
    await harness.sms_text("quero falar com um atendente")
    assert (await harness.escala.desk.claim("ana", 1001)).ok
    sent_before = len(harness.fake_twilio.sent(PHONE))
    await harness.sms_text("PARAR")
    contact = await harness.store.find_contact(Identity("sms", PHONE))
    assert contact is not None and contact.opted_out
    assert (await harness.escala.desk.reply("ana", 1001, "Ainda está aí?")).ok
    await harness.delivered()
    assert len(harness.fake_twilio.sent(PHONE)) == sent_before  # nothing sent after STOP
    kinds = [e.kind for e in await harness.events("sms", PHONE)]
    assert "contact.opted_out" in kinds and EventKind.DELIVERY_FAILED in kinds

    await harness.sms_text("voltar")
    contact = await harness.store.find_contact(Identity("sms", PHONE))
    assert contact is not None and not contact.opted_out
    assert harness.fake_twilio.texts(PHONE)[-1].startswith("Pronto")
    assert (await harness.escala.desk.reply("ana", 1001, "Bem-vinda de volta")).ok
    await harness.delivered()
    assert harness.fake_twilio.texts(PHONE)[-1] == "Ana: Bem-vinda de volta"


async def test_cancelar_is_an_opt_out_on_sms(harness: Harness) -> None:
    await harness.sms_text("CANCELAR")
    contact = await harness.store.find_contact(Identity("sms", PHONE))
    assert contact is not None and contact.opted_out
    assert harness.fake_twilio.calls == []  # Twilio itself confirms opt-outs


async def test_help_is_answered(harness: Harness) -> None:
    await harness.sms_text("AJUDA")
    assert "SAIR" in harness.fake_twilio.texts(PHONE)[-1]


async def test_mms_media_gets_a_polite_reply_and_is_noted(harness: Harness) -> None:
    fields = {
        "MessageSid": harness.sid(),
        "From": PHONE,
        "To": SMS_FROM,
        "Body": "",
        "NumMedia": "1",
        "MediaUrl0": "https://api.twilio.com/media/1",
        "MediaContentType0": "image/jpeg",
    }
    assert (await harness.twilio_post("/twilio/sms", fields)).status == 200
    await harness.delivered()
    assert harness.fake_twilio.texts(PHONE) == [
        "Por enquanto eu só entendo mensagens de texto. Pode descrever por escrito?"
    ]
    assert [e.kind for e in await harness.events("sms", PHONE)] == ["message.unsupported"]


async def test_status_callbacks_are_recorded(harness: Harness) -> None:
    for state in ("sent", "delivered", "undelivered"):
        fields = {"MessageSid": "SM7", "MessageStatus": state, "To": PHONE, "ErrorCode": "30003"}
        response = await harness.twilio_post("/twilio/sms/status", fields)
        assert response.status == 204
    events = await harness.events("sms", PHONE)
    assert [(e.kind, e.data["status"]) for e in events] == [
        ("delivery.status", "delivered"),
        (EventKind.DELIVERY_FAILED, "undelivered"),
    ]


async def test_429_with_retry_after_then_success(harness: Harness) -> None:
    harness.fake_twilio.fail_next(Failure(429, retry_after=5, code=20429))
    await harness.sms_text("oi")
    assert 5.0 in harness.sleeps
    assert harness.fake_twilio.texts(PHONE), "sent after the retry"
    assert not [e for e in await harness.events("sms", PHONE) if e.kind == "delivery.failed"]


async def test_500_forever_is_recorded_as_delivery_failed(harness: Harness) -> None:
    harness.fake_twilio.always = Failure(500)
    await harness.sms_text("oi")
    assert len(harness.fake_twilio.calls) == 4
    failed = [e for e in await harness.events("sms", PHONE) if e.kind == "delivery.failed"]
    assert len(failed) == 1 and "HTTP 500" in failed[0].data["reason"]


async def test_long_text_is_split_at_1600(harness: Harness) -> None:
    await harness.sms.sender.send(PHONE, OutboundMessage("palavra " * 375), "pt-BR")  # 3000
    await harness.delivered()
    texts = harness.fake_twilio.texts(PHONE)
    assert len(texts) == 2 and all(len(t) <= 1600 for t in texts)


async def test_phone_numbers_are_masked() -> None:
    assert mask("+5511900000000") == "+55119****0000"
    assert mask("whatsapp:+5511900000000") == "whatsapp:+55119****0000"
    assert ACCOUNT_SID not in mask(ACCOUNT_SID)
