"""The common webhook update, a private text message, read without pydantic (issue 18).

aiogram's ``Update.model_validate`` builds and validates every object of an update
(~35 µs), and the adapter reads eight of its fields. :func:`plain_text` reads those
fields straight from the decoded JSON, but only when each of them, and each field aiogram
requires of a message, its chat and its sender, is present with exactly the JSON type
Telegram sends. Anything else (another kind of update, a field missing, a number sent as
text, a bool where an int belongs) returns ``None``, and the adapter validates the update
with aiogram as before, so what is read has the values aiogram would give. Fields the
adapter never reads (entities, a chat's title ...) are not checked here: a malformed one
no longer gets a readable text message ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

#: 19 digits in a row: a number orjson may not read as json does (see json_body).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def json_body(body: bytes, charset: str | None) -> Any:
    """A body's JSON (a webhook update, a Bot API answer), exactly as aiohttp's
    ``request.json()`` reads it (the text in the body's charset, then ``json.loads``);
    raises ``ValueError`` (or ``LookupError`` for a charset Python does not know).

    orjson parses a UTF-8 body in a fraction of json's time (issue 18), but refuses some
    of what json reads (a lone surrogate escape, which is to be replaced further on, not
    refused: tests/channels/test_hardening.py; NaN; nesting past 1,024), and reads an
    integer past 64 bits as a float, where json keeps it whole. Those bodies (any run of
    19 digits: a shorter integer fits), and other charsets, go to json as before: the
    same payload either way (``tests/channels/test_telegram_updates.py``). Nesting too
    deep for json raises ``RecursionError``, as before: the server's guard answers it
    with a 400 (``bot.server``)."""
    encoding = charset or "utf-8"
    if encoding.lower() == "utf-8" and _LONG_NUMBER.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body.decode(encoding))


@dataclass(frozen=True, slots=True)
class PlainText:
    """What the adapter reads of a text message update."""

    update_id: int
    message_id: int
    chat_id: int
    chat_type: str
    text: str
    is_bot: bool
    #: aiogram's ``User.full_name``: first and last name, or the first alone.
    full_name: str
    language_code: str | None


def _int(value: object) -> TypeGuard[int]:
    return type(value) is int  # bool is an int subclass; pydantic's int is not bool


def _str(value: object) -> TypeGuard[str]:
    return type(value) is str


def plain_text(payload: Any) -> PlainText | None:
    """The text message ``payload`` carries, if it is exactly that; else ``None``."""
    if type(payload) is not dict or not _int(update_id := payload.get("update_id")):
        return None
    message = payload.get("message")
    if type(message) is not dict:
        return None
    chat = message.get("chat")
    sender = message.get("from")
    if type(chat) is not dict or type(sender) is not dict:
        return None
    text = message.get("text")
    message_id = message.get("message_id")
    chat_id = chat.get("id")
    chat_type = chat.get("type")
    if not (
        _str(text)
        and _int(message_id)
        and _int(message.get("date"))
        and _int(chat_id)
        and _str(chat_type)
    ):
        return None
    is_bot = sender.get("is_bot")
    first_name = sender.get("first_name")
    last_name = sender.get("last_name")
    language_code = sender.get("language_code")
    if not (
        _int(sender.get("id"))
        and type(is_bot) is bool
        and _str(first_name)
        and (last_name is None or _str(last_name))
        and (language_code is None or _str(language_code))
    ):
        return None
    return PlainText(
        update_id=update_id,
        message_id=message_id,
        chat_id=chat_id,
        chat_type=chat_type,
        text=text,
        is_bot=is_bot,
        full_name=f"{first_name} {last_name}" if last_name else first_name,
        language_code=language_code,
    )
