"""The web chat's wire protocol: JSON text frames, the same over WebSocket and over
the SSE fallback (where the client's frames are POSTed).

Client to server::

    {"t": "msg", "cid": "<8-64 of A-Z a-z 0-9 _ ->", "text": "...", "choice": "<id>"?}
    {"t": "ping"}

``cid`` is the client's id for the message: a retry after a reconnect carries the
same one and the engine's dedupe handles it once. Server to client::

    {"t": "m", "id", "dir": "in"|"bot"|"agent", "text", "author"?, "cid"?, "choices"?}
    {"t": "choices", "id", "choices": [{"id", "label"}]}   buttons for a line already sent
    {"t": "ack", "cid"}                                    stored; stop retrying it
    {"t": "notice", "code", "text", "cid"?}                refused politely (rate, size)
    {"t": "typing", "on": bool}
    {"t": "ticket", "number"?, "state"?, "tier"?}
    {"t": "pong"}

A frame that is not one of the client's frames closes the socket with
:data:`CLOSE_MALFORMED` (a binary frame: 1003; a frame over the size limit: 1009,
from aiohttp); never an error response.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.models import Choice, Direction, Message

#: Close codes (RFC 6455 and the private 4000-4999 range).
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_MALFORMED = 4400

_CID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: Longest choice id a client may send back (ours are much shorter).
MAX_CHOICE_CHARS = 200


class ProtocolError(Exception):
    """A frame the protocol does not allow; closes the socket with ``code``."""

    def __init__(self, reason: str, code: int = CLOSE_MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Send:
    """A visitor's message (typed, or a button they pressed)."""

    cid: str
    text: str
    choice: str | None = None


@dataclass(frozen=True)
class Ping:
    pass


def parse_frame(raw: str, *, default_type: str | None = None) -> Send | Ping:
    """The client frame in ``raw``, or :class:`ProtocolError`. ``default_type``: the
    type assumed when ``t`` is absent (a POSTed message)."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("not JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError("not a JSON object")
    kind = frame.get("t", default_type)
    if kind == "ping":
        return Ping()
    if kind != "msg":
        raise ProtocolError("unknown frame type")
    cid = frame.get("cid")
    if not isinstance(cid, str) or not _CID.match(cid):
        raise ProtocolError("cid must be 8 to 64 letters, digits, '_' or '-'")
    text = frame.get("text")
    if not isinstance(text, str):
        raise ProtocolError("text must be a string")
    choice = frame.get("choice")
    if choice is not None and (
        not isinstance(choice, str) or not choice or len(choice) > MAX_CHOICE_CHARS
    ):
        raise ProtocolError("choice must be a short string")
    if not text.strip() and choice is None:
        raise ProtocolError("empty message")
    return Send(cid=cid, text=text, choice=choice)


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def choices_frame(choices: tuple[Choice, ...]) -> list[dict[str, str]]:
    return [{"id": c.id, "label": c.label} for c in choices]


_DIRECTIONS = {Direction.INBOUND: "in", Direction.BOT: "bot", Direction.AGENT: "agent"}


def message_frame(
    message: Message, address: str, choices: tuple[Choice, ...] = ()
) -> dict[str, Any]:
    """A transcript line as the visitor sees it. An agent's reply shows their name
    apart from the text (the engine's ``"Ana: ..."`` form is for text-only channels)."""
    frame: dict[str, Any] = {
        "t": "m",
        "id": message.id,
        "dir": _DIRECTIONS.get(message.direction, "bot"),
        "text": message.text,
        "at": message.at.isoformat(),
    }
    if message.direction is Direction.AGENT and message.author:
        frame["author"] = message.author
        prefix = f"{message.author}: "
        if message.text.startswith(prefix):
            frame["text"] = message.text[len(prefix) :]
    if message.direction is Direction.INBOUND:
        owner, _, cid = message.provider_message_id.rpartition("/")
        if owner == address and cid:
            frame["cid"] = cid
    if choices:
        frame["choices"] = choices_frame(choices)
    return frame
