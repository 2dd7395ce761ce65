"""Media and carrier keywords go through the engine like text (customer-channels issue):
the conversation's lock and one dedupe, and media reaches the agents while a human owns
the conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import pytest
from aiohttp import ClientResponse

from bot.clock import stable_id
from bot.models import Contact, Direction, Identity
from bot.store import Lease, MemoryStore
from bot.store.base import TurnStart
from channels.slack.config import SlackConfig
from channels.slack.workspace import SlackWorkspace, web_client
from tests.channels.harness import SMS_FROM, Harness, message
from tests.slack.fake_slack import FakeSlack

CHAT = 4242
PHONE = "+5511912340000"
TEXT_ONLY = "Por enquanto eu só entendo mensagens de texto. Pode descrever por escrito?"
PHOTO = [{"file_id": "AgAD-secret-file-id", "file_unique_id": "u", "width": 1, "height": 1}]
MEDIA_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1"


class YieldingStore(MemoryStore):
    """A memory store that answers dedupe and contact reads after a network-like delay
    (so concurrent deliveries overlap, as they do against Redis), and counts who asked
    for a conversation's lock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock_attempts: dict[str, int] = {}

    async def is_seen(self, key: str) -> bool:
        seen = await super().is_seen(key)
        await asyncio.sleep(0.01)  # the answer on its way back
        return seen

    async def find_contact(self, identity: Identity) -> Contact | None:
        contact = await super().find_contact(identity)
        await asyncio.sleep(0)
        return contact

    async def try_lock(self, conversation_id: str, ttl_seconds: float) -> Lease | None:
        self.lock_attempts[conversation_id] = self.lock_attempts.get(conversation_id, 0) + 1
        return await super().try_lock(conversation_id, ttl_seconds)

    async def begin_turn(
        self,
        conversation_id: str,
        seen_key: str,
        identity: Identity,
        lock_ttl_seconds: float,
        recent: int = 12,
    ) -> TurnStart | None:
        self.lock_attempts[conversation_id] = self.lock_attempts.get(conversation_id, 0) + 1
        await asyncio.sleep(0.01)  # the answer on its way back
        return await super().begin_turn(
            conversation_id, seen_key, identity, lock_ttl_seconds, recent
        )


@pytest.fixture
async def yielding() -> AsyncIterator[Harness]:
    h = Harness(YieldingStore())
    await h.start()
    yield h
    await h.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()


def attach_slack(harness: Harness, fake: FakeSlack) -> None:
    config = SlackConfig(
        mode="http",
        bot_token="xoxb-test",
        channels={"N1": "C111", "N2": "C222", "N3": "C333"},
        agents={"U0AAA": "ana"},
        signing_secret="secret",
    )
    client = web_client("xoxb-test", base_url=fake.url + "api/")
    harness.escala.workspaces.add(SlackWorkspace(client, config, harness.escala.edge))


def thread(fake: FakeSlack) -> list[str]:
    """What agents read in ticket threads (replies under a card)."""
    return [str(a["text"]) for a in fake.of("chat.postMessage") if "thread_ts" in a]


def photo_update(harness: Harness, update_id: int | None = None, **more: Any) -> dict[str, Any]:
    return {
        "update_id": update_id if update_id is not None else harness.update_id(),
        "message": message(CHAT, photo=PHOTO, **more),
    }


def sms_fields(harness: Harness, body: str, sid: str = "", **more: str) -> dict[str, str]:
    return {
        "MessageSid": sid or harness.sid(),
        "From": PHONE,
        "To": SMS_FROM,
        "Body": body,
        "NumMedia": "0",
        **more,
    }


MMS = {"NumMedia": "1", "MediaUrl0": MEDIA_URL, "MediaContentType0": "image/jpeg"}


# -- one lock, one dedupe -------------------------------------------------------------------

Send = Callable[[Harness], Coroutine[Any, Any, ClientResponse]]


async def _telegram_photo(h: Harness) -> ClientResponse:
    return await h.telegram_post(photo_update(h, update_id=77))


def _sms(body: str, **more: str) -> Send:
    async def send(h: Harness) -> ClientResponse:
        return await h.twilio_post("/twilio/sms", sms_fields(h, body, sid="SMsame", **more))

    return send


async def _opted_out(h: Harness) -> bool:
    contact = await h.store.find_contact(Identity("sms", PHONE))
    return contact is not None and contact.opted_out


CASES: Mapping[str, tuple[str, str, Send]] = {
    "telegram photo": ("telegram", str(CHAT), _telegram_photo),
    "sms help": ("sms", PHONE, _sms("AJUDA")),
    "sms stop": ("sms", PHONE, _sms("PARAR")),
    "mms": ("sms", PHONE, _sms("", **MMS)),
}
#: What one handling leaves: replies the customer sees, events recorded.
ONCE = {
    "telegram photo": (1, ["message.unsupported"]),
    "sms help": (1, []),
    "sms stop": (0, ["contact.opted_out"]),
    "mms": (1, ["message.unsupported"]),
}


def _customer_saw(h: Harness, channel: str, address: str) -> list[str]:
    if channel == "telegram":
        return h.fake_telegram.texts(address)
    return h.fake_twilio.texts(address)


@pytest.mark.parametrize("case", list(CASES))
async def test_media_and_keywords_wait_for_the_conversation_lock(
    yielding: Harness, case: str
) -> None:
    channel, address, send = CASES[case]
    store = yielding.store
    assert isinstance(store, YieldingStore)
    conversation_id = stable_id("cnv", channel, address)
    async with store.lock(conversation_id):
        attempts = store.lock_attempts[conversation_id]
        pending = asyncio.create_task(send(yielding))
        for _ in range(2000):  # until the webhook asks for the lock held here
            if store.lock_attempts[conversation_id] > attempts:
                break
            await asyncio.sleep(0.001)
        assert store.lock_attempts[conversation_id] > attempts, "the lock was never asked for"
        await asyncio.sleep(0.02)
        assert not pending.done()
        assert await store.events(conversation_id=conversation_id) == []
        assert yielding.fake_telegram.calls == [] and yielding.fake_twilio.calls == []
    response = await pending
    assert response.status == 200
    await yielding.delivered()
    # Handled once the lock is free: a reply (or, for STOP, the opt-out).
    assert _customer_saw(yielding, channel, address) or await _opted_out(yielding)


@pytest.mark.parametrize("case", list(CASES))
async def test_concurrent_redeliveries_of_media_and_keywords_are_handled_once(
    yielding: Harness, case: str
) -> None:
    channel, address, send = CASES[case]
    responses = await asyncio.gather(*(send(yielding) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    await yielding.delivered()
    replies, kinds = ONCE[case]
    assert len(_customer_saw(yielding, channel, address)) == replies
    assert [e.kind for e in await yielding.events(channel, address)] == kinds


async def test_concurrent_redeliveries_of_a_status_callback_are_recorded_once(
    yielding: Harness,
) -> None:
    fields = {"MessageSid": "SM9", "MessageStatus": "undelivered", "To": PHONE}
    responses = await asyncio.gather(
        *(yielding.twilio_post("/twilio/sms/status", fields) for _ in range(3))
    )
    assert [r.status for r in responses] == [204, 204, 204]
    events = await yielding.events("sms", PHONE)
    assert [(e.kind, e.data["status"]) for e in events] == [("delivery.failed", "undelivered")]


async def test_no_csat_after_stop_until_start(harness: Harness) -> None:
    await harness.sms_text("quero falar com um atendente")
    assert (await harness.escala.desk.claim("ana", 1001)).ok
    await harness.sms_text("SAIR")
    sent_before = len(harness.fake_twilio.calls)
    assert (await harness.escala.desk.resolve("ana", 1001)).ok
    await harness.delivered()
    assert len(harness.fake_twilio.calls) == sent_before  # no "resolved", no CSAT
    await harness.sms_text("VOLTAR")
    assert harness.fake_twilio.texts(PHONE)[-1] == (
        "Pronto, você voltará a receber nossas mensagens."
    )


async def test_start_from_someone_who_never_stopped_is_an_ordinary_message(
    harness: Harness,
) -> None:
    await harness.sms_text("start")
    kinds = [e.kind for e in await harness.events("sms", PHONE)]
    assert "message.in" in kinds and "contact.opted_in" not in kinds
    assert harness.fake_twilio.texts(PHONE)  # the bot answered it like any message


async def test_keywords_during_a_ticket_reach_the_agents_thread(
    harness: Harness, slack: FakeSlack
) -> None:
    """After STOP nothing an agent writes reaches the customer: the agent must know."""
    attach_slack(harness, slack)
    await harness.sms_text("quero falar com um atendente")
    assert (await harness.escala.desk.claim("ana", 1001)).ok
    told = len(harness.fake_twilio.texts(PHONE))

    await harness.sms_text("PARAR")
    await harness.sms_text("AJUDA")
    await harness.sms_text("VOLTAR")
    await harness.delivered()

    assert thread(slack) == [
        "*customer:* PARAR [opted out: nothing more reaches them on sms until START]",
        "*customer:* AJUDA [carrier HELP keyword: answered with the help text]",
        "*customer:* VOLTAR [opted back in on sms]",
    ]
    # the customer got no help text while opted out, then the welcome back
    assert harness.fake_twilio.texts(PHONE)[told:] == [
        "Pronto, você voltará a receber nossas mensagens."
    ]
    transcript = [m.text for m in await harness.transcript("sms", PHONE)]
    assert transcript[-3:] == [t.removeprefix("*customer:* ") for t in thread(slack)]


# -- media while a human owns the conversation ------------------------------------------------


async def test_photo_in_a_ticket_reaches_the_agents_thread(
    harness: Harness, slack: FakeSlack
) -> None:
    attach_slack(harness, slack)
    await harness.telegram_text("quero falar com um atendente")
    assert "#1001" in harness.fake_telegram.texts(CHAT)[-1]
    told = len(harness.fake_telegram.texts(CHAT))

    assert (await harness.telegram_post(photo_update(harness))).status == 200
    await harness.delivered()

    assert thread(slack) == ["*customer:* [photo]"]
    assert "AgAD-secret-file-id" not in slack.everything_sent()
    assert len(harness.fake_telegram.texts(CHAT)) == told  # no "text only" reply
    transcript = await harness.transcript("telegram", str(CHAT))
    assert (transcript[-1].direction, transcript[-1].text) == (Direction.INBOUND, "[photo]")
    kinds = [e.kind for e in await harness.events("telegram", str(CHAT))]
    assert "message.unsupported" not in kinds


async def test_document_with_a_caption_in_a_ticket_reaches_the_agents_thread(
    harness: Harness, slack: FakeSlack
) -> None:
    attach_slack(harness, slack)
    await harness.telegram_text("quero falar com um atendente")
    document = {"file_id": "BQAD-file", "file_unique_id": "d", "mime_type": "application/pdf"}
    update = {
        "update_id": harness.update_id(),
        "message": message(CHAT, document=document, caption="segue o boleto"),
    }
    assert (await harness.telegram_post(update)).status == 200
    await harness.delivered()
    assert thread(slack) == ["*customer:* segue o boleto\n[document: application/pdf]"]


async def test_mms_in_a_ticket_lists_the_media_types_without_their_urls(
    harness: Harness, slack: FakeSlack
) -> None:
    attach_slack(harness, slack)
    await harness.sms_text("quero falar com um atendente")
    told = len(harness.fake_twilio.texts(PHONE))
    media = {
        "NumMedia": "2",
        "MediaUrl0": MEDIA_URL,
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": MEDIA_URL + "2",
        "MediaContentType1": "application/pdf",
    }
    assert (
        await harness.twilio_post("/twilio/sms", sms_fields(harness, "", **media))
    ).status == 200
    await harness.delivered()
    assert thread(slack) == ["*customer:* [2 media files: image/jpeg, application/pdf]"]
    assert len(harness.fake_twilio.texts(PHONE)) == told  # no "text only" reply
    transcript = await harness.transcript("sms", PHONE)
    assert transcript[-1].text == "[2 media files: image/jpeg, application/pdf]"
    assert "api.twilio.com" not in slack.everything_sent()
    assert all("api.twilio.com" not in m.text for m in transcript)


async def test_media_outside_a_ticket_still_gets_the_text_only_reply_in_english(
    harness: Harness, slack: FakeSlack
) -> None:
    attach_slack(harness, slack)
    update = {"update_id": harness.update_id(), "message": message(CHAT, "en", voice={
        "file_id": "v", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg"})}  # fmt: skip
    assert (await harness.telegram_post(update)).status == 200
    await harness.delivered()
    assert harness.fake_telegram.texts(CHAT) == [
        "For now I only understand text messages. Could you describe it in writing?"
    ]
    assert slack.calls == []
    assert await harness.transcript("telegram", str(CHAT)) == []


async def test_lying_or_junk_media_fields_are_bounded(harness: Harness) -> None:
    junk = {"NumMedia": "1000000", "MediaContentType0": "<b>@channel</b>", "MediaUrl0": "x"}
    response = await harness.twilio_post("/twilio/sms", sms_fields(harness, "", **junk))
    assert response.status == 200
    await harness.delivered()
    assert harness.fake_twilio.texts(PHONE) == [TEXT_ONLY]
    [event] = await harness.events("sms", PHONE)
    assert (event.kind, event.data["count"], event.data["types"]) == ("message.unsupported", 10, [])
