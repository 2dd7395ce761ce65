"""Security pieces of the web foundation: the CSP, CSRF checks, login rate limits."""

from __future__ import annotations

import abc
import hmac
import time
from collections import defaultdict, deque
from collections.abc import Callable

import redis.asyncio as aioredis
from aiohttp import web

#: Scripts, styles, images and connections (SSE) from this origin only; nothing
#: inline, no eval, no plug-ins, no framing, forms post back here only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


async def check_csrf(request: web.Request, expected: str) -> bool:
    """The POST carries the session's token (form field ``csrf`` or header)."""
    given = request.headers.get("X-CSRF-Token")
    if given is None:
        form = await request.post()  # cached by aiohttp: the handler reads it again
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LoginLimiter(abc.ABC):
    """Failed sign-ins counted per login and per client address in a fixed window:
    once either reaches ``attempts``, sign-in is refused (429) until the window ends,
    even with the right password, so guessing costs a window per few tries."""

    def __init__(self, attempts: int, window_seconds: int) -> None:
        self.attempts = attempts
        self.window = window_seconds

    async def allowed(self, login: str, address: str) -> bool:
        counts = await self._counts([f"login:{login.casefold()}", f"address:{address}"])
        return all(count < self.attempts for count in counts)

    async def failed(self, login: str, address: str) -> None:
        await self._add([f"login:{login.casefold()}", f"address:{address}"])

    async def succeeded(self, login: str) -> None:
        await self._clear(f"login:{login.casefold()}")

    @abc.abstractmethod
    async def _counts(self, keys: list[str]) -> list[int]: ...

    @abc.abstractmethod
    async def _add(self, keys: list[str]) -> None: ...

    @abc.abstractmethod
    async def _clear(self, key: str) -> None: ...


class MemoryLoginLimiter(LoginLimiter):
    """One process (the memory store): failures kept in this process."""

    def __init__(
        self, attempts: int, window_seconds: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(attempts, window_seconds)
        self._monotonic = monotonic
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        cutoff = self._monotonic() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    async def _counts(self, keys: list[str]) -> list[int]:
        return [len(self._recent(key)) for key in keys]

    async def _add(self, keys: list[str]) -> None:
        for key in keys:
            self._recent(key).append(self._monotonic())
        if len(self._failures) > 100_000:  # forget keys with no recent failure
            for key in [k for k in self._failures if not self._recent(k)]:
                del self._failures[key]

    async def _clear(self, key: str) -> None:
        self._failures.pop(key, None)


class RedisLoginLimiter(LoginLimiter):
    """Every process on one Redis shares the counts (INCR + EXPIRE per window)."""

    def __init__(
        self, client: aioredis.Redis, attempts: int, window_seconds: int, prefix: str = "escala"
    ) -> None:
        super().__init__(attempts, window_seconds)
        self._redis = client
        self._prefix = f"{prefix}:web:failed:"

    async def _counts(self, keys: list[str]) -> list[int]:
        values = await self._redis.mget([self._prefix + key for key in keys])
        return [int(v) if v is not None else 0 for v in values]

    async def _add(self, keys: list[str]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(self._prefix + key)
                pipe.expire(self._prefix + key, self.window, nx=True)
            await pipe.execute()

    async def _clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)
