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
import collections
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_log import AccessLogger

from bot import plugins, scrape
from bot.app import Escala, build, desk_problems
from bot.content import embeddings
from bot.edge import STOP_SECONDS
from bot.errors import ConfigErrors, StoreError
from bot.logs import parse_logging
from bot.metrics import Metrics, MetricsConfig, parse_metrics
from bot.plugins import MountsApp, ParseContext, Plugin
from bot.settings import Settings
from bot.store import Store
from bot.toml_config import Section
from bot.workers import Worker

log = logging.getLogger(__name__)

ESCALA = web.AppKey("escala", Escala)
MAX_BODY = web.AppKey("max_body_bytes", int)
METRICS = web.AppKey("metrics", Metrics)
#: What a 503 asks the provider to wait (seconds).
RETRY_AFTER_SECONDS = 1
#: The longest a stopping server waits for a timer sweep under way (within its budget).
TIMER_GRACE_SECONDS = 10.0
#: Net allocations between young garbage collections in a serving process (CPython's
#: default is 700; see run_server).
GC_YOUNG_THRESHOLD = 10_000


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: where to listen, the request body limit and the public URL that
    providers call (Twilio signs the URL it called, so behind a proxy we need it)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    public_base_url: str | None = None
    #: In-flight messages, timers, Slack actions and queued replies together
    #: (:func:`create_app`).
    shutdown_timeout_seconds: float = STOP_SECONDS
    #: Requests handled at once; more wait ``queue_seconds`` then get 503 + Retry-After.
    max_in_flight: int = 64
    queue_seconds: float = 0.5
    #: One line per request (aiohttp's access log): off by default, it costs CPU.
    access_log: bool = False
    #: A connection that has not sent a whole request head within this is closed
    #: (also the idle keep-alive limit): a client trickling headers cannot hold it.
    header_timeout_seconds: float = 15.0
    #: A request body not received within this is refused (408).
    body_timeout_seconds: float = 15.0
    #: Open connections per process; more are closed at once.
    max_connections: int = 1000


def parse_server(file: str, data: Mapping[str, Any]) -> ServerConfig:
    s = Section(file, "server", data)
    d = ServerConfig()
    s.check_keys(d.__dataclass_fields__)
    port = s.integer("port", d.port, minimum=1)
    if port > 65535:
        raise s.error("port", f"must be at most 65535, got {port}")
    timeout = s.number("shutdown_timeout_seconds", d.shutdown_timeout_seconds, positive=True)
    queue = s.number("queue_seconds", d.queue_seconds, low=0, high=30)
    header = s.number("header_timeout_seconds", d.header_timeout_seconds, low=0.1, high=3600)
    body = s.number("body_timeout_seconds", d.body_timeout_seconds, low=0.1, high=3600)
    return ServerConfig(
        header_timeout_seconds=header if header is not None else d.header_timeout_seconds,
        body_timeout_seconds=body if body is not None else d.body_timeout_seconds,
        max_connections=s.integer("max_connections", d.max_connections, minimum=1),
        max_in_flight=s.integer("max_in_flight", d.max_in_flight, minimum=1),
        queue_seconds=queue if queue is not None else d.queue_seconds,
        access_log=s.boolean("access_log", d.access_log),
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


def _busy(text: str) -> web.Response:
    """503 with ``Retry-After``: the provider retries soon instead of timing out."""
    return web.Response(status=503, text=text, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class InFlight:
    """At most ``limit`` requests handled at once in this process (issue 11): one more
    waits up to ``wait_seconds`` for a place, then gets a quick 503 with Retry-After,
    instead of piling up on the store's pool and the conversation locks.

    Places are handed over in arrival order: a request that finds others waiting
    queues behind them, and a freed place goes to the longest waiting one. (A request
    arriving just as a place frees used to take it ahead of those waiting, so under
    sustained load an unlucky one waited out its whole ``wait_seconds``: the 99th
    percentile was made of those.)"""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.current = 0
        self.refused = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def enter(self) -> bool:
        if self.current < self.limit and not self._waiting:
            self.current += 1
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turn  # resolved by _hand_over: the place is ours
        except TimeoutError:
            if turn.done() and not turn.cancelled():
                return True  # handed a place just as the time ran out: take it
            self.refused += 1
            return False
        except BaseException:  # the client went away
            if turn.done() and not turn.cancelled():
                self._hand_over()  # handed a place, not used: the next one takes it
            raise
        finally:
            if turn in self._waiting and turn.cancelled():
                self._waiting.remove(turn)
        return True

    async def leave(self) -> None:
        self._hand_over()

    def _hand_over(self) -> None:
        """A place frees: the longest waiting request takes it, else it is free."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # ``current`` unchanged: the place goes on
                return
        self.current -= 1


IN_FLIGHT = web.AppKey("in_flight", InFlight)
BODY_TIMEOUT = web.AppKey("body_timeout_seconds", float)


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
    if request.method != "POST":
        return await _handle(request, handler)
    in_flight = request.app[IN_FLIGHT]
    if not await in_flight.enter():
        log.warning("saturated: %d requests in flight; 503 to %s", in_flight.limit, request.path)
        return _busy("busy, retry later\n")
    try:
        # The body is read here, bounded in time (aiohttp keeps it for the handler's
        # read()/json()/post()): a client trickling it cannot hold a place for ever.
        try:
            async with asyncio.timeout(request.app[BODY_TIMEOUT]):
                await request.read()
        except TimeoutError:
            log.warning("request body not received in time on %s", request.path)
            return web.Response(status=408, text="request body too slow\n")
        return await _handle(request, handler)
    finally:
        await in_flight.leave()


async def _handle(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreError as e:
        # Not acknowledged, so the provider retries; nothing was marked as seen.
        log.error("store failure on %s %s: %s", request.method, request.path, e)
        return _busy("temporarily unavailable, retry later\n")
    except (RecursionError, UnicodeError) as e:
        # Authenticated but absurd (200,000-deep JSON, a lone surrogate the store cannot
        # encode): a client error, never a 500 the provider would retry for ever.
        log.warning("unprocessable %s %s: %s", request.method, request.path, type(e).__name__)
        return web.Response(status=400, text="unprocessable payload\n")
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
    max_in_flight: int = 64,
    queue_seconds: float = 0.5,
    body_timeout_seconds: float = 15.0,
    shutdown_timeout_seconds: float = STOP_SECONDS,
) -> web.Application:
    """The webhooks' application; with ``metrics``, ``/metrics`` too unless
    ``metrics_config.port`` puts it on a listener of its own (:func:`run_server`).
    Stopping it takes at most ``shutdown_timeout_seconds`` for in-flight messages, a
    timer sweep under way, agents' Slack actions and the channels' queued replies
    together."""
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_guard])
    app[ESCALA] = escala
    app[MAX_BODY] = max_body_bytes
    app[IN_FLIGHT] = InFlight(max_in_flight, queue_seconds)
    app[BODY_TIMEOUT] = body_timeout_seconds
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
        found = embeddings(escala.settings)
        if found is not None:
            # Start-up read the KB's embeddings from the cache; the model itself loads in
            # the background, so neither readiness nor the first message waits ~2 s.
            found.encoder.warm_up()

    async def stopping(_: web.Application) -> None:
        # aiohttp runs this before it waits for in-flight requests: the clock starts
        # here, and the channels flush their queues in what is left of it.
        escala.edge.stopping(shutdown_timeout_seconds)

    async def stop(_: web.Application) -> None:
        # Before the plugins whose clients its timers use; a sweep under way gets what
        # is left of the stop budget, at most its usual grace.
        await escala.timers.stop(min(TIMER_GRACE_SECONDS, escala.edge.time_to_stop()))
        await stop_all(plugins)
        await escala.content.stop()
        await escala.outbox.close()  # what is not sent stays stored, for the next process

    app.on_startup.append(start)
    app.on_shutdown.append(stopping)
    app.on_cleanup.append(stop)
    return app


#: aiohttp's default access log line, plus the process id: which worker served it.
WORKER_ACCESS_LOG_FORMAT = AccessLogger.LOG_FORMAT + " pid=%P"


def runner_for(
    app: web.Application, server: ServerConfig, *, worker: bool = False
) -> web.AppRunner:
    """The app's runner with the connection limits of ``[server]`` (``worker``: one of
    several processes on the port, whose access log lines name the process)."""
    return web.AppRunner(
        app,
        shutdown_timeout=server.shutdown_timeout_seconds,
        handle_signals=False,
        access_log=logging.getLogger("aiohttp.access") if server.access_log else None,
        # aiohttp arms this when a connection opens and on every idle wait, and closes
        # a connection still short of a whole request head then: the header timeout.
        keepalive_timeout=server.header_timeout_seconds,
        access_log_format=WORKER_ACCESS_LOG_FORMAT if worker else AccessLogger.LOG_FORMAT,
    )


def cap_connections(runner: web.AppRunner, limit: int) -> None:
    """Close, at once, any connection beyond ``limit`` open ones (after setup)."""
    server = runner.server
    assert server is not None, "cap_connections runs after runner.setup()"
    made = server.connection_made

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        made(handler, transport)
        if len(server.connections) > limit:
            log.warning("%d connections open: one more refused", limit)
            transport.close()

    server.connection_made = connection_made  # type: ignore[method-assign]


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
    worker: Worker | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (module docstring).
    ``ready(escala, base_url)`` runs once the server listens (``escala demo``).
    ``worker``: one of ``escala serve --workers N`` (:mod:`bot.workers`): the port is
    bound with ``SO_REUSEPORT``, ``/metrics`` is on ``[metrics] port`` + the worker's
    index, and the supervisor's pipe closing (it died) stops this process too."""
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
        max_in_flight=server.max_in_flight,
        queue_seconds=server.queue_seconds,
        body_timeout_seconds=server.body_timeout_seconds,
        shutdown_timeout_seconds=server.shutdown_timeout_seconds,
    )
    metrics_runner: web.AppRunner | None = None
    if metrics is not None and metrics_config.port is not None:
        handler = scrape_handler(escala, metrics, metrics_config)
        metrics_runner = web.AppRunner(scrape.metrics_app(handler, metrics_config.path))
    runner = runner_for(app, server, worker=worker is not None)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if worker is not None and worker.supervisor_fd is not None:
        watch_supervisor(worker.supervisor_fd, stopping)
    reload_on_hangup(escala)
    try:
        await runner.setup()  # plugins start here (Slack auth.test, setWebhook ...)
        cap_connections(runner, server.max_connections)
    except BaseException:
        # A plugin refused to start (the others are stopped by then): close the store
        # and let the error (a ConfigError naming the key) reach the command line.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await store.close()
        raise
    try:
        shared = worker is not None  # several processes listen on this port
        site = web.TCPSite(runner, host or server.host, port or server.port, reuse_port=shared)
        await site.start()
        if metrics_runner is not None:
            assert metrics_config.port is not None
            metrics_port = metrics_config.port + (worker.index if worker is not None else 0)
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, host or server.host, metrics_port).start()
        # Everything built so far (SDK types, schemas, the KB index: ~2·10^5 objects with
        # aiogram) lives as long as the process: out of the collector's sight, so a
        # full collection no longer walks it and stalls the loop for tens of ms (p99).
        gc.collect()
        gc.freeze()
        # A message allocates thousands of short-lived objects, nearly all freed by
        # reference counting, yet at CPython's default (a young collection every 700
        # net allocations) the collector took 6% of a memory-store server's CPU and 2%
        # of a Redis one's under bench.e2e's load (one run each; its longest pause 149
        # ms). At 10,000: 0.6% and 0.04% (longest 37 ms). Issue 18, README "Benchmarks".
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        names = ", ".join(p.name for p in plugins) or "none"
        where = f"{host or server.host}:{port or server.port}"
        if worker is not None:
            log.info(
                "escala worker %d/%d (pid %d) serving on %s (channels: %s)",
                worker.index, worker.count, os.getpid(), where, names,
            )  # fmt: skip
        else:
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


def watch_supervisor(fd: int, stopping: asyncio.Event) -> None:
    """Set ``stopping`` when the supervisor's end of the pipe ``fd`` closes (it exited
    or was killed): a worker never outlives its supervisor."""
    loop = asyncio.get_running_loop()

    def closed() -> None:
        loop.remove_reader(fd)
        if not stopping.is_set():
            log.error("the supervisor is gone: shutting down")
            stopping.set()

    loop.add_reader(fd, closed)


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
