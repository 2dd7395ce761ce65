"""Random and malformed bodies at every webhook, signed and unsigned: never a 5xx, never
an escaped exception, and the store unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.harness import PUBLIC, SECRET, Harness

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TWILIO_PATHS = ("/twilio/sms", "/twilio/sms/status", "/twilio/whatsapp", "/twilio/whatsapp/status")
CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
#: Update-shaped JSON: real keys with random values (reaches deeper into parsing).
update_like = st.fixed_dictionaries(
    {"update_id": st.integers() | st.text()},
    optional={
        "message": json_values,
        "callback_query": json_values,
        "edited_message": json_values,
        "channel_post": json_values,
    },
)
#: What an HTTP client can put in a form (no control characters, no surrogates).
printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
#: Form fields that never make a complete, legitimate Twilio request.
form_fields = st.dictionaries(
    st.sampled_from(["Body", "NumMedia", "MessageStatus", "ErrorCode", "To"]) | printable,
    printable,
    max_size=6,
)


async def _unchanged(harness: Harness, before: Any) -> None:
    await harness.delivered()
    assert await harness.snapshot() == before
    assert harness.fake_telegram.calls == [] and harness.fake_twilio.calls == []


@FUZZ
@given(
    body=st.binary(max_size=2048), content_type=st.sampled_from(CONTENT_TYPES), signed=st.booleans()
)
async def test_random_bytes_at_telegram(
    harness: Harness, body: bytes, content_type: str, signed: bool
) -> None:
    before = await harness.snapshot()
    headers = {"Content-Type": content_type}
    if signed:
        headers["X-Telegram-Bot-Api-Secret-Token"] = SECRET
    response = await harness.http.post("/telegram/webhook", data=body, headers=headers)
    assert response.status < 500
    await _unchanged(harness, before)


@FUZZ
@given(payload=json_values | update_like)
async def test_random_json_at_telegram(harness: Harness, payload: Any) -> None:
    before = await harness.snapshot()
    response = await harness.telegram_post(json.dumps(payload).encode())
    assert response.status < 500
    await _unchanged(harness, before)


@FUZZ
@given(
    path=st.sampled_from(TWILIO_PATHS),
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(CONTENT_TYPES),
    signature=st.none() | st.text(min_size=1, max_size=40).filter(str.isprintable),
)
async def test_random_bytes_at_twilio(
    harness: Harness, path: str, body: bytes, content_type: str, signature: str | None
) -> None:
    before = await harness.snapshot()
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = await harness.http.post(path, data=body, headers=headers)
    assert response.status < 500
    await _unchanged(harness, before)


@FUZZ
@given(path=st.sampled_from(TWILIO_PATHS), fields=form_fields, signed=st.booleans())
async def test_random_signed_forms_at_twilio(
    harness: Harness, path: str, fields: dict[str, str], signed: bool
) -> None:
    before = await harness.snapshot()
    signature = harness.sign(PUBLIC + path, fields) if signed else "bad"
    response = await harness.twilio_post(path, fields, signature=signature)
    assert response.status < 500
    if signed and "To" in fields and path.endswith("/status"):
        return  # a complete-enough status callback may legitimately be recorded
    await _unchanged(harness, before)
