"""``escala content``: export a version to files, review, import (validate and show the
changes), publish from a folder (as CI would), history and rollback, on a real Redis.
Export → import → publish → export round-trips: the same bytes, the same entries and
rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from bot.content import read_dir
from bot.content_diff import semantic
from bot.store.redis import RedisStore


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Path:
    async def flush() -> None:
        store = RedisStore.from_url(redis_url)
        await store.redis.flushdb()
        await store.close()

    asyncio.run(flush())
    path = tmp_path / "escala.toml"
    path.write_text(f'[store]\nbackend = "redis"\nurl = "{redis_url}"\n')
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_import_publish_round_trip(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "v1"
    code, out, _ = run(capsys, "content", "export", "--config", str(config), "--to", str(first))
    assert code == 0 and "exported version 1" in out
    files = read_dir(first)
    assert "routing.toml" in files and "kb/contact.toml" in files and "flows/greeting.toml" in files

    code, out, _ = run(capsys, "content", "import", "--config", str(config), "--from", str(first))
    assert code == 0 and "no change" in out

    contact = first / "kb" / "contact.toml"
    contact.write_text(contact.read_text().replace("das 8h às 20h", "das 7h às 22h", 1))
    code, out, _ = run(capsys, "content", "import", "--config", str(config), "--from", str(first))
    assert code == 0 and "kb entry 'opening_hours' changed" in out
    code, out, _ = run(
        capsys, "content", "publish", "--config", str(config), "--from", str(first),
        "-m", "hours", "--author", "ci", "--expect-version", "1",
    )  # fmt: skip
    assert code == 0 and "published version 2" in out

    second = tmp_path / "v2"
    assert run(capsys, "content", "export", "--config", str(config), "--to", str(second))[0] == 0
    assert read_dir(second) == read_dir(first)  # byte for byte
    assert semantic(read_dir(second)) == semantic(read_dir(first))

    # CI publishing what it reviewed against version 1: too late, nothing changes.
    code, _, err = run(
        capsys, "content", "publish", "--config", str(config), "--from", str(first),
        "-m", "stale", "--expect-version", "1",
    )  # fmt: skip
    assert code == 1 and "no longer live (live: 2)" in err

    code, out, _ = run(capsys, "content", "history", "--config", str(config))
    assert code == 0
    assert out.splitlines()[0].startswith("2\t") and "\tci\thours" in out.splitlines()[0]

    code, out, _ = run(capsys, "content", "rollback", "--config", str(config), "1")
    assert code == 0 and "published version 3: version 1 restored" in out
    third = tmp_path / "v3"
    run(capsys, "content", "export", "--config", str(config), "--to", str(third))
    original = tmp_path / "v1-again"
    run(
        capsys,
        "content",
        "export",
        "--config",
        str(config),
        "--to",
        str(original),
        "--version",
        "1",
    )
    assert read_dir(third) == read_dir(original)


def test_an_invalid_folder_is_refused_with_every_problem(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "content"
    run(capsys, "content", "export", "--config", str(config), "--to", str(folder))
    rules = folder / "routing.toml"
    rules.write_text(rules.read_text().replace('tier = "N3"', 'tier = "N9"', 1))
    (folder / "kb" / "broken.toml").write_text("[[entry]\n")
    for command in ("import", "publish"):
        args = ["content", command, "--config", str(config), "--from", str(folder)]
        code, _, err = run(capsys, *args, *(["-m", "x"] if command == "publish" else []))
        assert code == 2
        assert "routing.toml: rule[1] 'security-incident'.tier: unknown tier 'N9'" in err
        assert "kb/broken.toml" in err
    code, out, _ = run(capsys, "content", "history", "--config", str(config))
    assert len([line for line in out.splitlines() if not line.startswith("\t")]) == 1
