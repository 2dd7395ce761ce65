"""Web console users: logins with Argon2 password hashes and a role, kept in the store.

``escala users add|passwd|remove|list`` manage them; the web console verifies a
login here. Passwords are hashed with Argon2id (``argon2-cffi``'s defaults, RFC 9106
low-memory profile); a hash made with older parameters is rehashed on the next
successful login. Hashing costs tens of milliseconds of CPU on purpose, so it runs in
a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.models import LOCALES, Agent, ConsoleRole, ConsoleUser
from bot.store.base import ConsoleUserStore

#: Letters, digits, ``.``, ``_``, ``-`` and ``@``: safe in a URL, a log line and a cookie.
LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
#: Verified against when a login does not exist, so a wrong login costs as long as a
#: wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("escala-no-such-user")


class UserError(ValueError):
    """A user change refused: the message says why (shown to the admin)."""


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (for a ``[[web.users]]`` entry in the config)."""
    check_password(password)
    return _hasher.hash(password)


def is_hash(text: str) -> bool:
    return text.startswith("$argon2")


class Users:
    """Console users over the store, checked against the configured agents.

    Users may also be *declared* in the settings (``[[web.users]]``, with a hash from
    ``escala users hash``): the memory store forgets what ``escala users add`` writes,
    so a single-process deployment declares its logins there. A declared login wins
    over a stored one of the same name and cannot be changed from the console.
    """

    def __init__(self, store: ConsoleUserStore, agents: Sequence[Agent]) -> None:
        self._store = store
        self._agents = {agent.id: agent for agent in agents}
        self._declared: dict[str, ConsoleUser] = {}

    def declare(self, user: ConsoleUser) -> None:
        """A login from the settings (read-only, kept in this process)."""
        self._declared[user.login] = user

    async def add(
        self,
        login: str,
        password: str,
        role: ConsoleRole,
        *,
        agent_id: str | None = None,
        name: str = "",
        locale: str | None = None,
    ) -> ConsoleUser:
        if not LOGIN.match(login):
            raise UserError(
                f"bad login {login!r}: letters, digits, '.', '_', '-', '@', up to 64 characters"
            )
        if await self.get(login) is not None:
            raise UserError(f"user {login!r} already exists (use passwd to change the password)")
        if role is ConsoleRole.AGENT and agent_id is None:
            raise UserError("an agent login needs --agent (the agent id in the settings)")
        if agent_id is not None and agent_id not in self._agents:
            known = ", ".join(self._agents) or "none"
            raise UserError(f"no agent {agent_id!r} in the settings (agents: {known})")
        if locale is not None and locale not in LOCALES:
            raise UserError(f"locale {locale!r} is not one of {', '.join(LOCALES)}")
        check_password(password)
        agent = self._agents.get(agent_id) if agent_id else None
        user = ConsoleUser(
            login=login,
            password_hash=await asyncio.to_thread(_hasher.hash, password),
            role=role,
            agent_id=agent_id,
            name=name or (agent.name if agent else login),
            locale=locale,
        )
        await self._store.save_user(user)
        return user

    async def set_password(self, login: str, password: str) -> None:
        user = await self._existing(login)
        check_password(password)
        hashed = await asyncio.to_thread(_hasher.hash, password)
        await self._store.save_user(replace(user, password_hash=hashed))

    async def set_locale(self, login: str, locale: str | None) -> ConsoleUser:
        """Store the user's UI language (a declared user's choice lasts this process)."""
        if locale is not None and locale not in LOCALES:
            raise UserError(f"locale {locale!r} is not one of {', '.join(LOCALES)}")
        declared = self._declared.get(login)
        if declared is not None:
            self._declared[login] = replace(declared, locale=locale)
            return self._declared[login]
        user = replace(await self._existing(login), locale=locale)
        await self._store.save_user(user)
        return user

    async def remove(self, login: str) -> None:
        if not await self._store.delete_user(login):
            raise UserError(f"no user {login!r}")

    async def get(self, login: str) -> ConsoleUser | None:
        return self._declared.get(login) or await self._store.get_user(login)

    async def all(self) -> list[ConsoleUser]:
        stored = [u for u in await self._store.users() if u.login not in self._declared]
        return sorted([*self._declared.values(), *stored], key=lambda u: u.login)

    async def verify(self, login: str, password: str) -> ConsoleUser | None:
        """The user when ``password`` is theirs, else None (same cost either way)."""
        user = await self.get(login) if LOGIN.match(login) else None
        stored = user.password_hash if user is not None else _DUMMY_HASH
        if len(password) > MAX_PASSWORD:
            return None
        try:
            await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        if login not in self._declared and _hasher.check_needs_rehash(stored):
            hashed = await asyncio.to_thread(_hasher.hash, password)
            user = replace(user, password_hash=hashed)
            await self._store.save_user(user)
        return user

    async def _existing(self, login: str) -> ConsoleUser:
        user = await self._store.get_user(login)
        if user is None:
            raise UserError(f"no user {login!r}")
        return user
