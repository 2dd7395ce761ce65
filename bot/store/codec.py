"""JSON for the records the Redis store keeps, written out field by field.

Explicit on purpose: a renamed field is a visible change here, and the ticket field
names are also read by the Lua scripts in :mod:`bot.store.redis` (``state``,
``assignee``, ``tier``, ``priority``, ``number``, ``queued_at``, ``tier_history`` ...).

* datetimes: ISO 8601 with their offset; a naive datetime is refused.
* enums: by value.
* tuples: JSON arrays. An empty array may come back from Lua's cjson as ``{}``
  (cjson cannot tell an empty array from an empty object); both decode to ``()``.
* optional fields may be missing or ``null``; both decode to the field's default.
* ``Event.data`` must hold JSON values; tuples in it come back as lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar, cast

import orjson

from bot.models import (
    BreachAction,
    Calendar,
    Choice,
    ConsoleRole,
    ConsoleUser,
    Contact,
    Conversation,
    Direction,
    Event,
    Identity,
    Message,
    OutboxItem,
    Priority,
    SlaTerms,
    Ticket,
    TicketState,
)
from flows.position import FlowPosition

Record = Contact | Conversation | Message | Ticket | Event | ConsoleUser | OutboxItem
R = TypeVar("R", Contact, Conversation, Message, Ticket, Event, ConsoleUser, OutboxItem)


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware times only")
    return value.isoformat()


def _aware(value: datetime) -> datetime | str:
    """``value`` for :func:`to_json` to write as :func:`format_datetime` does: the
    datetime itself, which orjson writes in the same ISO 8601 form at a fifth of
    ``isoformat``'s cost (issue 18: a turn writes a dozen), or that form as text for an
    offset with seconds, which orjson would truncate, and for a subclass, which it
    refuses (a test clock's). A naive one is refused by :func:`format_datetime`."""
    offset = value.utcoffset()
    if offset is None or offset.seconds % 60 or offset.microseconds or type(value) is not datetime:
        return format_datetime(value)
    return value


def _aware_optional(value: datetime | None) -> datetime | str | None:
    return None if value is None else _aware(value)


def parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"datetime without an offset: {text!r}")
    return value


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else parse_datetime(value)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None or value == {}:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _string_map(value: Any) -> Mapping[str, str]:
    if not value:
        return MappingProxyType({})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"expected an object of strings, got {value!r}")
    return MappingProxyType(dict(value))


def _list(value: Any) -> list[Any]:
    if value is None or value == {}:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return value


# -- one pair of functions per record ------------------------------------------------


def _contact_to_dict(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "identities": [{"channel": i.channel, "address": i.address} for i in c.identities],
        "locale": c.locale,
        "name": c.name,
        "attributes": dict(c.attributes),
        "unreachable": c.unreachable,
        "opted_out": c.opted_out,
    }


def _contact_from_dict(d: dict[str, Any]) -> Contact:
    return Contact(
        id=d["id"],
        identities=tuple(Identity(i["channel"], i["address"]) for i in _list(d["identities"])),
        locale=d["locale"],
        name=d.get("name") or "",
        attributes=_string_map(d.get("attributes")),
        unreachable=bool(d.get("unreachable", False)),
        opted_out=bool(d.get("opted_out", False)),
    )


def _choices_to_list(choices: tuple[Choice, ...]) -> list[dict[str, str]]:
    return [{"id": c.id, "label": c.label} for c in choices]


def _choices_from_list(value: Any) -> tuple[Choice, ...]:
    return tuple(Choice(c["id"], c["label"]) for c in _list(value))


def _flow_to_dict(f: FlowPosition | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"flow_id": f.flow_id, "step_id": f.step_id, "vars": dict(f.vars), "retries": f.retries}


def _flow_from_dict(d: Any) -> FlowPosition | None:
    if d is None:
        return None
    return FlowPosition(
        flow_id=d["flow_id"],
        step_id=d["step_id"],
        vars=_string_map(d.get("vars")),
        retries=int(d.get("retries", 0)),
    )


def _conversation_to_dict(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "contact_id": c.contact_id,
        "channel": c.channel,
        "address": c.address,
        "locale": c.locale,
        "created_at": _aware(c.created_at),
        "updated_at": _aware(c.updated_at),
        "ticket_id": c.ticket_id,
        "last_ticket_id": c.last_ticket_id,
        "flow": _flow_to_dict(c.flow),
        "pending_choices": _choices_to_list(c.pending_choices),
        "failed_attempts": c.failed_attempts,
        "tags": list(c.tags),
        "csat_ticket_id": c.csat_ticket_id,
        "csat_retries": c.csat_retries,
        "csat_comment_ticket_id": c.csat_comment_ticket_id,
    }


def _conversation_from_dict(d: dict[str, Any]) -> Conversation:
    return Conversation(
        id=d["id"],
        contact_id=d["contact_id"],
        channel=d["channel"],
        address=d["address"],
        locale=d["locale"],
        created_at=parse_datetime(d["created_at"]),
        updated_at=parse_datetime(d["updated_at"]),
        ticket_id=d.get("ticket_id"),
        last_ticket_id=d.get("last_ticket_id"),
        flow=_flow_from_dict(d.get("flow")),
        pending_choices=_choices_from_list(d.get("pending_choices")),
        failed_attempts=int(d.get("failed_attempts", 0)),
        tags=_strings(d.get("tags")),
        csat_ticket_id=d.get("csat_ticket_id"),
        csat_retries=int(d.get("csat_retries", 0)),
        csat_comment_ticket_id=d.get("csat_comment_ticket_id"),
    )


def _message_to_dict(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "direction": m.direction.value,
        "text": m.text,
        "at": _aware(m.at),
        "author": m.author,
        "provider_message_id": m.provider_message_id,
    }


def _message_from_dict(d: dict[str, Any]) -> Message:
    return Message(
        id=d["id"],
        conversation_id=d["conversation_id"],
        direction=Direction(d["direction"]),
        text=d["text"],
        at=parse_datetime(d["at"]),
        author=d.get("author") or "",
        provider_message_id=d.get("provider_message_id") or "",
    )


def _ticket_to_dict(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "number": t.number,
        "conversation_id": t.conversation_id,
        "tier": t.tier,
        "priority": int(t.priority),
        "state": t.state.value,
        "created_at": _aware(t.created_at),
        "queued_at": _aware(t.queued_at),
        "skills": list(t.skills),
        "private": t.private,
        "reasons": list(t.reasons),
        "assignee": t.assignee,
        "first_response_at": _aware_optional(t.first_response_at),
        "replied_at": _aware_optional(t.replied_at),
        "resolved_at": _aware_optional(t.resolved_at),
        "tier_history": list(t.tier_history),
        "csat": t.csat,
        "terms": None if t.terms.empty else _terms_to_dict(t.terms),
        "breaches": list(t.breaches),
        "offered_to": t.offered_to,
        "offers": list(t.offers),
        "opened_by": t.opened_by,
    }


def _terms_to_dict(terms: SlaTerms) -> dict[str, Any]:
    def actions(value: tuple[BreachAction, ...] | None) -> list[str] | None:
        return None if value is None else [a.value for a in value]

    return {
        "calendar": None if terms.calendar is None else terms.calendar.value,
        "first_response_minutes": terms.first_response_minutes,
        "resolution_minutes": terms.resolution_minutes,
        "on_first_response_breach": actions(terms.on_first_response_breach),
        "on_resolution_breach": actions(terms.on_resolution_breach),
    }


def _terms_from_dict(d: Any) -> SlaTerms:
    if not d:  # null, or {} from cjson
        return SlaTerms()

    def actions(value: Any) -> tuple[BreachAction, ...] | None:
        return None if value is None else tuple(BreachAction(a) for a in _strings(value))

    def optional_int(value: Any) -> int | None:
        return None if value is None else int(value)

    calendar = d.get("calendar")
    return SlaTerms(
        calendar=None if calendar is None else Calendar(calendar),
        first_response_minutes=optional_int(d.get("first_response_minutes")),
        resolution_minutes=optional_int(d.get("resolution_minutes")),
        on_first_response_breach=actions(d.get("on_first_response_breach")),
        on_resolution_breach=actions(d.get("on_resolution_breach")),
    )


def _ticket_from_dict(d: dict[str, Any]) -> Ticket:
    csat = d.get("csat")
    return Ticket(
        id=d["id"],
        number=int(d["number"]),
        conversation_id=d["conversation_id"],
        tier=d["tier"],
        priority=Priority(int(d["priority"])),
        state=TicketState(d["state"]),
        created_at=parse_datetime(d["created_at"]),
        queued_at=parse_datetime(d["queued_at"]),
        skills=_strings(d.get("skills")),
        private=bool(d.get("private", False)),
        reasons=_strings(d.get("reasons")),
        assignee=d.get("assignee"),
        first_response_at=_optional_datetime(d.get("first_response_at")),
        replied_at=_optional_datetime(d.get("replied_at")),
        resolved_at=_optional_datetime(d.get("resolved_at")),
        tier_history=_strings(d.get("tier_history")),
        csat=None if csat is None else int(csat),
        terms=_terms_from_dict(d.get("terms")),
        breaches=_strings(d.get("breaches")),
        offered_to=d.get("offered_to"),
        offers=_strings(d.get("offers")),
        opened_by=d.get("opened_by"),
    )


def _event_to_dict(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": str(e.kind),
        "at": _aware(e.at),
        "conversation_id": e.conversation_id,
        "ticket_id": e.ticket_id,
        "data": dict(e.data),
    }


def _event_from_dict(d: dict[str, Any]) -> Event:
    data = d.get("data")
    return Event(
        id=d["id"],
        kind=d["kind"],
        at=parse_datetime(d["at"]),
        conversation_id=d.get("conversation_id"),
        ticket_id=d.get("ticket_id"),
        data=MappingProxyType(dict(data) if isinstance(data, dict) else {}),
    )


def _user_to_dict(u: ConsoleUser) -> dict[str, Any]:
    return {
        "login": u.login,
        "password_hash": u.password_hash,
        "role": str(u.role),
        "agent_id": u.agent_id,
        "name": u.name,
        "locale": u.locale,
    }


def _user_from_dict(d: dict[str, Any]) -> ConsoleUser:
    return ConsoleUser(
        login=d["login"],
        password_hash=d["password_hash"],
        role=ConsoleRole(d["role"]),
        agent_id=d.get("agent_id"),
        name=d.get("name") or "",
        locale=d.get("locale"),
    )


def _outbox_item_to_dict(o: OutboxItem) -> dict[str, Any]:
    # "id" first: the Lua scripts find an item by how its record starts.
    return {
        "id": o.id,
        "conversation_id": o.conversation_id,
        "channel": o.channel,
        "address": o.address,
        "locale": o.locale,
        "text": o.text,
        "choices": _choices_to_list(o.choices),
        "message_id": o.message_id,
        "ticket_id": o.ticket_id,
        "created_at": _aware_optional(o.created_at),
    }


def _outbox_item_from_dict(d: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=d["id"],
        conversation_id=d["conversation_id"],
        channel=d["channel"],
        address=d["address"],
        locale=d["locale"],
        text=d["text"],
        choices=_choices_from_list(d.get("choices")),
        message_id=d.get("message_id"),
        ticket_id=d.get("ticket_id"),
        created_at=_optional_datetime(d.get("created_at")),
    )


_ENCODERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Contact: _contact_to_dict,
    Conversation: _conversation_to_dict,
    Message: _message_to_dict,
    Ticket: _ticket_to_dict,
    Event: _event_to_dict,
    ConsoleUser: _user_to_dict,
    OutboxItem: _outbox_item_to_dict,
}
_DECODERS: dict[type[Any], Callable[[dict[str, Any]], Any]] = {
    Contact: _contact_from_dict,
    Conversation: _conversation_from_dict,
    Message: _message_from_dict,
    Ticket: _ticket_from_dict,
    Event: _event_from_dict,
    ConsoleUser: _user_from_dict,
    OutboxItem: _outbox_item_from_dict,
}


def to_json(value: Record) -> str:
    """The record as compact JSON (UTF-8 text, not ASCII-escaped)."""
    encode = _ENCODERS[type(value)]
    # orjson: compact, UTF-8, not ASCII-escaped, like json.dumps(ensure_ascii=False,
    # separators=(",", ":")), at a fraction of its cost (issue 18: 14 dumps per message).
    return orjson.dumps(encode(value), option=orjson.OPT_NON_STR_KEYS).decode()


def from_json(kind: type[R], text: str | bytes) -> R:
    """Read a record of ``kind`` back. Raises ``ValueError`` when ``text`` is not one."""
    try:
        document = orjson.loads(text)
        if not isinstance(document, dict):
            raise ValueError(f"expected a JSON object, got {type(document).__name__}")
        return cast(R, _DECODERS[kind](document))
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from e
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a stored {kind.__name__}: {e!r}") from e
