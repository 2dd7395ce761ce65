"""Issue 3: the memory figures the README quotes can be measured, and stay bounded."""

from __future__ import annotations

import pytest

from bench.redis_memory import measure
from bot.store.redis import RedisStore


async def test_memory_per_conversation_is_measured_and_bounded(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = await measure(redis_url, conversations=40, extra=12)

    with capsys.disabled():
        print("\n" + figures.report())
    kinds = figures.idle_by_kind
    assert all(kinds[k] > 0 for k in ("contact", "conversation", "transcript", "events"))
    # README: about 5 KB per idle conversation; fail loudly if it doubles
    assert 1_000 < figures.idle_conversation_bytes < 10_000
    assert 0 < figures.bytes_per_extra_message < 4_000
    assert figures.bytes_per_ticket > 0
    # the run cleans up after itself
    store = RedisStore.from_url(redis_url)
    try:
        assert [k async for k in store.redis.scan_iter(match="escala_memory_*")] == []
    finally:
        await store.close()
