"""The HTTP server behind ``escala serve`` (issue 4): channel webhooks and ``/healthz``.

Every enabled channel is a :class:`~bot.plugins.Plugin` (found through the
``escala.channels`` entry points, :mod:`bot.plugins`) that brings its routes and its start/stop
(polling, ``setWebhook``, flushing outbound retries, closing SDK clients). The server
adds only ``GET /healthz`` and one middleware that bounds request bodies and turns a
store failure into 503 (the provider retries) instead of a 500 with a traceback.

Shutdown order (aiohttp's runner): stop accepting, let in-flight webhooks finish (each
has stored its message before answering 200), then stop the plugins, which flush
their outbound queues and close their clients, then close the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot import plugins, scrape
from bot.app import Escala, build, desk_problems
from bot.errors import ConfigErrors, StoreError
from bot.logs import parse_logging
from bot.metrics import Metrics, MetricsConfig, parse_metrics
from bot.plugins import MountsApp, ParseContext, Plugin
from bot.settings import Settings
from bot.store import Store
from bot.toml_config import Section

log = logging.getLogger(__name__)

ESCALA = web.AppKey("escala", Escala)
MAX_BODY = web.AppKey("max_body_bytes", int)
METRICS = web.AppKey("metrics", Metrics)


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where to listen, the request body limit and the public URL that
    providers call (Twilio signs the URL it called, so behind a proxy we need it)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    public_base_url: str | None = None
    shutdown_timeout_seconds: float = 30.0


def parse_server(file: str, data: Mapping[str, Any]) -> ServerConfig:
    s = Section(file, "server", data)
    d = ServerConfig()
    s.check_keys(d.__dataclass_fields__)
    port = s.integer("port", d.port, minimum=1)
    if port > 65535:
        raise s.error("port", f"must be at most 65535, got {port}")
    timeout = s.number("shutdown_timeout_seconds", d.shutdown_timeout_seconds, positive=True)
    return ServerConfig(
        host=s.string("host", d.host),
        port=port,
        max_body_bytes=s.integer("max_body_bytes", d.max_body_bytes, minimum=1024),
        public_base_url=public_url(s, "public_base_url"),
        shutdown_timeout_seconds=timeout if timeout is not None else d.shutdown_timeout_seconds,
    )


def public_url(s: Section, key: str) -> str | None:
    """An optional ``https://host[/prefix]`` URL, without a trailing slash."""
    value = s.optional_string(key)
    if value is None:
        return None
    if not value.startswith(("https://", "http://")):
        raise s.error(key, f"expected an http(s):// URL, got {value!r}")
    return value.rstrip("/")


def server_config(settings: Settings) -> ServerConfig:
    """``[server]`` from the settings, validated (the defaults where a key is absent)."""
    return parse_server(str(settings.source or "settings"), settings.server)


# --- the application ---------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await _guarded(request, handler)
    # The one place HTTP status codes are counted (issue 14), by route pattern: a
    # path never carries customer data into a label.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as e:
        metrics.http_response(route, e.status)
        raise
    metrics.http_response(route, response.status)
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreError as e:
        # Not acknowledged, so the provider retries; nothing was marked as seen.
        log.error("store failure on %s %s: %s", request.method, request.path, e)
        return web.Response(status=503, text="temporarily unavailable, retry later\n")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return web.Response(status=500, text="internal error\n")


async def _healthz(request: web.Request) -> web.Response:
    try:
        await request.app[ESCALA].store.ping()
    except Exception as e:
        log.warning("healthz: store unreachable: %s", type(e).__name__)
        return web.Response(status=503, text="store unreachable\n")
    return web.Response(text="ok\n")


def create_app(
    escala: Escala,
    plugins: Sequence[Plugin],
    *,
    max_body_bytes: int = 1_048_576,
    metrics: Metrics | None = None,
    metrics_config: MetricsConfig | None = None,
) -> web.Application:
    """The webhooks' application; with ``metrics``, ``/metrics`` too unless
    ``metrics_config.port`` puts it on a listener of its own (:func:`run_server`)."""
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_guard])
    app[ESCALA] = escala
    app[MAX_BODY] = max_body_bytes
    app.router.add_get("/healthz", _healthz)
    if metrics is not None:
        app[METRICS] = metrics
        config = metrics_config or MetricsConfig()
        if config.port is None:
            app.router.add_get(config.path, scrape_handler(escala, metrics, config))
    for plugin in plugins:
        app.router.add_routes(plugin.routes())
        if isinstance(plugin, MountsApp):
            for prefix, subapp in plugin.subapps():
                app.add_subapp(prefix, subapp)

    async def stop_all(started: Sequence[Plugin]) -> None:
        for plugin in reversed(started):
            try:
                await plugin.stop()
            except Exception:  # one channel's failure must not keep the others open
                log.exception("channel %s did not stop cleanly", plugin.name)

    async def start(_: web.Application) -> None:
        # Before anything answers: the live content version (seeded from the files on
        # an empty store), then followed so a publish reaches this process (issue 16).
        await escala.content.start()
        started: list[Plugin] = []
        try:
            for plugin in plugins:
                await plugin.start()
                started.append(plugin)
                log.info("channel %s started", plugin.name)
        except BaseException:
            # One refused to start (aiohttp then runs no cleanup): stop the ones that
            # did, so their clients and pollers do not outlive the failed start-up.
            await stop_all(started)
            raise
        # After the plugins: a timer may need one (a Slack card to post again).
        escala.timers.start(escala.settings.engine.timer_sweep_seconds)

    async def stop(_: web.Application) -> None:
        await escala.timers.stop()  # before the plugins whose clients its timers use
        await stop_all(plugins)
        await escala.content.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def parse_context(settings: Settings) -> ParseContext:
    server = server_config(settings)
    return ParseContext(
        file=str(settings.source or "settings"),
        settings=settings,
        default_locale=settings.engine.default_locale,
        public_base_url=server.public_base_url,
    )


def check_edges(settings: Settings) -> list[str]:
    """Validate ``[server]``, ``[metrics]``, ``[logging]`` and every channel's table
    without connecting anywhere or importing a channel's SDK (``escala check``); the
    names of the enabled channels."""
    file = str(settings.source or "settings")
    parse_metrics(file, settings.metrics)
    parse_logging(file, settings.logging)
    return [spec.name for spec, _ in plugins.configured(settings, parse_context(settings))]


def scrape_handler(escala: Escala, metrics: Metrics, config: MetricsConfig) -> scrape.Scrape:
    return scrape.handler(metrics, config, escala.desk, escala.store, escala.store)


def build_plugins(settings: Settings, escala: Escala) -> list[Plugin]:
    """A plugin for every channel the settings enable. Must run inside the event loop."""
    configured = plugins.configured(settings, parse_context(settings))
    return [spec.build(config, escala.edge) for spec, config in configured]


async def run_server(
    settings: Settings,
    store: Store,
    *,
    host: str | None = None,
    port: int | None = None,
    extra_plugins: Sequence[Plugin] = (),
    ready: Callable[[Escala, str], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (module docstring).
    ``ready(escala, base_url)`` runs once the server listens (``escala demo``)."""
    try:
        server = server_config(settings)
        metrics_config = parse_metrics(str(settings.source or "settings"), settings.metrics)
        metrics = Metrics() if metrics_config.enabled else None
        escala = build(settings, store=store, metrics=metrics)
        problems = desk_problems(settings, escala.engine.parts.triage)
        if problems:  # a tier nobody works: its tickets would wait forever
            raise ConfigErrors.of(problems)
        plugins = [*build_plugins(settings, escala), *extra_plugins]
    except BaseException:
        await store.close()
        raise
    app = create_app(
        escala,
        plugins,
        max_body_bytes=server.max_body_bytes,
        metrics=metrics,
        metrics_config=metrics_config,
    )
    metrics_runner: web.AppRunner | None = None
    if metrics is not None and metrics_config.port is not None:
        handler = scrape_handler(escala, metrics, metrics_config)
        metrics_runner = web.AppRunner(scrape.metrics_app(handler, metrics_config.path))
    runner = web.AppRunner(
        app, shutdown_timeout=server.shutdown_timeout_seconds, handle_signals=False
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    reload_on_hangup(escala)
    try:
        await runner.setup()  # plugins start here (Slack auth.test, setWebhook ...)
    except BaseException:
        # A plugin refused to start (the others are stopped by then): close the store
        # and let the error (a ConfigError naming the key) reach the command line.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await store.close()
        raise
    try:
        site = web.TCPSite(runner, host or server.host, port or server.port)
        await site.start()
        if metrics_runner is not None:
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, host or server.host, metrics_config.port).start()
        names = ", ".join(p.name for p in plugins) or "none"
        where = f"{host or server.host}:{port or server.port}"
        log.info("escala serving on %s (channels: %s)", where, names)
        if ready is not None:
            await ready(escala, f"http://{where}")
        await stopping.wait()
        log.info("shutting down: finishing in-flight messages and outbound retries")
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        await store.close()


def reload_on_hangup(escala: Escala) -> None:
    """SIGHUP publishes the settings' KB, flow and routing files when they changed
    (file-based deployments, issue 16); every process then follows the new version."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[object]] = set()

    def hangup() -> None:
        log.info("SIGHUP: reloading content from files")
        task: asyncio.Task[object] = loop.create_task(escala.content.reload_files())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
