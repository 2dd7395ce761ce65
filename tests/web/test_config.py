"""``[web]`` is validated like every section: file, key and reason; and the console's
words exist in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.server import check_edges
from bot.settings import load_settings
from bot.users import hash_password
from channels.web import i18n
from channels.web.config import load_web_config


def settings_with(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "escala.toml"
    path.write_text(web, encoding="utf-8")
    return path


def test_a_valid_table_enables_the_web_plugin(tmp_path: Path) -> None:
    hashed = hash_password("a good password")
    path = settings_with(
        tmp_path,
        f'[web]\npath = "/desk/"\nsecure_cookies = false\n'
        f'[[web.users]]\nlogin = "root"\npassword_hash = "{hashed}"\nrole = "admin"\n',
    )
    settings = load_settings(path)
    assert "web" in check_edges(settings)
    config = load_web_config(str(path), settings.web, settings)
    assert config.path == "/desk" and not config.secure_cookies
    assert [u.login for u in config.users] == ["root"]


@pytest.mark.parametrize(
    ("table", "place", "reason"),
    [
        ("[web]\nsecure_cookie = false\n", "web.secure_cookie", "did you mean 'secure_cookies'"),
        ('[web]\npath = "console"\n', "web.path", "expected a path like /console"),
        ('[web]\nsame_site = "None"\n', "web.same_site", "not one of Lax, Strict"),
        ('[web]\nsecret_key_env = "NO_SUCH_VARIABLE_X"\n', "web.secret_key_env", "not set"),
        (
            '[[web.users]]\nlogin = "a"\npassword_hash = "plain"\nrole = "admin"\n',
            "web.users[1].password_hash",
            "escala users hash",
        ),
        (
            '[[web.users]]\nlogin = "a"\npassword_hash = "$argon2id$x"\nrole = "boss"\n',
            "web.users[1].role",
            "not one of agent, supervisor, admin",
        ),
        (
            '[[web.users]]\nlogin = "a"\npassword_hash = "$argon2id$x"\nrole = "agent"\n',
            "web.users[1].agent",
            "needs the agent id",
        ),
    ],
)
def test_a_bad_table_names_file_key_and_reason(
    tmp_path: Path, table: str, place: str, reason: str
) -> None:
    path = settings_with(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        check_edges(load_settings(path))
    message = str(caught.value)
    assert str(path) in message and place in message and reason in message


def test_a_short_secret_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALA_WEB_KEY", "c2hvcnQ=")
    path = settings_with(tmp_path, '[web]\nsecret_key_env = "ESCALA_WEB_KEY"\n')
    with pytest.raises(ConfigError, match="32 bytes"):
        check_edges(load_settings(path))


def test_every_word_exists_in_both_languages() -> None:
    assert set(i18n.TEXTS["pt-BR"]) == set(i18n.TEXTS["en"])


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        ("en", "pt-BR,pt;q=0.9", "en"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr-FR, pt;q=0.5", "pt-BR"),
        (None, "fr-FR", "pt-BR"),
        (None, None, "pt-BR"),
    ],
)
def test_the_language_is_the_users_then_the_browsers(
    chosen: str | None, header: str | None, expected: str
) -> None:
    assert i18n.pick_locale(chosen, header, "pt-BR") == expected
