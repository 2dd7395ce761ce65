"""Content versions (issue 16): validation with file, place and reason; what changed;
the seed; publish, conflicts, rollback, rebase; every process following the live
version; a turn that runs on one version whatever is published meanwhile."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.content import (
    MAX_FILE_BYTES,
    compile_content,
    describe_changes,
    files_from_settings,
    read_dir,
    write_dir,
)
from bot.content_diff import semantic
from bot.errors import ConfigError
from bot.models import EventKind
from bot.settings import default_settings
from bot.store import MemoryStore
from tests.journeys.harness import Journey
from tests.web.harness import until

QUESTION = "qual o horário de atendimento?"
OLD = "Atendemos de segunda a sexta"
NEW = "Agora atendemos todos os dias, das 7h às 22h."


def edited(files: dict[str, str], old: str = OLD, new: str = NEW) -> dict[str, str]:
    text = files["kb/contact.toml"]
    assert old in text
    start = text.index(old)
    end = text.index('"', start)
    return {**files, "kb/contact.toml": text[:start] + new + text[end:]}


@pytest.fixture
def files() -> dict[str, str]:
    return files_from_settings(default_settings())


def test_the_seed_is_the_settings_files_under_logical_paths(files: dict[str, str]) -> None:
    assert "routing.toml" in files
    assert "kb/contact.toml" in files and "kb/synonyms.toml" in files
    assert "flows/greeting.toml" in files
    content = compile_content(files, default_settings(), 3)
    assert content.version == 3
    assert content.kb.get("opening_hours") is not None
    assert content.flows.get("greeting") is not None


def test_every_problem_is_named_by_logical_file_place_and_reason(files: dict[str, str]) -> None:
    broken = {
        **files,
        "routing.toml": files["routing.toml"].replace('tier = "N3"', 'tier = "N9"', 1),
        "kb/contact.toml": files["kb/contact.toml"].replace(
            'category = "contact"', "category = ", 1
        ),
        "flows/extra.toml": '[[flow]]\nid = "x"\n',
    }
    with pytest.raises(ConfigError) as caught:
        compile_content(broken, default_settings())
    problems = caught.value.problems
    files_named = {p[0] for p in problems}
    assert "routing.toml" in files_named and "kb/contact.toml" in files_named
    assert "flows/extra.toml" in files_named
    tier = next(p for p in problems if p[0] == "routing.toml")
    assert tier[1] == "rule[1] 'security-incident'.tier"
    assert tier[2].startswith("unknown tier 'N9'")
    assert not any("escala-content-" in p[0] for p in problems)


def test_size_limits_and_file_names_are_checked(files: dict[str, str]) -> None:
    too_big = {**files, "kb/huge.toml": "#" * (MAX_FILE_BYTES + 1)}
    with pytest.raises(ConfigError, match=r"kb/huge.toml: size: .* at most"):
        compile_content(too_big, default_settings())
    with pytest.raises(ConfigError, match="file name"):
        compile_content({**files, "../etc/passwd": "x"}, default_settings())
    without_rules = {k: v for k, v in files.items() if k != "routing.toml"}
    with pytest.raises(ConfigError, match=r"routing\.toml: file: missing"):
        compile_content(without_rules, default_settings())


def test_what_changed_is_told_by_meaning(files: dict[str, str]) -> None:
    changed = edited(files)
    assert describe_changes(files, changed) == ("kb entry 'opening_hours' changed",)
    rules = files["routing.toml"]
    renamed = {**files, "routing.toml": rules.replace('name = "security-incident"', 'name = "sec"')}
    lines = describe_changes(files, renamed)
    assert (
        "routing rule 'sec' added" in lines and "routing rule 'security-incident' removed" in lines
    )
    comment = {**files, "routing.toml": "# a comment\n" + rules}
    assert describe_changes(files, comment) == ("routing.toml: layout or comments only",)
    assert semantic(comment) == semantic(files)


def test_export_and_import_round_trip_byte_for_byte(files: dict[str, str], tmp_path: Path) -> None:
    write_dir(files, tmp_path / "out")
    assert read_dir(tmp_path / "out") == files


async def test_first_start_seeds_version_1_and_a_second_process_follows_it() -> None:
    store = MemoryStore()
    first, second = Journey(store=store), Journey(store=store)
    await first.escala.content.start()
    await second.escala.content.start()
    try:
        assert await store.live_content_version() == 1
        assert first.escala.content.current.version == 1
        assert second.escala.content.current.version == 1
        history = await store.content_history()
        assert [v.author for v in history] == ["files"]
    finally:
        await first.escala.content.stop()
        await second.escala.content.stop()


async def test_a_publish_reaches_another_process_at_its_next_poll() -> None:
    store = MemoryStore()
    admin, customer_side = Journey(store=store), Journey(store=store)
    customer_side.escala.content._poll_seconds = 0.01
    await admin.escala.content.sync()
    await customer_side.escala.content.start()
    try:
        before = await customer_side.say(QUESTION)
        assert OLD in before[0].text
        live = admin.escala.content.current
        result = await admin.escala.content.publish(
            edited(dict(live.files)), author="root", message="hours", expected=1
        )
        assert result.ok and result.number == 2
        assert result.changes == ("kb entry 'opening_hours' changed",)
        await until(lambda: customer_side.escala.content.current.version == 2)
        after = await customer_side.say(QUESTION, address="2002")
        assert after[0].text == NEW
        events = await store.events()
        published = [e for e in events if e.kind is EventKind.CONTENT_PUBLISHED]
        assert [e.data["version"] for e in published] == [1, 2]
        assert published[-1].data["author"] == "root"
    finally:
        await customer_side.escala.content.stop()


async def test_an_invalid_publish_changes_nothing_and_a_stale_one_is_told_to_rebase() -> None:
    journey = Journey()
    content = journey.escala.content
    await content.sync()
    files = dict(content.current.files)
    bad = {**files, "routing.toml": files["routing.toml"].replace('tier = "N3"', 'tier = "N9"')}
    refused = await content.publish(bad, author="root", message="oops", expected=1)
    assert not refused.ok and not refused.conflict
    assert any(p[0] == "routing.toml" and "N9" in p[2] for p in refused.problems)
    assert await content.store.live_content_version() == 1
    assert content.current.version == 1
    assert (await content.publish(edited(files), author="ana", message="a", expected=1)).ok
    late = await content.publish(files, author="bia", message="b", expected=1)
    assert late.conflict and late.live == 2
    assert await content.store.live_content_version() == 2


async def test_rollback_publishes_the_earlier_version_again() -> None:
    journey = Journey()
    content = journey.escala.content
    await content.sync()
    files = dict(content.current.files)
    assert (await content.publish(edited(files), author="root", message="new", expected=1)).ok
    assert (await journey.say(QUESTION))[0].text == NEW
    back = await content.rollback(1, author="root", expected=2)
    assert back.ok and back.number == 3
    assert (await journey.say(QUESTION, address="3003"))[0].text.startswith(OLD)
    restored = await content.store.content_version(3)
    assert restored is not None and restored.restored_from == 1
    assert dict(restored.files) == files
    kinds = [e.kind for e in await journey.escala.store.events()]
    assert EventKind.CONTENT_ROLLED_BACK in kinds


async def test_rebase_keeps_my_changes_on_the_new_live_version_unless_both_changed_a_file() -> None:
    journey = Journey()
    content = journey.escala.content
    await content.sync()
    files = dict(content.current.files)
    rules = files["routing.toml"]
    mine = {**files, "routing.toml": "# reviewed\n" + rules}
    await content.save_draft("ana", mine, 1)
    clash = edited(files)
    await content.save_draft("bia", clash, 1)
    assert (await content.publish(edited(files, new="Das 9h às 18h."), author="cid",
                                  message="c", expected=1)).ok  # fmt: skip
    rebased = await content.rebase("ana")
    assert rebased.ok and rebased.base == 2
    draft = await content.draft("ana")
    assert draft.files["routing.toml"].startswith("# reviewed")
    assert "Das 9h às 18h." in draft.files["kb/contact.toml"]
    refused = await content.rebase("bia")
    assert not refused.ok and refused.conflicts == ("kb/contact.toml",)


async def test_a_turn_runs_on_the_version_it_started_with() -> None:
    journey = Journey()
    content = journey.escala.content
    await content.sync()
    newer = compile_content(edited(dict(content.current.files)), journey.settings, 2)

    async def publish_mid_turn(event: object) -> None:
        if getattr(event, "kind", None) is EventKind.MESSAGE_IN:
            content.holder.swap(newer)  # what the follower does between two awaits

    unsubscribe = journey.escala.recorder.subscribe(publish_mid_turn)
    during = await journey.say(QUESTION)
    unsubscribe()
    assert during[0].text.startswith(OLD)  # the whole turn on the version it began with
    assert (await journey.say(QUESTION, address="4004"))[0].text == NEW


async def test_sighup_publishes_changed_files_once(tmp_path: Path) -> None:
    settings = default_settings()
    kb = tmp_path / "kb"
    shutil.copytree(settings.kb.paths[0], kb)
    settings = replace(settings, kb=replace(settings.kb, paths=(kb,)))
    store = MemoryStore()
    one, two = Journey(settings, store), Journey(settings, store)
    await one.escala.content.sync()
    await two.escala.content.sync()
    assert await one.escala.content.reload_files() is None  # nothing changed
    contact = kb / "contact.toml"
    contact.write_text(edited({"kb/contact.toml": contact.read_text()})["kb/contact.toml"])
    first = await one.escala.content.reload_files()
    assert first is not None and first.ok and first.number == 2
    assert await two.escala.content.reload_files() is None  # the other process: same files
    await two.escala.content.sync()
    assert (await two.say(QUESTION))[0].text == NEW
    contact.write_text("[[entry]]\nid = 1\n")
    broken = await one.escala.content.reload_files()
    assert broken is not None and not broken.ok
    assert await store.live_content_version() == 2
