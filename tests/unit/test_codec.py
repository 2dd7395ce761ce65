"""Round trips through the store's JSON codec, and the shapes Lua's cjson hands back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.models import (
    Choice,
    Contact,
    Conversation,
    Direction,
    Event,
    EventKind,
    Identity,
    Message,
    Priority,
    Ticket,
    TicketState,
)
from bot.store.codec import Record, format_datetime, from_json, to_json
from flows.position import FlowPosition

T0 = datetime(2026, 11, 23, 13, 0, 0, 123456, tzinfo=UTC)
BRT = timezone(timedelta(hours=-3))

CONTACT = Contact(
    id="ct_1",
    identities=(Identity("telegram", "42"), Identity("whatsapp", "+5511999990000")),
    locale="en",
    name="Ana Conceição",
    attributes=MappingProxyType({"plan": "gold"}),
    unreachable=True,
    opted_out=True,
)
CONVERSATION = Conversation(
    id="cnv_1",
    contact_id="ct_1",
    channel="telegram",
    address="42",
    locale="pt-BR",
    created_at=T0,
    updated_at=T0.astimezone(BRT),
    ticket_id="tkt_1",
    last_ticket_id="tkt_0",
    flow=FlowPosition("password_reset", "ask_email", MappingProxyType({"email": "a@b.c"}), 2),
    pending_choices=(Choice("yes", "Sim 👍"), Choice("no", "Não")),
    failed_attempts=1,
    tags=("vip", "billing"),
    csat_ticket_id="tkt_0",
    csat_retries=1,
)
MESSAGE = Message(
    "msg_1", "cnv_1", Direction.AGENT, 'Olá <b>&</b> "tudo" bem?\n', T0, "ana", "tg:9"
)
TICKET = Ticket(
    id="tkt_1",
    number=1001,
    conversation_id="cnv_1",
    tier="n2",
    priority=Priority.URGENT,
    state=TicketState.RESOLVED,
    created_at=T0,
    queued_at=T0 + timedelta(minutes=1),
    skills=("billing",),
    private=True,
    reasons=("cobrança em dobro",),
    assignee="ana",
    first_response_at=T0 + timedelta(minutes=2),
    resolved_at=T0 + timedelta(minutes=3),
    tier_history=("n1", "n2"),
    csat=5,
)
EVENT = Event(
    "evt_1",
    EventKind.HANDOFF,
    T0,
    "cnv_1",
    "tkt_1",
    MappingProxyType({"number": 1001, "tier": "n2", "reasons": ["a", "b"]}),
)


@pytest.mark.parametrize(
    "record",
    [
        CONTACT,
        Contact("ct_2", ()),
        CONVERSATION,
        Conversation("cnv_2", "ct_2", "sms", "+55", "en", T0, T0),
        MESSAGE,
        TICKET,
        Ticket("tkt_2", 7, "cnv_2", "n1", Priority.LOW, TicketState.QUEUED, T0, T0),
        EVENT,
        Event("evt_2", "custom.kind", T0),
    ],
    ids=lambda r: f"{type(r).__name__}:{r.id}",
)
def test_every_record_round_trips(record: Record) -> None:
    text = to_json(record)
    kind: Any = type(record)  # one of the record types; mypy cannot narrow type(union)
    back = from_json(kind, text)
    assert back == record
    assert type(back) is type(record)
    assert to_json(back) == text


def test_values_are_stored_by_value_and_times_with_their_offset() -> None:
    document = json.loads(to_json(TICKET))
    assert document["priority"] == 3
    assert document["state"] == "resolved"
    assert document["queued_at"] == "2026-11-23T13:01:00.123456+00:00"
    conversation = json.loads(to_json(CONVERSATION))
    assert conversation["updated_at"] == "2026-11-23T10:00:00.123456-03:00"
    back = from_json(Conversation, to_json(CONVERSATION))
    assert back.updated_at.utcoffset() == timedelta(hours=-3)


class _TestClockTime(datetime):
    """A datetime subclass, as test clocks make (orjson refuses to write one)."""


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 23, 13, 0, tzinfo=UTC),  # no microseconds
        T0,
        T0.astimezone(BRT),
        datetime(2026, 11, 23, 13, 0, tzinfo=ZoneInfo("America/Sao_Paulo")),
        # offsets with seconds: ISO 8601 writes them, orjson would drop them
        datetime(2026, 11, 23, 13, 0, tzinfo=timezone(timedelta(hours=5, seconds=15))),
        datetime(1890, 1, 1, tzinfo=ZoneInfo("America/Sao_Paulo")),  # LMT: -03:06:28
        _TestClockTime(2026, 11, 23, 13, 0, 0, 7, tzinfo=UTC),
    ],
    ids=str,
)
def test_every_time_is_stored_as_isoformat_writes_it(at: datetime) -> None:
    """The Lua scripts compare stored times with ``format_datetime``'s text: however a
    record's times are written, it is that text, and they read back equal."""
    message = Message("msg_1", "cnv_1", Direction.BOT, "x", at)
    assert json.loads(to_json(message))["at"] == at.isoformat() == format_datetime(at)
    assert from_json(Message, to_json(message)).at == at


def test_a_ticket_rewritten_by_lua_cjson_reads_back() -> None:
    # cjson writes an empty array as {}, drops nothing but may reorder keys and escape "/"
    document = json.loads(to_json(TICKET))
    document.update(skills={}, reasons={}, tier_history={}, assignee=None, csat=None)
    del document["first_response_at"]
    text = json.dumps(dict(reversed(document.items()))).replace("/", "\\/")

    back = from_json(Ticket, text)

    assert back.skills == () and back.reasons == () and back.tier_history == ()
    assert back.assignee is None and back.csat is None and back.first_response_at is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_json(Message("msg_1", "cnv_1", Direction.BOT, "x", datetime(2026, 1, 1)))
    document = json.loads(to_json(MESSAGE))
    document["at"] = "2026-01-01T00:00:00"
    with pytest.raises(ValueError, match="offset"):
        from_json(Message, json.dumps(document))


@pytest.mark.parametrize("text", ["[]", '{"id": "tkt_1"}', '{"id": 1, "number": "x"}', "nope"])
def test_what_is_not_a_record_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        from_json(Ticket, text)


def test_bytes_are_read_as_utf8() -> None:
    assert from_json(Message, to_json(MESSAGE).encode()) == MESSAGE
