"""Who may do what from Slack: refusals go to the agent who tried, and only to them."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.errors import ConfigError
from bot.models import Availability, TicketState
from channels.slack.app import slack_plugin
from channels.slack.config import load_slack_config
from tests.journeys.harness import Journey
from tests.slack.conftest import (
    ANA,
    BRUNO,
    CARLA,
    STRANGER,
    World,
    slack_settings,
    world_for,
)
from tests.slack.fake_slack import FakeSlack

N = 1001


async def open_and_claim(world: World, agent: str = ANA) -> str:
    await world.customer_says("quero falar com um atendente")
    await world.slack.click("escala_claim", N, agent)
    return world.card_ts()


async def test_reply_from_someone_who_has_not_claimed_is_not_relayed(world: World) -> None:
    ts = await open_and_claim(world)
    before = list(world.customer)
    await world.slack.thread_reply(BRUNO, "eu respondo!", ts)
    assert world.customer == before
    (hint,) = world.fake.of("chat.postEphemeral")
    assert hint["user"] == BRUNO and hint["channel"] == "C111" and hint["thread_ts"] == ts
    assert "Not sent to the customer: #1001 is assigned to ana; claim it first" in hint["text"]
    assert "`//`" in hint["text"]


async def test_stranger_is_told_they_are_not_an_agent(world: World) -> None:
    ts = await open_and_claim(world)
    await world.slack.thread_reply(STRANGER, "oi", ts)
    await world.slack.click("escala_resolve", N, STRANGER)
    assert [e.startswith("You are not an Escala agent") for e in world.ephemerals(STRANGER)] == [
        True,
        True,
    ]
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.state is TicketState.ASSIGNED


async def test_agent_cannot_claim_a_tier_they_do_not_work(world: World) -> None:
    await world.customer_says("quero falar com um atendente")
    await world.slack.click("escala_claim", N, CARLA)
    assert world.ephemerals(CARLA) == ["Not done: #1001 is in N1; Carla works N3."]
    assert world.fake.of("chat.update") == []


async def test_bot_posts_edits_and_top_level_messages_are_ignored(world: World) -> None:
    ts = await open_and_claim(world)
    before = list(world.customer)
    for extra in ({"subtype": "message_changed"}, {"bot_id": "B0BOT"}):
        body, _ = world.slack.event_body(ANA, "não mande", ts, **extra)
        assert (await world.slack.post(body, "application/json"))[0] == 200
    body, _ = world.slack.event_body(ANA, "não mande", None)  # top level, not a thread
    assert (await world.slack.post(body, "application/json"))[0] == 200
    body, _ = world.slack.event_body(ANA, "não mande", ts, channel="C999")  # not a tier's
    assert (await world.slack.post(body, "application/json"))[0] == 200
    assert world.customer == before
    assert world.fake.of("chat.postEphemeral") == []
    # "also send to channel" is still a reply in the thread
    body, _ = world.slack.event_body(ANA, "mande esta", ts, subtype="thread_broadcast")
    assert (await world.slack.post(body, "application/json"))[0] == 200
    assert "mande esta" in world.customer[-1]


async def test_escalation_without_reason_keeps_the_modal_open(world: World) -> None:
    await open_and_claim(world)
    status, text = await world.slack.submit_escalation(N, ANA, "N2", "   ")
    assert status == 200
    answer = json.loads(text)
    assert answer["response_action"] == "errors" and "reason" in answer["errors"]
    status, text = await world.slack.submit_escalation(N, ANA, None, "porque sim")
    assert "tier" in json.loads(text)["errors"]
    ticket = await world.journey.escala.desk.ticket(N)
    assert ticket is not None and ticket.tier == "N1"


async def test_escalation_by_someone_else_is_refused(world: World) -> None:
    await open_and_claim(world)
    await world.slack.submit_escalation(N, CARLA, "N3", "quero")
    assert world.ephemerals(CARLA) == ["Not done: #1001: claim it before escalating."]
    assert not [c for c in world.fake.of("chat.postMessage") if c["channel"] == "C333"]


async def test_slash_command_queue_next_ticket_help(world: World) -> None:
    await world.customer_says("quero falar com um atendente")
    world.journey.clock.advance(minutes=20)

    async def ask(user: str, text: str) -> str:
        await world.slack.command(user, text)
        answer = world.fake.of("response_url")[-1]
        assert answer["response_type"] == "ephemeral"
        return str(answer["text"])

    queue = await ask(ANA, "queue")
    assert "*N1*: 1 waiting, oldest waiting 20 min :warning: over the 15 min SLA" in queue
    assert "*N2*: 0 waiting" in queue
    nxt = await ask(ANA, "next")
    assert nxt.startswith("#1001 claimed by Ana. <https://escala.slack.com/archives/C111/p")
    assert "Claimed by <@U0AAA>" in world.updates()[-1]
    assert (await ask(ANA, "next")) == "Nothing claimed: no ticket waiting in N1."
    status = await ask(BRUNO, "ticket 1001")
    assert status.startswith("#1001: assigned in N1, normal, with <@U0AAA>. <https://")
    assert await ask(BRUNO, "ticket #42") == "No ticket #42."
    assert "*/escala queue*" in await ask(BRUNO, "help")
    assert "*/escala queue*" in await ask(BRUNO, "")
    unknown = await ask(BRUNO, "<!channel> pls")
    assert unknown.startswith("Unknown command `&lt;!channel&gt; pls`")
    assert (await ask(STRANGER, "queue")).startswith("You are not an Escala agent")


async def test_routes_in_socket_mode_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-x")
    settings = slack_settings(mode="socket")
    plugin = slack_plugin(load_slack_config(settings), Journey(settings).escala.edge)
    assert plugin.name == "slack" and plugin.routes() == ()


async def test_start_refuses_a_bad_token(world: World) -> None:
    world.fake.refuse["auth.test"] = "invalid_auth"
    with pytest.raises(ConfigError) as error:
        await world.slack.plugin.start()
    assert error.value.place == "slack.bot_token_env"
    assert "invalid_auth" in error.value.reason


async def test_sensitive_tickets_go_to_the_tiers_private_channel(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = slack_settings(private_channels={"N1": "G0PRIV"})
    async with world_for(settings, fake, monkeypatch) as world:
        await world.customer_says("tem uma cobrança errada no meu cartão de crédito")
        (card,) = world.fake.of("chat.postMessage")
        assert card["channel"] == "G0PRIV"
        # the private channel works like the tier's own: claim, then reply in its thread
        await world.slack.click("escala_claim", N, ANA)
        ts = world.card_ts("G0PRIV")
        await world.slack.thread_reply(ANA, "Vou verificar a cobrança.", ts, channel="G0PRIV")
        assert world.customer[-1] == "Ana: Vou verificar a cobrança."
        await world.customer_says("foi uma compra de ontem")  # into the private thread
        assert world.thread("G0PRIV")[-1].endswith("foi uma compra de ontem")
        assert all(c["channel"] == "G0PRIV" for c in world.fake.of("chat.postMessage"))


def test_a_private_channel_cannot_be_an_open_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s" * 16)
    settings = slack_settings(private_channels={"N1": "C222"})
    with pytest.raises(ConfigError) as raised:
        load_slack_config(settings)
    assert raised.value.place == "slack.private_channels.N1"
    assert "also a tier's open channel" in raised.value.reason


async def test_a_file_shared_in_the_thread_is_not_sent_and_the_agent_is_told(
    world: World,
) -> None:
    ts = await open_and_claim(world)
    before = len(world.customer)
    files = [{"id": "F1", "name": "boleto.pdf", "url_private": "https://files.slack.com/x"}]
    body, _ = world.slack.event_body(
        ANA, "segue a segunda via", ts, subtype="file_share", files=files
    )
    await world.slack.post(body, "application/json")
    body, _ = world.slack.event_body(ANA, "", ts, subtype="file_share", files=files)
    await world.slack.post(body, "application/json")

    assert world.customer[before:] == ["Ana: segue a segunda via"]
    assert "files.slack.com" not in "".join(world.customer)
    hints = world.ephemerals(ANA)
    assert len(hints) == 2 and all(
        h.startswith("Files are not sent to the customer") for h in hints
    )


async def test_an_edited_reply_is_not_relayed_again_and_the_agent_is_told(world: World) -> None:
    ts = await open_and_claim(world)
    await world.slack.thread_reply(ANA, "Seu pedido chega amanha", ts)
    sent = list(world.customer)

    def changed(old: str, new: str, **nested: object) -> str:
        message = {"type": "message", "user": ANA, "text": new, "ts": "1700000200.000001"}
        body, _ = world.slack.event_body(
            ANA,
            "",
            None,
            subtype="message_changed",
            message={**message, "thread_ts": ts, **nested},
            previous_message={**message, "text": old},
        )
        return body

    await world.slack.post(
        changed("Seu pedido chega amanha", "Seu pedido chega amanhã"), "application/json"
    )
    await world.slack.post(changed("link", "link"), "application/json")  # an unfurl
    await world.slack.post(changed("// nota", "// nota corrigida"), "application/json")
    await world.slack.post(changed("a", "b", bot_id="B1"), "application/json")

    assert world.customer == sent
    assert world.ephemerals(ANA) == [
        "Edits are not relayed: the customer already has your first version. "
        "Send the correction as a new reply."
    ]


async def test_slash_command_sets_availability_and_routes(world: World) -> None:
    """Issue 13: ``/escala away|online`` is stored (it decides who is offered tickets);
    ``/escala route`` is the router's action (refused to a resolver here)."""

    async def ask(user: str, text: str) -> str:
        await world.slack.command(user, text)
        return str(world.fake.of("response_url")[-1]["text"])

    assert await ask(ANA, "away") == "Ana is away."
    assert await world.journey.desk.availability("ana") is Availability.AWAY
    assert await ask(ANA, "online") == "Ana is online."
    assert await world.journey.escala.store.availability("ana") is Availability.ONLINE
    await world.customer_says("quero falar com um atendente")
    refused = await ask(ANA, "route 1001 N2 priority=high")
    assert refused == "Not done: Ana does not route in N1."
    assert (
        await ask(ANA, "route 1001 N7")
        == "Not done: route: did not understand 'N7' (tiers: N1, N2, N3)."
    )
    assert "*/escala away*" in await ask(ANA, "help")


async def test_slash_command_stats_shows_the_kpis_of_the_last_days(world: World) -> None:
    """Issue 14: ``/escala stats [7d|30d]``, the same figures as ``escala report``."""
    await world.customer_says("quero falar com um atendente")
    await world.slack.click("escala_claim", N, ANA)
    world.journey.clock.advance(minutes=12)
    await world.journey.desk.reply("ana", N, "Olá")
    await world.journey.desk.resolve("ana", N)
    world.journey.clock.advance(minutes=1)

    async def ask(text: str) -> str:
        await world.slack.command(ANA, text)
        return str(world.fake.of("response_url")[-1]["text"])

    week = await ask("stats")
    lines = week.splitlines()
    assert lines[0] == "*KPIs, last 7 days*"
    assert lines[1] == "conversations 1, tier-0 deflection 0%, tickets 1, escalation rate 0%"
    assert lines[2].startswith("N1: opened 1, escalated in 0, resolved 1, first-contact 1/1, ")
    assert "first response 12 min" in lines[2]
    assert (await ask("stats 30d")).splitlines()[0] == "*KPIs, last 30 days*"
    world.journey.clock.advance(days=8)
    assert "tickets 0" in (await ask("stats 7d")).splitlines()[1]
    assert (await ask("stats forever")).startswith("Unknown command `stats forever`")


async def test_a_replayed_signed_command_is_taken_once(world: World) -> None:
    """Issue 11 (7): the same signed ``/escala next`` sent three more times inside
    Slack's 5-minute window assigns one ticket, not four."""
    for n in range(4):
        await world.journey.say("quero falar com um atendente", address=f"200{n}")
    body = urlencode(
        {
            "command": "/escala",
            "text": "next",
            "user_id": BRUNO,
            "team_id": "T0TEAM",
            "channel_id": "C111",
            "trigger_id": "trigger-replayed",
            "api_app_id": "A0APP",
            "response_url": f"{world.fake.url}respond/1",
        }
    )
    headers = world.slack.headers(body, "application/x-www-form-urlencoded")
    for _ in range(4):
        status, _ = await world.slack.post(body, "application/x-www-form-urlencoded", headers)
        assert status == 200
    assert len(await world.journey.desk.store.assigned("bruno")) == 1
