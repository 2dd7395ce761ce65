"""``GET /metrics`` (issue 14): this process's metrics plus the desk read from the store.

The handler reads the desk gauges from the store on every scrape (a few reads: one
queue per tier, one agent set per configured agent, the stream's info), then writes
both registries in Prometheus' text format. With ``[metrics] token_env`` set a scrape
must send ``Authorization: Bearer <token>`` (401 otherwise); with ``[metrics] port``
the route lives on a listener of its own (:func:`metrics_app`) instead of the
webhooks' port.
"""

from __future__ import annotations

import hmac
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.desk import Desk
from bot.metrics import Metrics, MetricsConfig, desk_registry
from bot.models import Availability, TicketState
from bot.store.base import DeskStore, EventLog

log = logging.getLogger(__name__)

Scrape = Callable[[web.Request], Awaitable[web.Response]]


async def desk_values(
    desk: Desk, store: DeskStore, log_store: EventLog
) -> dict[str, dict[tuple[str, ...], float]]:
    """The desk gauges' values now (the same in every process of one store)."""
    values: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    for stat in await desk.queues():
        tier = (stat.tier,)
        values["escala_queue_depth"][tier] = stat.depth
        wait = stat.oldest_wait.total_seconds() if stat.oldest_wait else 0.0
        values["escala_queue_oldest_wait_seconds"][tier] = wait
        values["escala_queue_over_sla"][tier] = 1.0 if stat.breaching else 0.0
        values["escala_open_tickets"][(stat.tier, "queued")] = stat.depth
        values["escala_open_tickets"][(stat.tier, "assigned")] = 0
    busy = 0
    for agent_id in desk.agents:
        tickets = [t for t in await store.assigned(agent_id) if t.state is TicketState.ASSIGNED]
        values["escala_agent_open_tickets"][(agent_id,)] = len(tickets)
        busy += bool(tickets)
        for ticket in tickets:
            key = (ticket.tier, "assigned")
            values["escala_open_tickets"][key] = values["escala_open_tickets"].get(key, 0) + 1
    values["escala_agents_busy"][()] = busy
    said = await store.availabilities()
    for state in Availability:
        values["escala_agents"][(state.value,)] = 0
    for agent_id in desk.agents:  # never said anything: online (Desk.availability)
        state = said.get(agent_id, Availability.ONLINE)
        values["escala_agents"][(state.value,)] += 1
    info = await log_store.stream_info()
    values["escala_event_stream_length"][()] = info.length
    values["escala_event_stream_trimmed"][()] = info.trimmed
    return values


def handler(
    metrics: Metrics, config: MetricsConfig, desk: Desk, store: DeskStore, log_store: EventLog
) -> Scrape:
    expected = f"Bearer {config.token}".encode() if config.token else None

    async def scrape(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.Response(
                    status=401,
                    text="bearer token required\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        body = generate_latest(metrics.registry)
        try:
            body += generate_latest(desk_registry(await desk_values(desk, store, log_store)))
        except Exception as e:  # the process's own metrics still help when the store is down
            log.warning("metrics: desk gauges unavailable: %s", type(e).__name__)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return scrape


def metrics_app(scrape: Scrape, path: str) -> web.Application:
    """A listener of its own for ``/metrics`` (``[metrics] port``)."""
    app = web.Application()
    app.router.add_get(path, scrape)
    return app
