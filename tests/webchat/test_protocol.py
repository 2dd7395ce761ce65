"""The web chat's protocol without a browser (issue 17): frames, close codes, tokens,
idempotent retries, typing and the session endpoint's refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import MemoryStore
from channels.webchat import identity
from channels.webchat.protocol import (
    CLOSE_MALFORMED,
    CLOSE_UNSUPPORTED,
    Ping,
    ProtocolError,
    Send,
    parse_frame,
)
from tests.webchat.conftest import ChatServer

#: Seconds a socket read may take on a loaded machine (a limit, not a delay).
READ = 60.0


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    server = await ChatServer(MemoryStore(), visitor_messages_per_minute=1000).start()
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def token(http: aiohttp.ClientSession, chat: ChatServer, **body: Any) -> str:
    async with http.post(
        f"{chat.url}/webchat/session", json=body, headers={"Origin": chat.url}
    ) as response:
        assert response.status == 200, await response.text()
        value: str = (await response.json())["token"]
        return value


async def connect(
    http: aiohttp.ClientSession, chat: ChatServer, tok: str, last: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    query = f"?token={tok}" + (f"&last={last}" if last else "")
    return await http.ws_connect(f"{chat.url}/webchat/ws{query}", origin=chat.url)


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, kind: str, **fields: Any
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=READ)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        frame = json.loads(message.data)
        seen.append(frame)
        if frame["t"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return seen


async def turn_frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Frames of one turn: the typing dots go on, lines come, the dots go off (the ack
    may come anywhere), then the ticket."""
    frames = await frames_until(ws, "typing", on=False)
    frames += await frames_until(ws, "ticket")
    if not any(f["t"] == "ack" for f in frames):
        frames += await frames_until(ws, "ack")
    return frames


# -- parsing ------------------------------------------------------------------------------


def test_a_message_frame_is_parsed() -> None:
    frame = parse_frame('{"t":"msg","cid":"abcdefgh","text":"oi","choice":"kb:x"}')
    assert frame == Send(cid="abcdefgh", text="oi", choice="kb:x")
    assert parse_frame('{"t":"ping"}') == Ping()
    assert parse_frame('{"cid":"abcdefgh","text":"oi"}', default_type="msg") == Send(
        "abcdefgh", "oi"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "", "oi", "[]", "null", '{"t":"hello"}', '{"t":"msg"}',
        '{"t":"msg","cid":"short","text":"oi"}', '{"t":"msg","cid":"abcdefgh","text":3}',
        '{"t":"msg","cid":"abc/defgh","text":"oi"}', '{"t":"msg","cid":"abcdefgh","text":"  "}',
        '{"t":"msg","cid":"abcdefgh","text":"oi","choice":7}', "[" * 100_000,
    ],
)  # fmt: skip
def test_malformed_frames_are_protocol_errors(raw: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_frame(raw)
    assert refused.value.code == CLOSE_MALFORMED


@given(st.text(max_size=300))
def test_any_text_is_a_frame_or_a_protocol_error(raw: str) -> None:
    try:
        frame = parse_frame(raw)
    except ProtocolError as e:
        assert e.code == CLOSE_MALFORMED
    else:
        assert isinstance(frame, Send | Ping)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(
    st.fixed_dictionaries(
        {}, optional={"t": st.sampled_from(["msg", "ping", "x"]) | json_values, "cid": json_values,
                      "text": json_values, "choice": json_values}
    )
)  # fmt: skip
def test_any_json_object_is_a_frame_or_a_protocol_error(body: dict[str, Any]) -> None:
    try:
        parse_frame(json.dumps(body))
    except ProtocolError as e:
        assert e.code == CLOSE_MALFORMED


# -- the socket ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["not json", '{"t":"msg","cid":"x","text":"oi"}', "[1]"])
async def test_a_malformed_frame_closes_the_socket_with_a_code(
    chat: ChatServer, http: aiohttp.ClientSession, raw: str
) -> None:
    ws = await connect(http, chat, await token(http, chat))
    await frames_until(ws, "ticket")  # the opening replay
    await ws.send_str(raw)
    closing = await ws.receive(timeout=READ)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == CLOSE_MALFORMED
    async with http.get(f"{chat.url}/healthz") as health:
        assert health.status == 200


async def test_binary_and_oversized_frames_close_the_socket(
    chat: ChatServer, http: aiohttp.ClientSession
) -> None:
    tok = await token(http, chat)
    ws = await connect(http, chat, tok)
    await frames_until(ws, "ticket")
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive(timeout=READ)).type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == CLOSE_UNSUPPORTED
    ws = await connect(http, chat, tok)
    await frames_until(ws, "ticket")
    await ws.send_str(json.dumps({"t": "msg", "cid": "abcdefgh", "text": "x" * 100_000}))
    while (await ws.receive(timeout=READ)).type is aiohttp.WSMsgType.TEXT:
        pass
    assert ws.close_code == 1009


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.text(max_size=200))
async def test_random_frames_never_crash_the_server(
    chat: ChatServer, http: aiohttp.ClientSession, raw: str
) -> None:
    ws = await connect(http, chat, await token(http, chat))
    await frames_until(ws, "ticket")
    await ws.send_str(raw)
    message = await ws.receive(timeout=READ)
    if message.type is aiohttp.WSMsgType.CLOSE:
        assert ws.close_code == CLOSE_MALFORMED
    else:  # a valid frame: answered (pong, a line, typing ...), never an error
        assert message.type is aiohttp.WSMsgType.TEXT
        await ws.close()


async def test_a_retried_message_is_handled_once_and_typing_frames_the_turn(
    chat: ChatServer, http: aiohttp.ClientSession
) -> None:
    tok = await token(http, chat)
    ws = await connect(http, chat, tok)
    await frames_until(ws, "ticket")
    frame = {"t": "msg", "cid": "retry-0001", "text": "qual o prazo de entrega?"}
    await ws.send_str(json.dumps(frame))
    first = await turn_frames(ws)
    kinds = [f["t"] for f in first]
    assert kinds.index("typing") < kinds.index("m")  # the dots show while the bot works
    await ws.close()
    # The client did not see the ack (say): it sends the same message again.
    ws = await connect(http, chat, tok, last=None)
    replay = await frames_until(ws, "ticket")
    await ws.send_str(json.dumps(frame))
    await frames_until(ws, "ack")
    transcript = await chat.escala.store.transcript(
        (await chat.escala.store.find_conversation("webchat", claims_address(chat, tok))).id  # type: ignore[union-attr]
    )
    assert [m.text for m in transcript].count("qual o prazo de entrega?") == 1
    lines = [f for f in replay if f["t"] == "m"]
    assert lines[0]["dir"] == "in" and lines[0]["cid"] == "retry-0001"
    assert lines[-1]["choices"]  # "did this help?" still waits: its buttons come back


def claims_address(chat: ChatServer, tok: str) -> str:
    claims = identity.read_token(chat.chat.config.secret, tok, 0)
    assert claims is not None
    return claims.address


async def test_resume_sends_only_what_came_after_the_last_id(
    chat: ChatServer, http: aiohttp.ClientSession
) -> None:
    tok = await token(http, chat)
    ws = await connect(http, chat, tok)
    await frames_until(ws, "ticket")
    await ws.send_str(json.dumps({"t": "msg", "cid": "first-0001", "text": "oi"}))
    frames = await turn_frames(ws)
    await ws.close()
    last = [f for f in frames if f["t"] == "m"][-1]["id"]
    ws = await connect(http, chat, tok, last=last)
    assert [f for f in await frames_until(ws, "ticket") if f["t"] == "m"] == []


# -- the session endpoint -----------------------------------------------------------------


async def test_sessions_refuse_other_origins_forged_users_and_bad_tokens(
    chat: ChatServer, http: aiohttp.ClientSession
) -> None:
    url = f"{chat.url}/webchat/session"
    async with http.post(url, json={}, headers={"Origin": "https://evil.example"}) as r:
        assert r.status == 403 and (await r.json())["error"] == "origin"
    async with http.post(url, json={}) as r:  # no Origin: not a browser on a page
        assert r.status == 403
    forged = {"user_id": "42", "user_hash": "00" * 32}
    async with http.post(url, json=forged, headers={"Origin": chat.url}) as r:
        assert r.status == 403 and (await r.json())["error"] == "identity"
    async with http.post(url, data=b"{not json", headers={"Origin": chat.url}) as r:
        assert r.status == 400
    signed = {
        "user_id": "42",
        "user_hash": identity.user_signature(b"site-identity-secret-0123456789", "42"),
    }
    async with http.post(url, json=signed, headers={"Origin": chat.url}) as r:
        assert r.status == 200 and "Set-Cookie" not in r.headers
    async with http.get(
        f"{chat.url}/webchat/ws?token=forged.token", headers={"Origin": chat.url}
    ) as r:
        assert r.status == 403
    tok = await token(http, chat)
    async with http.get(
        f"{chat.url}/webchat/ws?token={tok}", headers={"Origin": "https://evil.example"}
    ) as r:
        assert r.status == 403


async def test_the_visitor_cookie_is_signed_and_http_only(
    chat: ChatServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{chat.url}/webchat/session", json={}, headers={"Origin": chat.url}) as r:
        cookie = r.cookies["escala_webchat"]
    assert cookie["httponly"] and cookie["path"] == "/webchat"
    visitor = identity.visitor_from_cookie(chat.chat.config.secret, cookie.value)
    assert visitor is not None
    assert identity.visitor_from_cookie(chat.chat.config.secret, visitor + ".forged") is None
    assert identity.visitor_from_cookie(b"another-secret-0123456", cookie.value) is None


def test_tokens_expire_and_cannot_be_altered() -> None:
    secret = b"0123456789abcdef"
    tok = identity.issue_token(secret, identity.Claims("v:x", "en", 100))
    assert identity.read_token(secret, tok, 100) == identity.Claims("v:x", "en", 100)
    assert identity.read_token(secret, tok, 101) is None
    payload, signature = tok.split(".")
    assert identity.read_token(secret, payload[:-2] + "AA." + signature, 0) is None
    assert identity.read_token(b"another-secret-00", tok, 0) is None
