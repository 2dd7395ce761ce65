"""``Conversation.changed`` is ``dataclasses.replace``, faster (issue 18): same result
for every field, the original untouched, and its typed list of fields kept equal to the
class's, so a field added to one and not the other fails here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

import pytest

from bot.models import Choice, Conversation, ConversationChanges
from flows.position import FlowPosition

T0 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
CONVERSATION = Conversation(
    id="cnv_1",
    contact_id="ct_1",
    channel="telegram",
    address="42",
    locale="pt-BR",
    created_at=T0,
    updated_at=T0,
    flow=FlowPosition("greeting", "menu"),
    pending_choices=(Choice("yes", "Sim"),),
    tags=("vip",),
)
#: A new value for every field.
CHANGES: dict[str, Any] = {
    "id": "cnv_2",
    "contact_id": "ct_2",
    "channel": "whatsapp",
    "address": "+5511999990000",
    "locale": "en",
    "created_at": T0 - timedelta(days=1),
    "updated_at": T0 + timedelta(minutes=5),
    "ticket_id": "tkt_1",
    "last_ticket_id": "tkt_0",
    "flow": None,
    "pending_choices": (),
    "failed_attempts": 2,
    "tags": ("vip", "late"),
    "csat_ticket_id": "tkt_0",
    "csat_retries": 1,
    "csat_comment_ticket_id": "tkt_0",
}


def test_the_typed_changes_list_every_field_with_its_type() -> None:
    fields = get_type_hints(Conversation)
    assert get_type_hints(ConversationChanges) == fields
    assert set(CHANGES) == set(fields)


def test_changed_may_stand_for_replace() -> None:
    """What makes skipping ``__init__`` equivalent: nothing runs after it, and every
    field is set by it."""
    assert not hasattr(Conversation, "__post_init__")
    assert all(f.init for f in dataclasses.fields(Conversation))


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_changing_one_field_is_what_replace_gives(name: str) -> None:
    value = CHANGES[name]
    changed = CONVERSATION.changed(**{name: value})
    replaced = dataclasses.replace(CONVERSATION, **{name: value})
    assert changed == replaced
    assert type(changed) is Conversation
    assert getattr(changed, name) == value
    assert CONVERSATION.ticket_id is None and CONVERSATION.locale == "pt-BR"  # untouched


def test_changing_several_fields_at_once() -> None:
    changed = CONVERSATION.changed(flow=None, failed_attempts=0, pending_choices=())
    assert changed == dataclasses.replace(
        CONVERSATION, flow=None, failed_attempts=0, pending_choices=()
    )
    assert CONVERSATION.changed() == CONVERSATION
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.locale = "en"  # type: ignore[misc]
