"""The webhook's pydantic-free reading of text messages (issue 18): whatever it reads,
aiogram reads the same; whatever it cannot read exactly, it leaves to aiogram."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aiogram.types import Update
from hypothesis import given
from hypothesis import strategies as st

from channels.telegram.updates import PlainText, json_body, plain_text


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


# --- the body's JSON: orjson where it reads the same, json otherwise ----------------------

#: JSON values with what orjson refuses and json reads: NaN and infinities, integers past
#: 64 bits, lone surrogates (any code point, written as an escape by ``ensure_ascii``).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=())),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def as_json_reads(body: bytes, charset: str | None) -> tuple[str, str]:
    """What aiohttp's ``request.json()`` made of the body before (the reference), or the
    error's kind; json.dumps tells 1 from 1.0 and writes NaN as json read it."""
    try:
        return "ok", json.dumps(json.loads(body.decode(charset or "utf-8")))
    except (ValueError, LookupError) as e:
        return "error", type(e).__name__


def decoded(body: bytes, charset: str | None) -> tuple[str, str]:
    try:
        return "ok", json.dumps(json_body(body, charset))
    except (ValueError, LookupError) as e:
        return "error", type(e).__name__


@given(JSON_VALUES, st.booleans())
def test_a_body_decodes_as_request_json_decodes_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    body = text.encode("utf-8", "surrogatepass")  # raw surrogates: not UTF-8, refused
    assert decoded(body, None) == as_json_reads(body, None)
    assert decoded(body, "UTF-8") == as_json_reads(body, "UTF-8")


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        (b'{"text": "a\\ud800b"}', None),  # a lone surrogate escape: json reads it
        (b'{"n": NaN, "big": 123456789012345678901234567890}', None),
        (b"\xef\xbb\xbf{}", None),  # a byte-order mark: refused by both
        (b'{"text": "\xe9"}', None),  # Latin-1 bytes sent as UTF-8: refused
        ('{"text": "é"}'.encode("latin-1"), "latin-1"),  # read in its charset
        (b"", None),
        (b"{}", "no-such-charset"),  # refused (was a 500: LookupError)
        (b'{"id": -9223372036854775809, "f": 0.12345678901234567890}', None),  # kept whole
    ],
)
def test_bodies_orjson_refuses_are_read_by_json(body: bytes, charset: str | None) -> None:
    assert decoded(body, charset) == as_json_reads(body, charset)
