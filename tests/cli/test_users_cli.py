"""``escala users``: logins for the web console, kept in the store, passwords from a
prompt or stdin (never argv), Argon2 hashes only."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.models import ConsoleRole
from bot.store.redis import RedisStore
from bot.users import UserError, Users, hash_password


def config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "escala.toml"
    path.write_text(f'[store]\nbackend = "redis"\nurl = "{redis_url}"\n')
    return path


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_hash(redis_url: str, login: str) -> str | None:
    async def read() -> str | None:
        store = RedisStore.from_url(redis_url)
        try:
            user = await store.get_user(login)
            return user.password_hash if user else None
        finally:
            await store.close()

    return asyncio.run(read())


def test_add_passwd_list_remove_on_redis(
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = str(config(tmp_path, redis_url))
    code, out, _ = run(
        monkeypatch, capsys, "first password\n", "users", "add", "ana", "--role", "agent",
        "--agent", "ana", "--config", cfg,
    )  # fmt: skip
    assert (code, out) == (0, "added ana (agent)\n")
    first = stored_hash(redis_url, "ana")
    assert first is not None and first.startswith("$argon2id$") and "first" not in first
    code, out, _ = run(monkeypatch, capsys, "second password\n", "users", "passwd", "ana",
                       "--config", cfg)  # fmt: skip
    assert (code, out) == (0, "password of ana changed\n")
    assert stored_hash(redis_url, "ana") != first
    code, out, _ = run(monkeypatch, capsys, "", "users", "list", "--config", cfg)
    assert code == 0 and out.startswith("ana\tagent\tana\tAna")
    assert "$argon2" not in out
    code, out, _ = run(monkeypatch, capsys, "", "users", "remove", "ana", "--config", cfg)
    assert (code, out) == (0, "removed ana\n")
    assert stored_hash(redis_url, "ana") is None


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["add", "ana", "--role", "agent"], "long enough pw\n", "needs --agent"),
        (["add", "ana", "--role", "agent", "--agent", "zed"], "long enough pw\n", "no agent 'zed'"),
        (["add", "x y", "--role", "admin"], "long enough pw\n", "bad login"),
        (["add", "root", "--role", "admin"], "short\n", "at least 8 characters"),
        (["passwd", "nobody"], "long enough pw\n", "no user 'nobody'"),
        (["remove", "nobody"], "", "no user 'nobody'"),
    ],
)
def test_refusals_say_why_and_exit_1(
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    code, _, err = run(monkeypatch, capsys, stdin, "users", *argv, "--config",
                       str(config(tmp_path, redis_url)))  # fmt: skip
    assert code == 1 and message in err


def test_the_memory_store_refuses_with_the_way_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(monkeypatch, capsys, "long enough pw\n", "users", "add", "root",
                       "--role", "admin")  # fmt: skip
    assert code == 2
    assert "store.backend" in err and "[[web.users]]" in err


def test_hash_prints_an_argon2_hash_for_the_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(monkeypatch, capsys, "long enough pw\n", "users", "hash")
    assert code == 0 and out.startswith("$argon2id$")
    assert "long enough" not in out


def test_the_password_is_never_an_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["users", "add", "ana", "--role", "agent", "--password", "x"])
    assert "unrecognized arguments" in capsys.readouterr().err


async def test_verify_accepts_the_password_and_nothing_else(redis_store: RedisStore) -> None:
    users = Users(redis_store, [])
    await users.add("sam", "a good password", ConsoleRole.SUPERVISOR)
    found = await users.verify("sam", "a good password")
    assert found is not None and found.role is ConsoleRole.SUPERVISOR
    assert await users.verify("sam", "a good passwore") is None
    assert await users.verify("nobody", "a good password") is None
    assert await users.verify("../etc", "a good password") is None
    with pytest.raises(UserError, match="already exists"):
        await users.add("sam", "another password", ConsoleRole.ADMIN)


async def test_declared_users_log_in_and_win_over_stored(redis_store: RedisStore) -> None:
    from bot.models import ConsoleUser

    users = Users(redis_store, [])
    await users.add("root", "stored password", ConsoleRole.ADMIN)
    users.declare(ConsoleUser("root", hash_password("declared password"), ConsoleRole.SUPERVISOR))
    assert await users.verify("root", "stored password") is None
    found = await users.verify("root", "declared password")
    assert found is not None and found.role is ConsoleRole.SUPERVISOR
