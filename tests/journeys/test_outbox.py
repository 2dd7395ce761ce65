"""Issue 11: replies go through the durable outbox: stored with their turn, removed
only once the channel accepted them or they finally failed (``delivery.failed``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.app import build
from bot.clock import UuidIds, stable_id
from bot.errors import DeliveryError
from bot.models import EventKind, InboundMessage, OutboundMessage
from bot.store import Store
from channels.sending import Backoff, RetryingSender, RetryLater
from tests.journeys.harness import Journey, RecordingChannel
from tests.waits import eventually

CONVERSATION = stable_id("cnv", "telegram", "1001")


class Port:
    """What RetryingSender needs of the core when driven by the outbox: no records."""

    async def delivery_failed(
        self, channel: str, address: str, reason: str, **data: object
    ) -> None:
        raise AssertionError("the outbox records failures, not the sender's port")

    def provider_call(self, channel: str, result: str, seconds: float) -> None:
        """Metrics: not measured here."""


async def test_a_sent_reply_leaves_the_outbox(store: Store) -> None:
    journey = Journey(store=store)
    replies = await journey.say("qual o horário de atendimento?")
    assert any("Atendemos" in r.text for r in replies)
    assert await store.outbox(CONVERSATION) == []


async def test_a_finally_failed_reply_leaves_the_outbox_as_a_delivery_failure(
    store: Store,
) -> None:
    journey = Journey(store=store)
    journey.channels["telegram"].fail_with = DeliveryError("telegram", "blocked", permanent=True)
    await journey.say("qual o horário de atendimento?")
    assert await store.outbox(CONVERSATION) == []
    failures = [
        e
        for e in await store.events(conversation_id=CONVERSATION)
        if e.kind == EventKind.DELIVERY_FAILED
    ]
    assert failures and all(e.data["reason"] == "blocked" for e in failures)
    assert failures[0].data["text"].startswith("Atendemos")


async def test_a_queueing_sender_keeps_the_reply_stored_until_the_provider_accepts(
    store: Store,
) -> None:
    journey = Journey(store=store)
    accepted: list[str] = []
    provider_up = asyncio.Event()
    attempts = 0

    async def deliver(address: str, part: str) -> None:
        nonlocal attempts
        attempts += 1
        if not provider_up.is_set():
            raise RetryLater("telegram", "503 from the provider", retry_after=0)
        accepted.append(part)

    async def render(message: OutboundMessage, locale: str) -> list[str]:
        return [message.text]

    async def wait_for_provider(seconds: float) -> None:
        provider_up.set()  # the retry's back-off: the provider is back by then

    sender: RetryingSender[str] = RetryingSender(
        "telegram",
        render=render,
        deliver=deliver,
        port=Port(),  # type: ignore[arg-type]
        backoff=Backoff(attempts=3),
        sleep=wait_for_provider,
    )
    journey.escala.outbox.register("telegram", sender)
    await journey.say("qual o horário de atendimento?")
    await sender.flush(within=60)  # the sender's worker ends after the last ack
    assert await store.outbox(CONVERSATION) == []
    assert attempts > len(accepted) >= 1
    transcript = await store.transcript(CONVERSATION)
    assert accepted == [m.text for m in transcript if m.direction.value == "bot"]


async def test_replies_another_process_stores_meanwhile_follow_without_the_safety_net(
    store: Store,
) -> None:
    """Two processes, one conversation: A holds the delivery lease, so what B stores is
    A's to send once its own replies are through. B keeps storing while A is sending B's
    first replies: A goes on to those too, at once, not when the safety-net timer fires
    a lease later (the fake clock never fires it here)."""
    a = Journey(store=store)
    b = build(a.settings, store=store, clock=a.clock, ids=UuidIds())  # its own lease token
    b.outbox.register("telegram", RecordingChannel("telegram"))
    permits = asyncio.Semaphore(0)
    accepted: list[str] = []
    entered = 0

    async def deliver(address: str, part: str) -> None:
        nonlocal entered
        entered += 1
        await permits.acquire()  # the provider answers when the test says
        accepted.append(part)

    async def render(message: OutboundMessage, locale: str) -> list[str]:
        return [message.text]

    sender: RetryingSender[str] = RetryingSender(
        "telegram",
        render=render,
        deliver=deliver,
        port=Port(),  # type: ignore[arg-type]
    )
    a.escala.outbox.register("telegram", sender)

    async def b_says(text: str, n: int) -> None:
        await b.engine.handle(
            InboundMessage("telegram", "1001", text, f"b{n}", a.clock.now(), "pt-BR")
        )

    await a.say("qual o horário de atendimento?")  # A's 2 replies wait at the provider
    await b_says("obrigado", 1)  # stored by B, under A's lease
    mine = len(await store.outbox(CONVERSATION))
    assert mine > 2, "B's replies wait in the outbox behind A's"
    permits.release()
    permits.release()
    await eventually(lambda: len(accepted) == 2 and entered == 3, "A is sending B's replies")
    await b_says("qual o horário de atendimento?", 2)  # more from B, meanwhile
    for _ in range(50):
        permits.release()

    async def all_sent() -> bool:
        return await store.outbox(CONVERSATION) == []

    await eventually(all_sent, "every stored reply sent by A")
    transcript = await store.transcript(CONVERSATION)
    assert accepted == [m.text for m in transcript if m.direction.value == "bot"]
    assert b.outbox is not a.escala.outbox


async def test_delivery_leases_are_renewed_together_while_sends_take_long(store: Store) -> None:
    """A process delivering to many conversations renews all its delivery leases in one
    store step (one round trip on Redis), not one per conversation."""
    journey = Journey(store=store)
    outbox = journey.escala.outbox
    outbox.lease_seconds = 3.0  # renewed every second
    outbox.wait_seconds = 0  # the turn does not wait for the (stuck) provider
    provider_back = asyncio.Event()
    stuck: list[str] = []

    class SlowChannel(RecordingChannel):
        async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
            stuck.append(address)
            await provider_back.wait()
            await super().send(address, message, locale)

    channel = SlowChannel("telegram")
    outbox.register("telegram", channel)
    calls: list[tuple[list[str], list[bool]]] = []
    renew = store.renew_outboxes

    async def recorded(ids: Sequence[str], token: str, lease_seconds: float) -> list[bool]:
        renewed = await renew(ids, token, lease_seconds)
        calls.append((sorted(ids), renewed))
        return renewed

    store.renew_outboxes = recorded  # type: ignore[method-assign,assignment]
    addresses = ("2001", "2002", "2003")
    for address in addresses:
        await journey.say("qual o horário de atendimento?", address=address)
    await eventually(lambda: len(stuck) == len(addresses), "each first reply on its way")
    conversations = sorted(stable_id("cnv", "telegram", a) for a in addresses)
    await eventually(lambda: bool(calls), "a renewal")
    assert calls[0] == (conversations, [True, True, True]), "all three leases in one step"
    for conversation in conversations:
        assert await store.take_outbox(conversation, "another process", 30) is None
    provider_back.set()
    await eventually(lambda: len(channel.sent) == 2 * len(addresses), "all replies delivered")

    async def all_acked() -> bool:
        return all([await store.outbox(c) == [] for c in conversations])

    await eventually(all_acked, "every reply acked")
