"""Prometheus metrics of one ``escala serve`` process (issue 14), with ``prometheus-client``.

Two kinds, so that several processes behind one Redis add up:

* **Counters and histograms are per process.** Prometheus scrapes every process
  (its ``instance`` label tells them apart) and ``sum()`` adds them. Most are fed by
  one subscriber to the event :class:`~bot.events.Recorder` (:meth:`Metrics.on_event`):
  tickets, KB outcomes, SLA breaches, CSAT, delivery failures, first-response and
  resolution times. The few things events cannot carry are measured in one place
  each: the turn (outcome and latency) in :meth:`bot.edge.Edge.receive`, provider
  calls in :class:`channels.sending.RetryingSender`, Redis operations in the store's
  one wrapper (``bot.store.redis._reachable``), HTTP status codes in the server's
  middleware.
* **Desk gauges describe the shared desk** (queue depth, oldest wait, open tickets
  per tier, tickets per agent, the event stream's length): read from the store at
  scrape time (:func:`desk_registry`), so every process reports the same values
  (aggregate them with ``max()``, not ``sum()``).

Labels carry only bounded, non-personal values: channel, tier, priority, outcome,
operation names, HTTP routes and status codes, agent ids. Never an address, a phone
number, a conversation id or text.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from bot.models import Event, EventKind
from bot.toml_config import Section, secret_from_env
from bot.turn import Outcome

#: Turn, provider and Redis latencies (seconds).
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REDIS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: First response and resolution (seconds): 1 minute to 3 days.
DESK_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: whether ``escala serve`` exposes ``/metrics``, where, and how guarded."""

    enabled: bool = True
    path: str = "/metrics"
    #: Environment variable holding a token scrapers must send as ``Authorization: Bearer``.
    token_env: str | None = None
    #: Serve ``/metrics`` on this port (same host) instead of the webhooks' port.
    port: int | None = None
    token: str | None = field(default=None, repr=False)


def parse_metrics(file: str, data: Mapping[str, Any]) -> MetricsConfig:
    s = Section(file, "metrics", data)
    d = MetricsConfig()
    s.check_keys(("enabled", "path", "token_env", "port"))
    path = s.string("path", d.path)
    if not path.startswith("/") or path == "/":
        raise s.error("path", f"expected an absolute path such as /metrics, got {path!r}")
    port = None
    if "port" in data:
        port = s.integer("port", minimum=1)
        if port > 65535:
            raise s.error("port", f"must be at most 65535, got {port}")
    token_env = s.optional_string("token_env")
    token = secret_from_env(file, s.at("token_env"), token_env) if token_env else None
    return MetricsConfig(s.boolean("enabled", d.enabled), path, token_env, port, token)


@dataclass
class TurnFacts:
    """What one turn recorded, to name its outcome."""

    kinds: set[str] = field(default_factory=set)
    label: str = "error"  # until finish(): the turn raised

    def finish(self, outcome: Outcome) -> None:
        """The turn's label: what the engine said, refined by the events it recorded."""
        if outcome is not Outcome.HANDLED:
            self.label = _OUTCOMES.get(outcome, str(outcome))
            return
        for kind, label in _HANDLED:
            if kind in self.kinds:
                self.label = label
                return
        self.label = "small_talk"


_TURN: contextvars.ContextVar[TurnFacts | None] = contextvars.ContextVar(
    "escala_turn", default=None
)

#: A handled turn's outcome: the first of these kinds it recorded, in this order.
_HANDLED = (
    (EventKind.HANDOFF, "handed_off"),
    (EventKind.KB_ANSWERED, "answered"),
    (EventKind.KB_SUGGESTED, "suggested"),
    (EventKind.KB_MISSED, "kb_missed"),
)
_OUTCOMES = {
    Outcome.DUPLICATE: "duplicate",
    Outcome.RELAYED: "relayed",
    Outcome.KEYWORD: "keyword",
    Outcome.UNSUPPORTED: "refused",
}


class Metrics:
    """This process's counters and histograms, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        r.register(GC_COLLECTOR)
        self.messages_in = Counter(
            "escala_messages_in",
            "Customer messages received, by channel and what the turn did "
            "(answered, suggested, handed_off, kb_missed, small_talk, relayed, duplicate, "
            "keyword, refused, error)",
            ["channel", "outcome"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "escala_turn_seconds",
            "Time to handle one customer message (lock, store, decision; sends are queued)",
            ["channel"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.provider_calls = Histogram(
            "escala_provider_send_seconds",
            "One outbound provider call (a part of a message), by channel and result "
            "(ok, retry, failed, not_sent, crashed)",
            ["channel", "result"],
            buckets=SEND_BUCKETS,
            registry=r,
        )
        self.delivery_failures = Counter(
            "escala_delivery_failures",
            "Messages that finally did not reach a customer or a workspace (delivery.failed)",
            ["channel"],
            registry=r,
        )
        self.kb = Counter("escala_kb_outcomes", "Knowledge-base decisions", ["outcome"], registry=r)
        self.tickets_opened = Counter(
            "escala_tickets_opened", "Tickets opened", ["tier", "priority"], registry=r
        )
        self.tickets_escalated = Counter(
            "escala_tickets_escalated",
            "Escalations, counted on the tier they left",
            ["tier", "to_tier", "priority"],
            registry=r,
        )
        self.tickets_resolved = Counter(
            "escala_tickets_resolved", "Tickets resolved", ["tier", "priority"], registry=r
        )
        self.sla_breaches = Counter(
            "escala_sla_breaches",
            "Promises broken, by tier and promise (first_response, resolution)",
            ["tier", "promise"],
            registry=r,
        )
        self.first_response = Histogram(
            "escala_first_response_seconds",
            "Ticket opened to first agent reply, on the tier where the reply happened",
            ["tier"],
            buckets=DESK_BUCKETS,
            registry=r,
        )
        self.resolution = Histogram(
            "escala_resolution_seconds",
            "Ticket opened to resolved, on the tier that resolved it",
            ["tier"],
            buckets=DESK_BUCKETS,
            registry=r,
        )
        self.csat = Counter(
            "escala_csat_answers",
            "CSAT answers by score (1-5) and tier",
            ["tier", "score"],
            registry=r,
        )
        self.events = Counter(
            "escala_events", "Events this process recorded, by kind", ["kind"], registry=r
        )
        self.redis_seconds = Histogram(
            "escala_redis_operation_seconds",
            "One store operation on Redis (one round trip for most), by operation",
            ["operation"],
            buckets=REDIS_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "escala_redis_errors",
            "Store operations on Redis that failed",
            ["operation"],
            registry=r,
        )
        # Labelled children by metric and label values, for the per-message paths:
        # labels() costs a lock and checks each time (label values are bounded sets:
        # kinds, tiers, priorities, channels, route patterns, status codes).
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.http = Counter(
            "escala_http_responses",
            "HTTP responses by route (its pattern) and status code",
            ["route", "status"],
            registry=r,
        )

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- the event recorder's subscriber --------------------------------------------

    async def on_event(self, event: Event) -> None:
        """Subscribed to the :class:`~bot.events.Recorder`: every event this process records."""
        kind = event.kind
        data = event.data
        self._child(self.events, str(kind)).inc()
        turn = _TURN.get()
        if turn is not None:
            turn.kinds.add(str(kind))
        if kind == EventKind.KB_ANSWERED:
            self._child(self.kb, "answered").inc()
        elif kind == EventKind.KB_SUGGESTED:
            self._child(self.kb, "suggested").inc()
        elif kind == EventKind.KB_MISSED:
            self._child(self.kb, "missed").inc()
        elif kind == EventKind.HANDOFF:
            self._child(self.tickets_opened, _label(data, "tier"), _label(data, "priority")).inc()
        elif kind == EventKind.ESCALATED:
            self._child(
                self.tickets_escalated,
                _label(data, "from_tier"),
                _label(data, "to_tier"),
                _label(data, "priority"),
            ).inc()
        elif kind == EventKind.RESOLVED:
            tier = _label(data, "tier")
            self._child(self.tickets_resolved, tier, _label(data, "priority")).inc()
            seconds = data.get("resolution_seconds")
            if isinstance(seconds, int | float):
                self._child(self.resolution, tier).observe(seconds)
        elif kind == EventKind.AGENT_REPLY:
            seconds = data.get("first_response_seconds")
            if isinstance(seconds, int | float):
                self._child(self.first_response, _label(data, "tier")).observe(seconds)
        elif kind == EventKind.SLA_BREACHED:
            promise = _label(data, "promise", "first_response")
            self._child(self.sla_breaches, _label(data, "tier"), promise).inc()
        elif kind == EventKind.CSAT_RECORDED:
            score = data.get("score")
            if isinstance(score, int) and 1 <= score <= 5:
                self._child(self.csat, _label(data, "tier"), str(score)).inc()
        elif kind == EventKind.DELIVERY_FAILED:
            self._child(self.delivery_failures, _label(data, "channel", "workspace")).inc()

    # -- measured in one place each ----------------------------------------------------

    @contextlib.contextmanager
    def turn(self, channel: str) -> Iterator[TurnFacts]:
        """Around one customer message (:meth:`bot.edge.Edge.receive`): its latency, and
        its outcome, which the caller gives :meth:`TurnFacts.finish` (``error`` when the
        turn raised)."""
        facts = TurnFacts()
        token = _TURN.set(facts)
        start = time.perf_counter()
        try:
            yield facts
        finally:
            _TURN.reset(token)
            seconds = time.perf_counter() - start
            self._child(self.turn_seconds, channel).observe(seconds)
            self._child(self.messages_in, channel, facts.label).inc()

    def provider_call(self, channel: str, result: str, seconds: float) -> None:
        self._child(self.provider_calls, channel, result).observe(seconds)

    def redis_call(self, operation: str, seconds: float, failed: bool) -> None:
        self._child(self.redis_seconds, operation).observe(seconds)
        if failed:
            self._child(self.redis_errors, operation).inc()

    def http_response(self, route: str, status: int) -> None:
        self._child(self.http, route, str(status)).inc()


def _label(data: Mapping[str, Any], key: str, default: str = "unknown") -> str:
    value = data.get(key)
    return str(value) if value is not None else default


def desk_registry(values: Mapping[str, Mapping[tuple[str, ...], float]]) -> CollectorRegistry:
    """A registry of gauges read from the store for one scrape (see :mod:`bot.scrape`)."""
    registry = CollectorRegistry()
    for name, (doc, labels) in DESK_GAUGES.items():
        gauge = Gauge(name, doc, list(labels), registry=registry)
        for label_values, value in values.get(name, {}).items():
            (gauge.labels(*label_values) if labels else gauge).set(value)
    return registry


DESK_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "escala_queue_depth": ("Tickets waiting in the tier's queue", ("tier",)),
    "escala_queue_oldest_wait_seconds": (
        "How long the oldest waiting ticket of the tier has waited (0: none waiting)",
        ("tier",),
    ),
    "escala_queue_over_sla": (
        "1 when the tier's oldest waiting ticket is past the tier's first-response promise",
        ("tier",),
    ),
    "escala_open_tickets": ("Open tickets by tier and state (queued, assigned)", ("tier", "state")),
    "escala_agent_open_tickets": ("Tickets assigned to each configured agent", ("agent",)),
    "escala_agents_busy": ("Configured agents holding at least one ticket", ()),
    "escala_agents": (
        "Configured agents by what they last said (online, away, offline; never: online)",
        ("availability",),
    ),
    "escala_event_stream_length": ("Events the event stream keeps", ()),
    "escala_event_stream_trimmed": ("Events the stream's cap has dropped (export before)", ()),
}
