"""Telegram journeys over HTTP: what the customer sees on the fake Bot API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.clock import stable_id
from bot.models import EventKind, Identity, OutboundMessage
from tests.channels.fakes import Failure
from tests.channels.harness import Harness, message
from tests.waits import eventually

CHAT = 4242


async def test_kb_answer_with_buttons_and_a_button_press(harness: Harness) -> None:
    response = await harness.telegram_text("Qual o horário de atendimento de vocês?")
    assert response.status == 200
    sent = harness.fake_telegram.sent(CHAT)
    assert sent[0].fields["text"].startswith("Atendemos de segunda a sexta, das 8h às 20h")
    assert "parse_mode" not in sent[0].fields  # customer-facing text is data
    buttons = harness.fake_telegram.buttons(sent[-1])
    assert [label for label, _ in buttons] == ["Sim", "Não"]

    no = dict(buttons)["Não"]
    press = {
        "update_id": harness.update_id(),
        "callback_query": {
            "id": "cbq-1",
            "from": {"id": CHAT, "is_bot": False, "first_name": "Rita", "language_code": "pt"},
            "chat_instance": "ci",
            "data": no,
            "message": {
                **message(CHAT, text=sent[-1].fields["text"]),
                "reply_markup": json.loads(sent[-1].fields["reply_markup"]),
            },
        },
    }
    assert (await harness.telegram_post(press)).status == 200
    await harness.delivered()
    await harness.telegram.stop()  # waits for the callback answer in the background
    answered = [c for c in harness.fake_telegram.calls if c.method == "answerCallbackQuery"]
    assert [c.fields["callback_query_id"] for c in answered] == ["cbq-1"]
    # "Não" (it did not help) hands off: the customer gets a ticket number.
    assert "#1001" in harness.fake_telegram.texts(CHAT)[-1]
    transcript = await harness.transcript("telegram", str(CHAT))
    assert "Não" in [m.text for m in transcript]


async def test_long_choice_ids_are_mapped_through_the_store(harness: Harness) -> None:
    long_id = "kb:" + "x" * 80
    data = await harness.telegram._callback_data(long_id)
    assert len(data.encode()) <= 64
    assert await harness.telegram._choice_id(data) == long_id
    assert await harness.telegram._choice_id("kb:short") == "kb:short"


async def test_wrong_or_missing_secret_is_refused_and_changes_nothing(harness: Harness) -> None:
    before = await harness.snapshot()
    update = {"update_id": 1, "message": message(CHAT, text="quero falar com um atendente")}
    assert (await harness.telegram_post(update, secret="wrong")).status == 403
    assert (await harness.telegram_post(update, secret=None)).status == 403
    await harness.delivered()
    assert await harness.snapshot() == before
    assert harness.fake_telegram.calls == []


async def test_duplicate_update_is_processed_once(harness: Harness) -> None:
    update_id = harness.update_id()
    for _ in range(2):
        response = await harness.telegram_text("oi", update_id=update_id)
        assert response.status == 200
    inbound = [e for e in await harness.events("telegram", str(CHAT)) if e.kind == "message.in"]
    assert len(inbound) == 1
    greeting = harness.fake_telegram.texts(CHAT)
    await harness.telegram_text("oi", update_id=update_id)
    assert harness.fake_telegram.texts(CHAT) == greeting


async def test_start_command_greets_in_the_user_language(harness: Harness) -> None:
    await harness.telegram_text("/start", lang="en-US")
    texts = harness.fake_telegram.texts(CHAT)
    assert texts, "the greeting was not sent"
    contact = await harness.store.find_contact(Identity("telegram", str(CHAT)))
    assert contact is not None and contact.locale == "en"


async def test_photo_gets_a_polite_reply_and_is_noted(harness: Harness) -> None:
    photo = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    update = {"update_id": harness.update_id(), "message": message(CHAT, photo=photo)}
    assert (await harness.telegram_post(update)).status == 200
    assert (await harness.telegram_post(update)).status == 200  # redelivered: once
    await harness.delivered()
    assert harness.fake_telegram.texts(CHAT) == [
        "Por enquanto eu só entendo mensagens de texto. Pode descrever por escrito?"
    ]
    noted = [e for e in await harness.events("telegram", str(CHAT))]
    assert [(e.kind, e.data["media"]) for e in noted] == [("message.unsupported", "photo")]


async def test_group_edited_channel_and_service_updates_are_ignored(harness: Harness) -> None:
    before = await harness.snapshot()
    updates: list[dict[str, Any]] = [
        {"update_id": 1, "message": message(-100, chat_type="group", text="atendente")},
        {"update_id": 2, "edited_message": message(CHAT, text="editado", edit_date=1)},
        {"update_id": 3, "channel_post": {**message(-200, chat_type="channel", text="x")}},
        {"update_id": 4, "message": message(CHAT, new_chat_title="t")},
        {"update_id": 5},
    ]
    for update in updates:
        assert (await harness.telegram_post(update)).status == 200
    await harness.delivered()
    assert harness.fake_telegram.calls == []
    assert await harness.snapshot() == before


async def test_long_text_is_split_at_4096(harness: Harness) -> None:
    line = "palavra " * 99 + "\n"  # 793 characters a line
    await harness.telegram.sender.send(str(CHAT), _out(line * 7), "pt-BR")
    await harness.delivered()
    texts = harness.fake_telegram.texts(CHAT)
    assert len(texts) == 2
    assert all(len(t) <= 4096 for t in texts)
    assert " ".join(" ".join(texts).split()) == " ".join((line * 7).split())  # nothing lost


async def test_429_retry_after_is_honoured(harness: Harness) -> None:
    harness.fake_telegram.fail_next(Failure(429, retry_after=7, description="Too Many Requests"))
    await harness.telegram_text("oi")
    assert 7 in harness.sleeps
    assert harness.fake_telegram.texts(CHAT), "delivered after the retry"
    failed = [e for e in await harness.events("telegram", str(CHAT)) if e.kind == "delivery.failed"]
    assert failed == []


async def test_server_error_forever_is_recorded_as_delivery_failed(harness: Harness) -> None:
    harness.fake_telegram.always = Failure(500, description="Internal Server Error")
    await harness.telegram_text("oi")
    attempts = harness.fake_telegram.sent(CHAT)
    assert len(attempts) == 4  # bounded (the harness allows 4 attempts)
    assert len(harness.sleeps) == 3
    failed = [e for e in await harness.events("telegram", str(CHAT)) if e.kind == "delivery.failed"]
    assert failed and "after 4 attempts" in failed[0].data["reason"]


async def test_blocked_bot_marks_the_contact_unreachable(harness: Harness) -> None:
    harness.fake_telegram.always = Failure(
        403, description="Forbidden: bot was blocked by the user"
    )
    await harness.telegram_text("oi")
    assert len(harness.fake_telegram.sent(CHAT)) == 1  # not retried
    contact = await harness.store.find_contact(Identity("telegram", str(CHAT)))
    assert contact is not None and contact.unreachable
    # Further messages are not even attempted; the outbox records why.
    harness.fake_telegram.always = None
    conversation = await harness.store.get_conversation(stable_id("cnv", "telegram", str(CHAT)))
    assert conversation is not None
    await harness.escala.outbox.send(conversation, _out("olá?"))
    await harness.delivered()
    assert len(harness.fake_telegram.sent(CHAT)) == 1
    kinds = [e.kind for e in await harness.events("telegram", str(CHAT))]
    assert kinds.count(EventKind.DELIVERY_FAILED) >= 2
    # Writing again means they unblocked us.
    await harness.telegram_text("oi de novo")
    contact = await harness.store.find_contact(Identity("telegram", str(CHAT)))
    assert contact is not None and not contact.unreachable


async def test_messages_to_one_chat_arrive_in_order(harness: Harness) -> None:
    harness.fake_telegram.fail_next(Failure(500), Failure(429, retry_after=1))
    for n in range(5):
        await harness.telegram.sender.send(str(CHAT), _out(f"m{n}"), "pt-BR")
    await harness.delivered()
    assert harness.fake_telegram.texts(CHAT)[-5:] == [f"m{n}" for n in range(5)]


def _out(text: str) -> OutboundMessage:
    return OutboundMessage(text)


async def test_polling_mode_serves_the_same_journey(harness: Harness) -> None:
    from dataclasses import replace as with_

    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from channels.telegram.adapter import TelegramChannel
    from tests.channels.harness import TOKEN

    session = AiohttpSession(api=TelegramAPIServer.from_base(harness.fake_telegram.url))
    polling = TelegramChannel(
        with_(harness.telegram_config, mode="polling"),
        harness.escala.edge,
        Bot(TOKEN, session=session),
        sleep=harness.sleep,
        poll_timeout=0,
    )
    assert polling.routes() == ()
    await polling.start()
    harness.fake_telegram.updates.put_nowait(
        {"update_id": 9, "message": message(CHAT, text="quero falar com um atendente")}
    )
    await eventually(lambda: bool(harness.fake_telegram.texts(CHAT)), "a reply by polling")
    await polling.stop()
    assert "#1001" in harness.fake_telegram.texts(CHAT)[-1]
    assert harness.fake_telegram.calls[0].method == "deleteWebhook"


async def test_api_base_is_where_sends_go(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import build
    from bot.errors import ConfigError
    from bot.settings import default_settings
    from bot.store import MemoryStore
    from channels.telegram.adapter import TelegramChannel
    from channels.telegram.config import parse_telegram

    monkeypatch.setenv("ESCALA_TEST_TG_TOKEN", "123456:TEST-token")
    monkeypatch.setenv("ESCALA_TEST_TG_SECRET", "s3cret-long-enough")
    table = {"token_env": "ESCALA_TEST_TG_TOKEN", "secret_token_env": "ESCALA_TEST_TG_SECRET"}
    config = parse_telegram("f.toml", {**table, "api_base": harness.fake_telegram.url + "/"}, "en")
    assert config.api_base == harness.fake_telegram.url
    channel = TelegramChannel.from_config(
        config, build(default_settings(), store=MemoryStore()).edge
    )
    await channel.sender.send(str(CHAT), _out("via the local Bot API server"), "en")
    await channel.stop()
    assert harness.fake_telegram.texts(CHAT) == ["via the local Bot API server"]
    for bad in ("127.0.0.1:8081", "ftp://api.example", "http://", "http://h:99999"):
        with pytest.raises(ConfigError) as error:
            parse_telegram("f.toml", {**table, "api_base": bad}, "en")
        assert error.value.place == "channels.telegram.api_base", bad


VIP_RULE = """
[[rule]]
name = "partner-link"
reason = "Came through the partner deep link"
tier = "N2"
handoff = false
[rule.when]
contact = { start_payload = ["partner_vip"] }
"""


async def test_start_payload_is_kept_as_a_contact_attribute_for_routing(
    harness: Harness, tmp_path: Path
) -> None:
    from dataclasses import replace as with_

    from bot.triage import load_triage

    rules = tmp_path / "routing.toml"
    rules.write_text(VIP_RULE)
    settings = harness.escala.settings
    triage = load_triage(rules, settings.tiers, settings.business_hours)
    holder = harness.escala.content.holder  # a newer content version, with the VIP rule
    holder.swap(with_(holder.current, triage=triage, version=holder.current.version + 1))

    await harness.telegram_text("/start", chat_id=1111)
    await harness.telegram_text("oi")  # a contact already known: the payload still lands
    before = len(harness.fake_telegram.texts(CHAT))
    await harness.telegram_text("/start partner_vip")
    greeting = harness.fake_telegram.texts(1111)
    assert harness.fake_telegram.texts(CHAT)[before:] == greeting
    contact = await harness.store.find_contact(Identity("telegram", str(CHAT)))
    assert contact is not None and contact.attributes["start_payload"] == "partner_vip"

    await harness.telegram_text("quero falar com um atendente")
    ticket = await harness.store.find_ticket(1001)
    assert ticket is not None and ticket.tier == "N2"
    assert "Came through the partner deep link" in ticket.reasons


@pytest.mark.parametrize("payload", ["../x", "a" * 65, "vip extra", "<b>"])
async def test_malformed_start_payload_is_not_kept(harness: Harness, payload: str) -> None:
    await harness.telegram_text(f"/start {payload}")
    assert harness.fake_telegram.texts(CHAT), "still the greeting"
    contact = await harness.store.find_contact(Identity("telegram", str(CHAT)))
    assert contact is not None and "start_payload" not in contact.attributes


async def test_blank_text_is_not_a_server_error(harness: Harness) -> None:
    assert (await harness.telegram_text("   ")).status == 200
