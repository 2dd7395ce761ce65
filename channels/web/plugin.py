"""The ``web`` entry point: the web console, configured by ``[web]``.

Validating the table imports no web library; building the plug-in does. Sessions and
login counters live in Redis when the store is Redis (any process serves any
request), else in encrypted cookies and in this process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from bot.edge import Edge
from bot.plugins import ParseContext, Plugin
from channels.web.config import WebConfig, load_web_config

log = logging.getLogger(__name__)

COOKIE = "escala_session"


class WebSpec:
    name = "web"
    section = "web"

    def parse(self, table: Mapping[str, Any], context: ParseContext) -> WebConfig:
        return load_web_config(context.file, table, context.settings)

    def build(self, config: WebConfig, edge: Edge) -> Plugin:
        return WebPlugin(config, edge)


class WebPlugin:
    """Mounts the console's sub-application at ``[web] path``; ``/`` leads there."""

    name = "web"

    def __init__(self, config: WebConfig, edge: Edge) -> None:
        from aiohttp_session import AbstractStorage
        from aiohttp_session.cookie_storage import EncryptedCookieStorage

        from channels.web.console import Console
        from channels.web.security import LoginLimiter, MemoryLoginLimiter, RedisLoginLimiter
        from channels.web.site import Site
        from channels.web.studio import Studio

        self.config = config
        cookie: dict[str, Any] = {
            "cookie_name": COOKIE,
            "max_age": config.session_minutes * 60,
            "path": config.path,
            "secure": config.secure_cookies,
            "httponly": True,
            "samesite": config.same_site,
        }
        storage: AbstractStorage
        limiter: LoginLimiter
        settings = edge.settings
        self._redis = None
        url = settings.store.redis_url(str(settings.source or "settings"))
        if settings.store.backend == "redis" and url is not None:
            import redis.asyncio as aioredis
            from aiohttp_session.redis_storage import RedisStorage

            self._redis = aioredis.from_url(url)
            storage = RedisStorage(self._redis, key_factory=_session_key, **cookie)
            limiter = RedisLoginLimiter(
                self._redis, config.login_attempts, config.login_window_seconds
            )
        else:
            key = config.secret_key
            if key is None:
                log.info("web: no [web] secret_key_env; sessions end when this process does")
                key = os.urandom(32)
            storage = EncryptedCookieStorage(key, **cookie)
            limiter = MemoryLoginLimiter(config.login_attempts, config.login_window_seconds)
        for user in config.users:
            edge.users.declare(user)
        self.site = Site(edge, config, storage, limiter)
        self.console = Console(self.site, config.recent_resolved)
        self.studio = Studio(self.site, config.kb_cases, config.turn_cases)

    def routes(self) -> Sequence[web.RouteDef]:
        async def root(_: web.Request) -> web.StreamResponse:
            raise web.HTTPSeeOther(f"{self.config.path}/")

        return [web.get("/", root)]

    def subapps(self) -> Sequence[tuple[str, web.Application]]:
        return [(self.config.path, self.site.app)]

    async def start(self) -> None:
        log.info("web console at %s/", self.config.path)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def _session_key() -> str:
    """A session id nobody can guess (the Redis key is ``escala_session_<id>``)."""
    import secrets

    return secrets.token_urlsafe(32)


channel = WebSpec()
