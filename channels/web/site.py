"""The web foundation every page of Escala is built on (console today, studio next).

One :class:`Site` is one aiohttp sub-application mounted at ``[web] path``. It owns
what every page shares, so a page module only says what it shows and who may see it:

* **sessions** (``aiohttp-session``): in Redis when the store is Redis, so any
  process serves any request; else an encrypted cookie (Fernet). Cookies are
  HttpOnly, SameSite and Secure (``[web] secure_cookies`` turns Secure off for
  plain-http development only).
* **login** with the :class:`bot.users.Users` of the Edge, rate-limited per login and
  per client address (:mod:`channels.web.security`); a new session id at sign-in.
* **roles**, enforced here for every route: a handler is registered with the least
  role it needs (:meth:`Site.get`, :meth:`Site.post`), and a route registered any
  other way is refused (fail closed). Agents get 403 on supervisor pages and actions.
* **CSRF**: every POST must carry the session's token (form field ``csrf`` or header
  ``X-CSRF-Token``), the login form too; templates get it as ``csrf``.
* **security headers**: a strict Content-Security-Policy (scripts and styles from
  this origin only, nothing inline), no framing, no sniffing, no caching of pages.
* **templates** (``aiohttp-jinja2``, autoescaped: customer text is always text) with
  ``t()`` for the user's language, and the vendored static files (htmx).
* **live updates** over Server-Sent Events (:mod:`channels.web.live`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import AbstractStorage, get_session, new_session, session_middleware

from bot.edge import Edge
from bot.models import ConsoleRole, ConsoleUser
from channels.web import i18n
from channels.web.config import WebConfig
from channels.web.live import LiveHub
from channels.web.security import CSP, LoginLimiter, check_csrf

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

USER = web.RequestKey("user", ConsoleUser)
LOCALE = web.RequestKey("locale", str)
CSRF = web.RequestKey("csrf", str)

#: The "role" of the routes anyone may reach (the login form).
_PUBLIC = "public"


class Site:
    """The web sub-application: pages register on it with the role they need."""

    def __init__(
        self,
        edge: Edge,
        config: WebConfig,
        storage: AbstractStorage,
        limiter: LoginLimiter,
        *,
        template_dirs: Iterable[Path] = (),
    ) -> None:
        self.edge = edge
        self.config = config
        self.limiter = limiter
        self.live = LiveHub(edge)
        #: The least role each route needs (a route missing here is refused).
        self._roles: dict[web.AbstractRoute, ConsoleRole | str] = {}
        # Order matters: headers on every answer, then the session, then the checks.
        self.app = web.Application(
            middlewares=[self._headers, session_middleware(storage), self._guard]
        )
        self.app[SITE] = self
        loader = jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(d)) for d in (*template_dirs, HERE / "templates")]
        )
        env = aiohttp_jinja2.setup(
            self.app,
            loader=loader,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            context_processors=[self._context],
        )
        env.globals["base"] = config.path
        self.app.router.add_static("/static", HERE / "static", name="static")
        self._public(self.app.router.add_get("/login", self._login_page))
        self._public(self.app.router.add_post("/login", self._login))
        self.post("/logout", ConsoleRole.AGENT)(self._logout)
        self.post("/language", ConsoleRole.AGENT)(self._language)
        self.app.on_startup.append(self._start_live)
        self.app.on_shutdown.append(self._close_streams)
        self.app.on_cleanup.append(self._stop_live)

    # -- registering pages ------------------------------------------------------------

    def get(
        self, path: str, role: ConsoleRole, name: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Register a page: only users whose role allows ``role`` get it (else 403)."""

        def register(handler: Handler) -> Handler:
            self._roles[self.app.router.add_get(path, handler, name=name)] = role
            return handler

        return register

    def post(self, path: str, role: ConsoleRole) -> Callable[[Handler], Handler]:
        """Register an action: role checked, CSRF token checked, before ``handler``."""

        def register(handler: Handler) -> Handler:
            self._roles[self.app.router.add_post(path, handler)] = role
            return handler

        return register

    def _public(self, route: web.AbstractRoute) -> None:
        self._roles[route] = _PUBLIC

    def url(self, path: str) -> str:
        return f"{self.config.path}{path}"

    # -- middlewares --------------------------------------------------------------------

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            _secure(e)
            raise
        _secure(response)
        return response

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None:
            raise match.http_exception
        role = self._roles.get(match.route)
        static = match.route.resource is not None and match.route.resource.name == "static"
        if static:
            return await handler(request)
        session = await get_session(request)
        token = session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            session["csrf"] = token
        request[CSRF] = token
        if request.method == "POST" and not await check_csrf(request, token):
            log.warning("CSRF token missing or wrong on POST %s", request.path)
            raise web.HTTPForbidden(text="CSRF token missing or wrong; reload the page\n")
        login = session.get("login")
        user = await self.edge.users.get(login) if isinstance(login, str) else None
        request[LOCALE] = i18n.pick_locale(
            user.locale if user else None,
            request.headers.get("Accept-Language"),
            self.edge.settings.engine.default_locale,
        )
        if role == _PUBLIC:
            return await handler(request)
        if user is None:
            if request.method == "GET" and "text/event-stream" not in request.headers.get(
                "Accept", ""
            ):
                raise web.HTTPSeeOther(self.url("/login"))
            raise web.HTTPUnauthorized(text="sign in first\n")
        request[USER] = user
        if not isinstance(role, ConsoleRole):  # a route registered around Site.get/post
            log.error("route %s has no role; refused", request.path)
            raise web.HTTPForbidden(text="not allowed\n")
        if not user.role.allows(role):
            log.warning(
                "%s (%s) refused %s %s", user.login, user.role, request.method, request.path
            )
            # Rendered before the template middleware runs: the context comes along.
            context = await self._context(request)
            return aiohttp_jinja2.render_template("forbidden.html", request, context, status=403)
        return await handler(request)

    # -- templates ------------------------------------------------------------------------

    async def _context(self, request: web.Request) -> dict[str, Any]:
        locale = request.get(LOCALE) or self.edge.settings.engine.default_locale

        def t(key: str, **values: object) -> str:
            return i18n.text(key, locale, **values)

        return {
            "t": t,
            "locale": locale,
            "csrf": request.get(CSRF, ""),
            "user": request.get(USER),
            "ConsoleRole": ConsoleRole,
            "path": request.path,
            "flash": None,
        }

    # -- login --------------------------------------------------------------------------

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        if isinstance(session.get("login"), str):
            raise web.HTTPSeeOther(self.url("/"))
        return aiohttp_jinja2.render_template("login.html", request, {"error": None})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        login = str(form.get("login", ""))[:64].strip()
        password = str(form.get("password", ""))
        address = request.remote or "?"
        if not await self.limiter.allowed(login, address):
            log.warning("login rate-limited for %r from %s", login, address)
            return aiohttp_jinja2.render_template(
                "login.html", request, {"error": "login.limited"}, status=429
            )
        user = await self.edge.users.verify(login, password)
        if user is None:
            await self.limiter.failed(login, address)
            log.info("failed login for %r from %s", login, address)
            return aiohttp_jinja2.render_template(
                "login.html", request, {"error": "login.bad"}, status=401
            )
        await self.limiter.succeeded(login)
        session = await new_session(request)  # a fresh id: no session fixation
        session["login"] = user.login
        session["csrf"] = secrets.token_urlsafe(32)
        log.info("%s signed in from %s", user.login, address)
        raise web.HTTPSeeOther(self.url("/"))

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session.invalidate()
        raise web.HTTPSeeOther(self.url("/login"))

    async def _language(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        choice = str(form.get("locale", ""))
        user = request[USER]
        await self.edge.users.set_locale(user.login, choice if choice in ("pt-BR", "en") else None)
        back = str(form.get("next", ""))
        safe = back.startswith(self.config.path + "/") and "//" not in back
        raise web.HTTPSeeOther(back if safe else self.url("/"))

    # -- live ---------------------------------------------------------------------------

    async def _start_live(self, _: web.Application) -> None:
        await self.live.start()

    async def _close_streams(self, _: web.Application) -> None:
        self.live.close_all()  # else shutdown waits for every open page

    async def _stop_live(self, _: web.Application) -> None:
        await self.live.stop()


SITE = web.AppKey("site", Site)


def site_of(request: web.Request) -> Site:
    return request.app[SITE]


def _secure(response: web.StreamResponse | web.HTTPException) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")
