"""The validated ``[web]`` section: the web console (and the pages built on it later).

Checked like every other section: unknown keys, wrong types and a declared user with
a bad hash, role or agent stop start-up with the file, the key and the reason. The
cookie key is read from the environment here, once, and kept out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.models import LOCALES, ConsoleRole, ConsoleUser
from bot.settings import Settings
from bot.toml_config import Section, secret_from_env
from bot.users import LOGIN, is_hash

KEYS = (
    "enabled", "path", "secure_cookies", "same_site", "session_minutes", "secret_key_env",
    "login_attempts", "login_window_seconds", "recent_resolved", "users",
    "kb_cases", "turn_cases",
)  # fmt: skip
USER_KEYS = ("login", "password_hash", "role", "agent", "name", "locale")


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = True
    #: Where the console is served (``/console``); ``/`` redirects there.
    path: str = "/console"
    #: ``Secure`` cookies: on by default; off only for plain-http development.
    secure_cookies: bool = True
    same_site: Literal["Lax", "Strict"] = "Lax"
    #: A session ends after this much inactivity.
    session_minutes: int = 480
    #: 32 bytes, urlsafe base64 (``python -c "import os,base64;
    #: print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``): the key of the
    #: encrypted session cookies on the memory store. Without it a random key is made
    #: at start-up (sessions end with the process). With Redis, sessions live in Redis.
    secret_key: bytes | None = field(default=None, repr=False)
    #: Failed logins allowed per login and per client address within the window.
    login_attempts: int = 5
    login_window_seconds: int = 300
    #: How many of the agent's last resolved tickets the inbox shows.
    recent_resolved: int = 10
    users: tuple[ConsoleUser, ...] = ()
    #: Labelled cases the studio measures draft and live on (``escala kb eval`` and
    #: ``escala eval`` formats); relative to the config file's folder.
    kb_cases: Path | None = None
    turn_cases: Path | None = None


def load_web_config(file: str, table: Mapping[str, Any], settings: Settings) -> WebConfig:
    s = Section(file, "web", table)
    s.check_keys(KEYS)
    d = WebConfig()
    path = s.string("path", d.path).rstrip("/")
    if not path.startswith("/") or path == "" or any(c in path for c in "?#{} "):
        raise s.error("path", f"expected a path like /console, got {table.get('path')!r}")
    same_site = s.string("same_site", d.same_site)
    if same_site not in ("Lax", "Strict"):
        raise s.error("same_site", f"'{same_site}' is not one of Lax, Strict")
    key = None
    if "secret_key_env" in s.data:
        raw = secret_from_env(file, s.at("secret_key_env"), s.string("secret_key_env"))
        try:
            key = base64.urlsafe_b64decode(raw.encode())
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise s.error("secret_key_env", "the variable must hold 32 bytes in urlsafe base64")
    return WebConfig(
        enabled=s.boolean("enabled", d.enabled),
        path=path,
        secure_cookies=s.boolean("secure_cookies", d.secure_cookies),
        same_site="Lax" if same_site == "Lax" else "Strict",
        session_minutes=s.integer("session_minutes", d.session_minutes, minimum=5),
        secret_key=key,
        login_attempts=s.integer("login_attempts", d.login_attempts, minimum=1),
        login_window_seconds=s.integer("login_window_seconds", d.login_window_seconds, minimum=1),
        recent_resolved=s.integer("recent_resolved", d.recent_resolved, minimum=0),
        users=_users(s, settings),
        kb_cases=_cases(s, "kb_cases", settings),
        turn_cases=_cases(s, "turn_cases", settings),
    )


def _cases(s: Section, key: str, settings: Settings) -> Path | None:
    raw = s.optional_string(key)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_absolute() and settings.source is not None:
        path = Path(settings.source).parent / path
    if not path.is_file():
        raise s.error(key, f"no such file: {path}")
    return path


def _users(s: Section, settings: Settings) -> tuple[ConsoleUser, ...]:
    sections = s.tables("users")
    if not sections:
        return ()
    agents = [a.id for a in settings.agents]
    users: list[ConsoleUser] = []
    for u in sections:
        u.check_keys(USER_KEYS)
        login = u.string("login")
        if not LOGIN.match(login):
            raise u.error("login", f"bad login {login!r}")
        if any(existing.login == login for existing in users):
            raise u.error("login", f"duplicate login '{login}'")
        hashed = u.string("password_hash")
        if not is_hash(hashed):
            raise u.error("password_hash", "expected an Argon2 hash (escala users hash)")
        role_name = u.string("role")
        try:
            role = ConsoleRole(role_name)
        except ValueError:
            raise u.error("role", f"'{role_name}' is not one of agent, supervisor, admin") from None
        agent = u.optional_string("agent")
        if agent is not None and agent not in agents:
            raise u.error("agent", f"no agent '{agent}' (agents: {', '.join(agents)})")
        if role is ConsoleRole.AGENT and agent is None:
            raise u.error("agent", "an agent login needs the agent id")
        locale = u.optional_string("locale")
        if locale is not None and locale not in LOCALES:
            raise u.error("locale", f"'{locale}' is not one of {', '.join(LOCALES)}")
        name = u.optional_string("name") or ""
        users.append(ConsoleUser(login, hashed, role, agent, name or login, locale))
    return tuple(users)
