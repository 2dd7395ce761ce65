"""What must never happen: forged requests acting, customer text pinging or linking,
a retried event relayed twice, a malformed payload crashing the server."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import pytest

from bot.models import EventKind, TicketState
from tests.slack.conftest import ANA, BRUNO, SECRET, World, blocks_text, sign

N = 1001

INJECTIONS = [
    ("<!channel> socorro", "&lt;!channel&gt; socorro"),
    ("<!here> alguém?", "&lt;!here&gt; alguém?"),
    ("fala com <@U0AAA> agora", "fala com &lt;@U0AAA&gt; agora"),
    (
        "<https://evil.example/login|Banco Seguro>",
        "&lt;https://evil.example/login|Banco Seguro&gt;",
    ),
    ("Tom & Jerry &lt;b&gt;", "Tom &amp; Jerry &amp;lt;b&amp;gt;"),
]


async def open_ticket(world: World) -> None:
    await world.customer_says("quero falar com um atendente")


@pytest.mark.parametrize(("raw", "escaped"), INJECTIONS)
async def test_customer_text_reaches_slack_inert(world: World, raw: str, escaped: str) -> None:
    # in the transcript of the card ...
    await world.customer_says(raw)
    await world.customer_says("quero falar com um atendente")
    card = blocks_text(world.card("C111")["blocks"])
    assert escaped in card
    # ... and as a thread reply once a human queue owns the conversation
    await world.customer_says(raw)
    assert world.thread("C111") == [f"*customer:* {escaped}"]
    # and nowhere, in any call, in any field, does the raw markup appear
    assert raw not in world.fake.everything_sent()


async def test_escalation_reason_and_reasons_are_escaped(world: World) -> None:
    await open_ticket(world)
    await world.slack.click("escala_claim", N, ANA)
    await world.slack.submit_escalation(N, ANA, "N2", "cliente disse <!channel> & <@U0BBB>")
    assert "cliente disse &lt;!channel&gt; &amp; &lt;@U0BBB&gt;" in world.updates("C111")[-1]
    assert "cliente disse &lt;!channel&gt; &amp; &lt;@U0BBB&gt;" in blocks_text(
        world.card("C222")["blocks"]
    )
    assert "<!channel>" not in world.fake.everything_sent()


async def test_two_agents_claim_at_once_one_wins(world: World) -> None:
    await open_ticket(world)
    (a_status, _), (b_status, _) = await asyncio.gather(
        world.slack.click("escala_claim", N, ANA), world.slack.click("escala_claim", N, BRUNO)
    )
    assert a_status == b_status == 200
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.ASSIGNED
    winner, loser = (ANA, BRUNO) if ticket.assignee == "ana" else (BRUNO, ANA)
    claimed = [u for u in world.updates("C111") if "Claimed by" in u]
    assert len(claimed) == 1 and f"Claimed by <@{winner}>" in claimed[0]
    assert world.ephemerals(winner) == []
    assert world.ephemerals(loser) == ["Not done: #1001: already claimed by someone else."]


async def test_retried_event_is_relayed_once(world: World) -> None:
    await open_ticket(world)
    await world.slack.click("escala_claim", N, ANA)
    body, _ = world.slack.event_body(ANA, "uma resposta só", world.card_ts())
    first = world.slack.headers(body, "application/json")
    retry = world.slack.headers(
        body,
        "application/json",
        **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert (await world.slack.post(body, "application/json", first))[0] == 200
    assert (await world.slack.post(body, "application/json", retry))[0] == 200
    assert sum("uma resposta só" in text for text in world.customer) == 1


@pytest.mark.parametrize("forgery", ["unsigned", "tampered", "stale", "wrong secret"])
async def test_forged_requests_are_refused(world: World, forgery: str) -> None:
    await open_ticket(world)
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": {"id": ANA},
        "api_app_id": "A0APP",
        "trigger_id": "t",
        "channel": {"id": "C111"},
        "container": {"message_ts": world.card_ts()},
        "actions": [{"action_id": "escala_claim", "value": str(N), "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    content_type = "application/x-www-form-urlencoded"
    headers = world.slack.headers(body, content_type)
    if forgery == "unsigned":
        headers = {"Content-Type": content_type}
    elif forgery == "tampered":
        body = body.replace("U0AAA", "U0BBB")
    elif forgery == "stale":
        old = str(int(time.time()) - 3600)
        signed = sign(SECRET, old, body)
        headers |= {"X-Slack-Request-Timestamp": old, "X-Slack-Signature": signed}
    else:
        ts = headers["X-Slack-Request-Timestamp"]
        signed = sign("not-the-secret", ts, body)
        headers["X-Slack-Signature"] = signed
    status, _ = await world.slack.post(body, content_type, headers)
    assert status == 401
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.QUEUED
    assert world.fake.of("chat.update") == [] and world.fake.of("chat.postEphemeral") == []


async def test_forged_malformed_body_is_401_not_400(world: World) -> None:
    status, _ = await world.slack.post(
        "payload=%7Bnot-json", "application/x-www-form-urlencoded", {}
    )
    assert status == 401


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded", 400),
        ("{not json", "application/json", 400),
        (
            urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}),
            "application/x-www-form-urlencoded",
            400,
        ),
        (
            urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "block_actions",
                            "user": {"id": ANA},
                            "actions": [{"action_id": "escala_claim", "value": "DROP TABLE"}],
                            "channel": {"id": "C111"},
                            "container": {},
                        }
                    )
                }
            ),
            "application/x-www-form-urlencoded",
            404,
        ),
        (
            urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "block_actions",
                            "user": {"id": ANA},
                            "actions": [{"action_id": "escala_unknown", "value": "1001"}],
                            "channel": {"id": "C111"},
                            "container": {},
                        }
                    )
                }
            ),
            "application/x-www-form-urlencoded",
            404,
        ),
        (
            urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "view_submission",
                            "user": {"id": ANA},
                            "view": {"callback_id": "escala_escalate_view", "state": {}},
                        }
                    )
                }
            ),
            "application/x-www-form-urlencoded",
            400,
        ),
        (
            urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "view_submission",
                            "user": {"id": ANA},
                            "view": {
                                "type": "modal",
                                "callback_id": "escala_escalate_view",
                                "state": {},
                            },
                        }
                    )
                }
            ),
            "application/x-www-form-urlencoded",
            404,
        ),
        (json.dumps({"type": "event_callback", "event": "message"}), "application/json", 400),
        (
            json.dumps(
                {
                    "type": "event_callback",
                    "team_id": "T0TEAM",
                    "event": {
                        "type": "message",
                        "channel": "C111",
                        "user": ANA,
                        "text": 5,
                        "thread_ts": 7,
                    },
                }
            ),
            "application/json",
            200,
        ),
        (
            urlencode({"payload": json.dumps({"type": "something_else"})}),
            "application/x-www-form-urlencoded",
            404,
        ),
        ("", "application/json", 404),
        (json.dumps([1, 2, 3]), "application/json", 400),
    ],
)
async def test_malformed_payloads_get_4xx(
    world: World, body: str, content_type: str, expected: int
) -> None:
    await open_ticket(world)
    status, _ = await world.slack.post(body, content_type)
    assert status == expected
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.QUEUED


async def test_oversized_body_is_refused(world: World) -> None:
    status, _ = await world.slack.post("x" * (300 * 1024), "application/json")
    assert status == 413


async def test_card_rate_limited_once_is_posted(world: World) -> None:
    world.fake.rate_limit_once.add("chat.postMessage")
    await open_ticket(world)
    methods = [c.method for c in world.fake.calls if c.method.startswith("chat.postMessage")]
    assert methods == ["chat.postMessage:429", "chat.postMessage"]
    assert "Ticket #1001" in world.card()["text"]


async def test_card_that_cannot_be_posted_is_retried_and_recorded(world: World) -> None:
    world.fake.broken["chat.postMessage"] = 503
    await open_ticket(world)
    attempts = [c for c in world.fake.calls if c.method == "chat.postMessage:503"]
    assert len(attempts) == 3  # the first try and two retries
    store = world.journey.escala.store
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.QUEUED
    assert [t.id for t in await store.queue("N1")] == [ticket.id]
    failed = [
        e for e in await store.events(ticket_id=ticket.id) if e.kind == EventKind.DELIVERY_FAILED
    ]
    assert failed and failed[0].data["workspace"] == "SlackWorkspace"
    assert failed[0].data["what"] == "ticket_opened"
    assert "#1001" in world.customer[-1]  # the customer was still told their ticket
