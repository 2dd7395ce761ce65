"""The content-version store (issue 16) on every backend: versions are numbered from 1,
immutable, published by compare-and-set on the live number (exactly one of several
publishers from the same base wins), listed newest first; drafts per admin."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.store import Store
from bot.store.base import ContentDraft, ContentVersion

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def version(
    message: str, files: dict[str, str], restored_from: int | None = None
) -> ContentVersion:
    return ContentVersion(
        number=0,
        author="root",
        at=T0,
        message=message,
        changes=(f"{message} changed",),
        files=files,
        restored_from=restored_from,
    )


async def test_versions_are_numbered_from_one_and_kept_as_published(store: Store) -> None:
    assert await store.live_content_version() == 0
    assert await store.content_version(1) is None
    assert await store.content_history() == []
    first = await store.publish_content(0, version("seed", {"routing.toml": "# v1\n"}))
    assert (first.ok, first.number, first.live) == (True, 1, 1)
    files = {"routing.toml": "# v2 é\n", "kb/a.toml": "[[entry]]\n"}
    second = await store.publish_content(1, version("edit", files, restored_from=None))
    assert (second.ok, second.number) == (True, 2)
    assert await store.live_content_version() == 2
    kept = await store.content_version(2)
    assert kept is not None
    assert (kept.number, kept.author, kept.at, kept.message) == (2, "root", T0, "edit")
    assert kept.changes == ("edit changed",) and dict(kept.files) == files
    old = await store.content_version(1)
    assert old is not None and dict(old.files) == {"routing.toml": "# v1\n"}


async def test_a_publish_from_an_old_base_changes_nothing(store: Store) -> None:
    await store.publish_content(0, version("seed", {"routing.toml": "a"}))
    await store.publish_content(1, version("mine", {"routing.toml": "b"}))
    late = await store.publish_content(1, version("theirs", {"routing.toml": "c"}))
    assert (late.ok, late.live) == (False, 2)
    assert await store.live_content_version() == 2
    assert await store.content_version(3) is None
    live = await store.content_version(2)
    assert live is not None and dict(live.files) == {"routing.toml": "b"}


async def test_of_concurrent_publishers_from_one_base_exactly_one_wins(store: Store) -> None:
    await store.publish_content(0, version("seed", {"routing.toml": "a"}))
    results = await asyncio.gather(
        *(
            store.publish_content(1, version(f"admin {n}", {"routing.toml": str(n)}))
            for n in range(20)
        )
    )
    winners = [r for r in results if r.ok]
    assert len(winners) == 1 and winners[0].number == 2
    assert all(r.live == 2 for r in results if not r.ok)
    assert await store.live_content_version() == 2


async def test_history_is_newest_first_without_the_files(store: Store) -> None:
    for n in range(5):
        assert (await store.publish_content(n, version(f"v{n + 1}", {"routing.toml": str(n)}))).ok
    rollback = version("rollback to version 2", {"routing.toml": "1"}, restored_from=2)
    assert (await store.publish_content(5, rollback)).ok
    history = await store.content_history(limit=3)
    assert [v.number for v in history] == [6, 5, 4]
    assert history[0].restored_from == 2 and history[0].message == "rollback to version 2"
    assert all(dict(v.files) == {} for v in history)
    assert len(await store.content_history()) == 6


async def test_drafts_are_kept_per_admin(store: Store) -> None:
    assert await store.get_draft("root") is None
    mine = ContentDraft("root", 3, {"routing.toml": "x"}, T0)
    theirs = ContentDraft("ops", 2, {"routing.toml": "y", "kb/a.toml": "z"}, T0 + timedelta(1))
    await store.save_draft(mine)
    await store.save_draft(theirs)
    assert await store.get_draft("root") == mine
    assert await store.get_draft("ops") == theirs
    assert await store.discard_draft("root") is True
    assert await store.discard_draft("root") is False
    assert await store.get_draft("root") is None
    assert await store.get_draft("ops") == theirs
