"""The webhook's pydantic-free reading of text messages (issue 18): whatever it reads,
aiogram reads the same; whatever it cannot read exactly, it leaves to aiogram."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aiogram.types import Update

from channels.telegram.updates import PlainText, plain_text


def text_update(**sender: Any) -> dict[str, Any]:
    user = {"id": 7, "is_bot": False, "first_name": "Rita", "language_code": "pt-br"}
    user.update(sender)
    return {
        "update_id": 901,
        "message": {
            "message_id": 55,
            "date": 1764547200,
            "chat": {"id": 7, "type": "private", "first_name": "Rita"},
            "from": {k: v for k, v in user.items() if v is not None},
            "text": "qual o horário de atendimento?",
            "entities": [],
        },
    }


def aiogram_reading(payload: Any) -> PlainText | None:
    """What the adapter read of the same payload through aiogram's models."""
    update = Update.model_validate(payload)
    message = update.message
    if message is None or message.text is None or message.from_user is None:
        return None
    user = message.from_user
    return PlainText(
        update_id=update.update_id,
        message_id=message.message_id,
        chat_id=message.chat.id,
        chat_type=message.chat.type,
        text=message.text,
        is_bot=user.is_bot,
        full_name=user.full_name,
        language_code=user.language_code,
    )


@pytest.mark.parametrize(
    "sender",
    [
        {},
        {"last_name": "Souza"},
        {"last_name": ""},
        {"language_code": None},
        {"is_bot": True},
        {"first_name": "", "last_name": "Souza"},
    ],
)
def test_a_text_message_reads_as_aiogram_reads_it(sender: dict[str, Any]) -> None:
    payload = text_update(**sender)
    read = plain_text(payload)
    assert read is not None
    assert read == aiogram_reading(payload)


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(value, dict):
        return [prefix]
    found = [prefix] if prefix else []
    for key, item in value.items():
        found += _paths(item, (*prefix, key))
    return found


def _set(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    at = changed
    for key in path[:-1]:
        at = at[key]
    if value is _MISSING:
        del at[path[-1]]
    else:
        at[path[-1]] = value
    return changed


_MISSING = object()
#: What a field can be changed to: absent, or a value of another JSON type.
REPLACEMENTS = [_MISSING, None, True, 0, 1.5, "7", "", [], {}]


#: Fields the adapter never reads and aiogram does not require: not checked, so a
#: malformed one does not get the message ignored.
UNREAD = {("message", "chat", "first_name"), ("message", "entities")}


def test_any_field_changed_is_read_the_same_or_left_to_aiogram() -> None:
    """Every field removed or given another JSON type, one at a time: a reading is
    aiogram's reading; an update aiogram refuses is never read, unless what it refuses is
    a field nobody reads."""
    base = text_update(last_name="Souza")
    read_some = left = 0
    for path in _paths(base):
        for value in REPLACEMENTS:
            payload = _set(base, path, value)
            read = plain_text(payload)
            if path in UNREAD:
                assert read == plain_text(base), (path, value)
                continue
            if read is None:
                left += 1
                continue
            read_some += 1
            assert read == aiogram_reading(payload), (path, value)
    assert read_some and left  # both outcomes happened


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"update_id": 1},
        {"update_id": True, "message": text_update()["message"]},
        {"update_id": 1, "edited_message": text_update()["message"]},
        _set(text_update(), ("message", "text"), _MISSING),  # a photo, a sticker ...
        _set(text_update(), ("message", "chat", "id"), "7"),  # aiogram would coerce it
        _set(text_update(), ("message", "from"), _MISSING),
    ],
)
def test_anything_else_is_left_to_aiogram(payload: Any) -> None:
    assert plain_text(payload) is None
