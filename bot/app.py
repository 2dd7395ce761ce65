"""Assemble Escala from its settings: load and cross-check every admin file, build
the store, the engine and the desk. Everything that can be wrong in a file is found
here, at start-up, with the file, the place and the reason."""

from __future__ import annotations

from dataclasses import dataclass

from bot.assignment import Assigner
from bot.breach import BreachPolicies
from bot.clock import Clock, Ids, SystemClock, UuidIds
from bot.content import (
    Content,
    ContentHolder,
    ContentVersions,
    embeddings,
    files_from_settings,
    make_matcher,
)
from bot.desk import Desk
from bot.edge import Edge
from bot.engine import Engine
from bot.errors import ConfigError
from bot.events import Recorder
from bot.handoff import Handoff
from bot.metrics import Metrics
from bot.models import BreachAction
from bot.outbox import Outbox
from bot.settings import Settings
from bot.sla import Deadlines
from bot.status import TicketStatus
from bot.store import MemoryStore, Store
from bot.tiers import TierMap
from bot.timers import Timers
from bot.triage import Triage, load_triage
from bot.turn import TurnParts
from bot.views import Views
from bot.workspaces import Workspaces
from flows.errors import FlowError
from flows.loader import FlowSet, load_flows
from flows.runner import FlowRunner
from kb.errors import KbError
from kb.loader import load_kb
from kb.matcher import Matcher
from kb.model import KnowledgeBase


@dataclass(frozen=True)
class Escala:
    """The assembled core. Adapters get only :attr:`edge`; tests and the command line
    may reach the parts."""

    settings: Settings
    store: Store
    engine: Engine
    desk: Desk
    outbox: Outbox
    workspaces: Workspaces
    recorder: Recorder
    tiers: TierMap
    views: Views
    #: Store timers and their sweeper: SLA alerts, and whatever a workspace registers.
    timers: Timers
    #: Fired by the ``sla`` and ``sla-resolution`` timers: the breach policies.
    alerts: BreachPolicies
    #: Automatic assignment: offers tickets of ``assignment = "auto"`` tiers.
    assigner: Assigner
    #: The one port adapters talk to the core through.
    edge: Edge
    #: Content versions (issue 16): :meth:`ContentVersions.start` seeds the store and
    #: keeps the engine on the live version.
    content: ContentVersions


def load_knowledge(settings: Settings) -> tuple[KnowledgeBase, Matcher]:
    try:
        kb = load_kb(settings.kb.paths)
    except KbError as e:
        raise ConfigError(e.file, e.place, e.reason, e.problems) from e
    return kb, make_matcher(kb, settings)


def load_flow_set(settings: Settings) -> FlowSet:
    try:
        flows = load_flows(settings.flows.paths)
    except FlowError as e:
        raise ConfigError(e.file, e.place, e.reason, e.problems) from e
    source = str(settings.source or "built-in defaults")
    for key in ("greeting_flow", "human_flow", "status_flow", "after_answer_flow"):
        flow_id = getattr(settings.engine, key)
        if flow_id is not None and flows.get(flow_id) is None:
            known = ", ".join(flows.ids())
            raise ConfigError(source, f"engine.{key}", f"no flow '{flow_id}' (flows: {known})")
    tier_names = {tier.name for tier in settings.tiers}
    for flow_id, step_id, tier in sorted(flows.handoff_tiers()):
        if tier not in tier_names:
            raise ConfigError(
                source,
                f"flow '{flow_id}', step '{step_id}'.tier",
                f"unknown tier '{tier}' (tiers: {', '.join(sorted(tier_names))})",
            )
    return flows


def cross_check(settings: Settings, kb: KnowledgeBase, flows: FlowSet) -> None:
    """References between files: a KB entry's flow and tier hint must exist."""
    tier_names = {tier.name for tier in settings.tiers}
    for entry in kb.entries:
        if entry.flow is not None and flows.get(entry.flow) is None:
            raise ConfigError(
                "knowledge base", f"entry '{entry.id}'.flow", f"no flow '{entry.flow}'"
            )
        if entry.tier_hint is not None and entry.tier_hint not in tier_names:
            raise ConfigError(
                "knowledge base",
                f"entry '{entry.id}'.tier_hint",
                f"unknown tier '{entry.tier_hint}'",
            )


def desk_problems(settings: Settings, triage: Triage) -> list[ConfigError]:
    """What would leave tickets stuck (issue 13), every problem at once: a tier no agent
    works (its tickets could never be claimed), and a breach policy (a tier's or a
    routing rule's) that escalates into such a tier. ``escala check`` and ``escala
    serve`` refuse them; the Slack plug-in adds its own (a private rule's tier without a
    private channel)."""
    source = str(settings.source or "built-in defaults")
    rules_file = str(settings.triage.rules)
    tiers = TierMap(settings.tiers)
    worked = {name for agent in settings.agents for name in agent.tiers}
    problems: list[ConfigError] = []
    for i, tier in enumerate(settings.tiers, start=1):
        if tier.name not in worked:
            problems.append(
                ConfigError(
                    source,
                    f"tiers[{i}].name",
                    f"no agent works tier '{tier.name}' (add it to an [[agents]] tiers list):"
                    " its tickets could never be claimed",
                )
            )
    keys = ("on_first_response_breach", "on_resolution_breach")

    def into_empty(actions: tuple[BreachAction, ...] | None, tier: str) -> str | None:
        target = tiers.next_tier(tier)
        if not actions or BreachAction.ESCALATE not in actions or target is None:
            return None
        if target.name in worked:
            return None
        return f"escalates into tier '{target.name}', which no agent works"

    for i, tier in enumerate(settings.tiers, start=1):
        for key in keys:
            reason = into_empty(getattr(tier, key), tier.name)
            if reason:
                problems.append(ConfigError(source, f"tiers[{i}].{key}", reason))
    for i, rule in enumerate(triage.rules, start=1):
        for key in keys:
            reason = into_empty(getattr(rule.terms, key), rule.tier)
            if reason:
                problems.append(ConfigError(rules_file, f"rule[{i}] '{rule.name}'.{key}", reason))
    return problems


def build(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    metrics: Metrics | None = None,
) -> Escala:
    """Everything but the channels and workspaces, which the caller attaches.

    ``metrics``: this process's Prometheus metrics (``escala serve``), fed by the
    event recorder, the edge's turns and the store's Redis calls (issue 14)."""
    clock = clock or SystemClock()
    ids = ids or UuidIds()
    kb, matcher = load_knowledge(settings)
    flows = load_flow_set(settings)
    cross_check(settings, kb, flows)
    triage = load_triage(
        settings.triage.rules, settings.tiers, settings.business_hours, embeddings(settings), kb
    )
    holder = ContentHolder(
        Content(
            version=0,
            files=files_from_settings(settings),
            kb=kb,
            matcher=matcher,
            flows=flows,
            runner=FlowRunner(flows),
            triage=triage,
        )
    )
    if store is None:
        if settings.store.backend != "memory":
            raise ConfigError(
                str(settings.source), "store.backend", "this command runs on the memory store only"
            )
        store = MemoryStore()
    timers = Timers(store, clock)
    tiers = TierMap(settings.tiers)
    recorder = Recorder(store, clock, ids)
    if metrics is not None:
        recorder.subscribe(metrics.on_event)
        store.observe(metrics.redis_call)
    views = Views(store, store, tiers, settings.engine.card_context_messages)
    deadlines = Deadlines(tiers, settings.business_hours, timers)
    outbox = Outbox(
        store,
        store,
        recorder,
        clock,
        ids,
        timers,
        lease_seconds=settings.engine.outbox_lease_seconds,
    )
    workspaces = Workspaces(recorder)
    alerts = BreachPolicies(
        store, deadlines, tiers, views, recorder, workspaces, outbox, clock, timers
    )
    assigner = Assigner(store, tiers, settings.agents, views, workspaces, recorder, timers, clock)
    handoff = Handoff(store, tiers, deadlines, outbox, recorder, clock, ids)
    engine = Engine(
        store,
        TurnParts(
            conversations=store,
            desk=store,
            recorder=recorder,
            outbox=outbox,
            workspaces=workspaces,
            views=views,
            status=TicketStatus(store, tiers, deadlines, clock),
            handoff=handoff,
            kb=kb,
            matcher=matcher,
            flows=flows,
            runner=FlowRunner(flows),
            triage=triage,
            settings=settings.engine,
        ),
        holder,
    )
    content = ContentVersions(settings, store, holder, recorder, clock)
    desk = Desk(
        store,
        tiers=tiers,
        views=views,
        deadlines=deadlines,
        recorder=recorder,
        outbox=outbox,
        workspaces=workspaces,
        settings=settings.engine,
        clock=clock,
        ids=ids,
        agents=settings.agents,
    )
    edge = Edge(
        settings=settings,
        store=store,
        engine=engine,
        desk=desk,
        outbox=outbox,
        workspaces=workspaces,
        recorder=recorder,
        views=views,
        timers=timers,
        tiers=tiers,
        clock=clock,
        ids=ids,
        metrics=metrics,
        content=content,
    )
    return Escala(
        settings=settings,
        store=store,
        engine=engine,
        desk=desk,
        outbox=outbox,
        workspaces=workspaces,
        recorder=recorder,
        tiers=tiers,
        views=views,
        timers=timers,
        alerts=alerts,
        assigner=assigner,
        edge=edge,
        content=content,
    )
