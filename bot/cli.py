"""The ``escala`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.errors import ConfigError, ConfigErrors
from bot.models import ConsoleRole
from bot.settings import Settings, load_settings

# Everything else is imported by the command that uses it: `escala kb ask` and
# `escala check` start in a fraction of a second only if they skip what they do not
# need (the store, argon2, flows, the event recorder ...; issue 18, part 5).
if TYPE_CHECKING:
    import asyncio

    from bot.app import Escala
    from bot.workers import Worker
    from kb.matcher import Matcher
    from kb.model import KnowledgeBase


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except ConfigError as e:
        print(f"escala: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`escala kb ask ... | head -2`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escala", description="Omnichannel support bot and tiered conversation router."
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal (customer and agents)")
    chat.add_argument("--config", type=Path, help="settings file (default: built-in defaults)")
    chat.add_argument(
        "--locale",
        choices=["pt-BR", "en"],
        help="the customer's locale (default: the language they write in, starting in "
        "[engine] default_locale)",
    )
    chat.add_argument("--agent", help="the agent you act as (default: the first configured)")
    chat.set_defaults(run=run_chat)

    check = sub.add_parser("check", help="load and cross-check config, KB, flows and routing")
    check.add_argument("--config", type=Path)
    check.set_defaults(run=run_check)

    kb = sub.add_parser("kb", help="knowledge base tools").add_subparsers(dest="kb", required=True)
    ask = kb.add_parser("ask", help="show the matcher's decision for a question, as JSON")
    ask.add_argument("--kb", type=Path, action="append", required=True, help="KB file or folder")
    ask.add_argument("--config", type=Path, help="take thresholds from this settings file")
    ask.add_argument("question")
    ask.set_defaults(run=run_kb_ask)
    evaluate = kb.add_parser("eval", help="measure the matcher on labelled cases, as JSON")
    evaluate.add_argument("--kb", type=Path, action="append", required=True)
    evaluate.add_argument("--cases", type=Path, required=True, help="JSON lines: text, expected")
    evaluate.add_argument("--config", type=Path)
    evaluate.set_defaults(run=run_kb_eval)

    turns = sub.add_parser(
        "eval", help="run labelled customer messages through the engine and measure the outcomes"
    )
    turns.add_argument("--cases", type=Path, required=True, help="JSON lines (see README)")
    turns.add_argument("--config", type=Path, help="settings file (default: built-in defaults)")
    turns.add_argument("--json", action="store_true", help="print the report as JSON")
    turns.add_argument("--failures", action="store_true", help="list the cases not as expected")
    turns.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is not met"
    )
    turns.set_defaults(run=run_turn_eval)

    content = sub.add_parser(
        "content", help="content versions: export, import, publish, history, rollback"
    ).add_subparsers(dest="content", required=True)
    export = content.add_parser("export", help="write a version (default: live) as TOML files")
    export.add_argument("--config", type=Path, required=True, help="settings file")
    export.add_argument("--to", type=Path, required=True, help="folder to write into")
    export.add_argument("--version", type=int, help="version number (default: the live one)")
    export.set_defaults(run=run_content_export)
    for name, helptext, runner in (
        ("import", "validate a folder and show what publishing it would change", run_content_import),
        ("publish", "validate a folder and publish it as the new live version", run_content_publish),
    ):  # fmt: skip
        cmd = content.add_parser(name, help=helptext)
        cmd.add_argument("--config", type=Path, required=True, help="settings file")
        cmd.add_argument("--from", dest="source", type=Path, required=True, help="exported folder")
        if name == "publish":
            cmd.add_argument("--message", "-m", required=True, help="why (kept with the version)")
            cmd.add_argument("--author", default=os.environ.get("USER") or "cli")
            cmd.add_argument(
                "--expect-version",
                type=int,
                help="refuse unless this is still the live version (CI: the one reviewed)",
            )
        cmd.set_defaults(run=runner)
    history = content.add_parser("history", help="the published versions, newest first")
    history.add_argument("--config", type=Path, required=True, help="settings file")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(run=run_content_history)
    rollback = content.add_parser("rollback", help="publish an earlier version again")
    rollback.add_argument("--config", type=Path, required=True, help="settings file")
    rollback.add_argument("version", type=int)
    rollback.add_argument("--author", default=os.environ.get("USER") or "cli")
    rollback.set_defaults(run=run_content_rollback)

    flows = sub.add_parser("flows", help="flow tools").add_subparsers(dest="flows", required=True)
    flows_check = flows.add_parser("check", help="validate flow files")
    flows_check.add_argument("paths", type=Path, nargs="+")
    flows_check.set_defaults(run=run_flows_check)

    serve = sub.add_parser("serve", help="serve the channel webhooks enabled in the config")
    serve.add_argument("--config", type=Path, required=True, help="settings file")
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT; Redis store only; default 1)",
    )
    # Set by the supervisor of --workers N on the workers it starts (bot.workers).
    serve.add_argument("--worker", help=argparse.SUPPRESS)
    serve.add_argument("--supervisor-fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(run=run_serve)

    demo = sub.add_parser(
        "demo", help="serve the web chat on a local demo page (embedded default, no accounts)"
    )
    demo.add_argument("--config", type=Path, help="settings file (default: built-in defaults)")
    demo.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="listen port (default: 8080)")
    demo.set_defaults(run=run_demo)

    prune = sub.add_parser(
        "prune", help="forget resolved tickets older than N days (run it from cron)"
    )
    prune.add_argument("--config", type=Path, required=True, help="settings file")
    prune.add_argument(
        "--older-than-days",
        type=_positive_days,
        required=True,
        help="prune tickets resolved more than this many days ago",
    )
    prune.set_defaults(run=run_prune)

    report = sub.add_parser("report", help="KPIs per tier over a period, from the event stream")
    report.add_argument("--config", type=Path, required=True, help="settings file")
    report.add_argument("--from", dest="start", help="start: 2026-11-01, 2026-11-01T08:00 or 7d")
    report.add_argument("--to", dest="end", help="end (excluded; default: now), same forms")
    report.add_argument("--tier", help="show this tier only")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.set_defaults(run=run_report)

    events = sub.add_parser("events", help="the event stream").add_subparsers(
        dest="events", required=True
    )
    export = events.add_parser(
        "export", help="write the stream's events as JSON lines or CSV (for a warehouse)"
    )
    export.add_argument("--config", type=Path, required=True, help="settings file")
    export.add_argument("--since", help="from this time: 2026-11-01, 2026-11-01T08:00 or 7d")
    export.add_argument("--until", help="up to this time (excluded), same forms")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--follow", action="store_true", help="keep exporting new events through a consumer group"
    )
    export.add_argument("--group", default="export", help="consumer group of --follow")
    export.add_argument("--consumer", help="consumer name of --follow (default: host-pid)")
    export.set_defaults(run=run_events_export)

    users = sub.add_parser(
        "users", help="web console logins (the password is read from a prompt or stdin)"
    ).add_subparsers(dest="users", required=True)
    add = users.add_parser("add", help="create a login")
    add.add_argument("login")
    add.add_argument("--role", choices=[r.value for r in ConsoleRole], required=True)
    add.add_argument("--agent", help="the agent id in the settings (required for role agent)")
    add.add_argument("--name", default="", help="display name (default: the agent's name)")
    add.add_argument("--locale", choices=["pt-BR", "en"], help="UI language (default: browser)")
    passwd = users.add_parser("passwd", help="set a new password")
    passwd.add_argument("login")
    remove = users.add_parser("remove", help="delete a login")
    remove.add_argument("login")
    listing = users.add_parser("list", help="list logins (never their hashes)")
    hashing = users.add_parser("hash", help="print an Argon2 hash for a [[web.users]] entry")
    for command in (add, passwd, remove, listing, hashing):
        command.add_argument("--config", type=Path, help="settings file (where the store is)")
        command.set_defaults(run=run_users)
    forget = sub.add_parser(
        "forget", help="erase a customer's data on request (LGPD art. 18, GDPR art. 17)"
    )
    forget.add_argument("--config", type=Path, required=True, help="settings file")
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact", help="the contact id (ct_...)")
    who.add_argument(
        "--address", type=_channel_address, help="CHANNEL:ADDRESS, e.g. telegram:123456789"
    )
    forget.set_defaults(run=run_forget)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (reading
    package metadata costs every other command start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"{parser.prog} {_version()}")  # on stdout, as argparse's "version" action
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("escala")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def read_password(stdin: TextIO, stderr: TextIO) -> str:
    """A new password: typed twice at a prompt, or the first line of a pipe. Never
    an argument (it would sit in the shell history and the process list)."""
    from bot.users import UserError

    if stdin.isatty():
        import getpass

        first = getpass.getpass("password: ", stream=stderr)
        if getpass.getpass("again: ", stream=stderr) != first:
            raise UserError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def run_users(args: argparse.Namespace) -> int:
    """``escala users add|passwd|remove|list``."""
    import asyncio

    from bot.store import open_store
    from bot.users import UserError, Users, hash_password

    settings = load_settings(args.config)
    if args.users == "hash":
        password = read_password(sys.stdin, sys.stderr)
        try:
            print(hash_password(password))
        except UserError as e:
            print(f"escala: {e}", file=sys.stderr)
            return 1
        return 0
    if settings.store.backend == "memory":
        raise ConfigError(
            str(settings.source or "built-in defaults"),
            "store.backend",
            "the memory store forgets users when this command ends: use backend = "
            '"redis", or declare the user in [[web.users]] (escala users hash)',
        )
    password = read_password(sys.stdin, sys.stderr) if args.users in ("add", "passwd") else ""

    async def manage() -> str:
        store = await open_store(settings)
        try:
            users = Users(store, settings.agents)
            if args.users == "add":
                user = await users.add(
                    args.login,
                    password,
                    ConsoleRole(args.role),
                    agent_id=args.agent,
                    name=args.name,
                    locale=args.locale,
                )
                return f"added {user.login} ({user.role})"
            if args.users == "passwd":
                await users.set_password(args.login, password)
                return f"password of {args.login} changed"
            if args.users == "remove":
                await users.remove(args.login)
                return f"removed {args.login}"
            return "\n".join(
                f"{u.login}\t{u.role}\t{u.agent_id or '-'}\t{u.name}" for u in await users.all()
            )
        finally:
            await store.close()

    try:
        print(asyncio.run(manage()))
    except UserError as e:
        print(f"escala: {e}", file=sys.stderr)
        return 1
    return 0


def _channel_address(text: str) -> tuple[str, str]:
    channel, _, address = text.partition(":")
    if not channel or not address:
        raise argparse.ArgumentTypeError(f"expected CHANNEL:ADDRESS, got {text!r}")
    return channel, address


def run_forget(args: argparse.Namespace) -> int:
    """``escala forget``: erase one customer; records that an erasure happened (counts,
    no data). Exit status 1 when there is no such customer."""
    import asyncio

    from bot.clock import SystemClock, UuidIds
    from bot.events import Recorder
    from bot.models import EventKind, Identity
    from bot.store import open_store

    settings = load_settings(args.config)

    async def forget() -> dict[str, Any]:
        store = await open_store(settings)
        try:
            contact_id = args.contact
            if args.address is not None:
                contact = await store.find_contact(Identity(*args.address))
                contact_id = contact.id if contact is not None else None
            if contact_id is None:
                return {"erased": False}
            erased = await store.forget_contact(contact_id)
            if not erased.found:
                return {"erased": False}
            await Recorder(store, SystemClock(), UuidIds()).record(
                EventKind.CONTACT_ERASED,
                conversations=erased.conversations,
                tickets=erased.tickets,
            )
            return {
                "erased": True,
                "conversations": erased.conversations,
                "tickets": erased.tickets,
            }
        finally:
            await store.close()

    result = asyncio.run(forget())
    print(json.dumps(result))
    return 0 if result["erased"] else 1


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 days, got {text!r}")
    return days


PRUNE_BATCH = 500


def run_prune(args: argparse.Namespace) -> int:
    """``escala prune``: retention for finished tickets (their events stay in the log)."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from bot.store import open_store

    settings = load_settings(args.config)
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)

    async def prune() -> int:
        store = await open_store(settings)
        total = 0
        try:
            while True:  # batches keep each atomic step short on a shared Redis
                pruned = await store.prune_tickets(cutoff, PRUNE_BATCH)
                total += len(pruned)
                if len(pruned) < PRUNE_BATCH:
                    return total
        finally:
            await store.close()

    total = asyncio.run(prune())
    print(json.dumps({"pruned": total, "resolved_before": cutoff.isoformat()}))
    return 0


def parse_when(text: str, tz: tzinfo, now: datetime, option: str) -> datetime:
    """``7d`` (days before now), ``2026-11-01`` (midnight) or ``2026-11-01T08:00``; a time
    without an offset is in the desk's time zone (``[business_hours] timezone``)."""
    if text.endswith("d") and text[:-1].isdigit():
        return now - timedelta(days=int(text[:-1]))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(option, text, "expected a date (2026-11-01), a time or Nd") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def run_report(args: argparse.Namespace) -> int:
    """``escala report``: KPIs per tier over a period (issue 14)."""
    import asyncio
    from zoneinfo import ZoneInfo

    from bot import event_stream, kpi_format
    from bot.store import open_store

    settings = load_settings(args.config)
    tz = ZoneInfo(settings.business_hours.timezone)
    now = datetime.now(tz)
    start = parse_when(args.start, tz, now, "--from") if args.start else None
    end = parse_when(args.end, tz, now, "--to") if args.end else now
    if start is not None and start >= end:
        raise ConfigError("--from", args.start, f"must be before --to ({end.isoformat()})")
    if args.tier is not None and all(t.name != args.tier for t in settings.tiers):
        known = ", ".join(t.name for t in settings.tiers)
        raise ConfigError("--tier", args.tier, f"no such tier (tiers: {known})")

    async def build_report() -> str:
        store = await open_store(settings)
        try:
            found = await event_stream.report(
                store, settings, start=start, end=end, only_tier=args.tier
            )
        finally:
            await store.close()
        if found.coverage and args.format != "table":
            print(f"escala: {found.coverage}", file=sys.stderr)
        return kpi_format.render(found, args.format)

    sys.stdout.write(asyncio.run(build_report()))
    return 0


def run_events_export(args: argparse.Namespace) -> int:
    """``escala events export``: the stream as JSON lines or CSV, once or continuously."""
    import asyncio
    import os
    import signal
    import socket
    from zoneinfo import ZoneInfo

    from bot import event_stream
    from bot.store import open_store

    settings = load_settings(args.config)
    tz = ZoneInfo(settings.business_hours.timezone)
    now = datetime.now(tz)
    since = parse_when(args.since, tz, now, "--since") if args.since else None
    until = parse_when(args.until, tz, now, "--until") if args.until else None
    if args.follow and (since or until):
        raise ConfigError("--follow", "", "reads from the group's position: no --since/--until")

    async def export() -> tuple[int, str | None]:
        store = await open_store(settings)
        try:
            if not args.follow:
                return await event_stream.export(
                    store, sys.stdout, args.format, since=since, until=until
                )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            consumer = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
            written = await event_stream.follow(
                store,
                sys.stdout,
                args.format,
                group=args.group,
                consumer=consumer,
                stop=stop,
                warn=lambda text: print(f"escala: {text}", file=sys.stderr, flush=True),
            )
            return written, None
        finally:
            await store.close()

    written, missing = asyncio.run(export())
    if missing:
        print(f"escala: {missing}", file=sys.stderr)
    print(f"escala: {written} events exported", file=sys.stderr)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``escala serve``: the HTTP server with every enabled channel (issue 4); with
    ``--workers N``, a supervisor of N such servers on one port (issue 18)."""
    from bot import logs
    from bot.metrics import parse_metrics
    from bot.server import check_edges, run_server, server_config
    from bot.store import open_store
    from bot.workers import check_workers

    settings = load_settings(args.config)
    logs.configure(logs.parse_logging(str(settings.source), settings.logging))
    server = server_config(settings)
    worker = _worker(args)
    workers = worker.count if worker is not None else args.workers
    check_workers(settings, parse_metrics(str(settings.source), settings.metrics), workers)
    if worker is None and workers > 1:
        check_edges(settings)  # a channel's config error once, not once per worker
        return _supervise(args, workers)

    async def serve() -> None:
        # One connection per request in flight, and room for the outbox and timers.
        store = await open_store(settings, max_connections=server.max_in_flight + 16)
        await run_server(settings, store, host=args.host, port=args.port, worker=worker)

    _run_loop(serve())
    return 0


def _worker(args: argparse.Namespace) -> Worker | None:
    """The worker's place, from the supervisor's hidden ``--worker I/N`` (None: not one)."""
    from bot.workers import Worker

    if args.worker is None:
        return None
    index, _, count = str(args.worker).partition("/")
    return Worker(int(index), int(count), args.supervisor_fd)


def _supervise(args: argparse.Namespace, workers: int) -> int:
    """``escala serve --workers N``: the supervisor (:mod:`bot.workers`)."""
    import asyncio

    from bot.workers import supervise

    base = [sys.executable, "-m", "bot.cli", "serve", "--config", str(args.config)]
    if args.host:
        base += ["--host", args.host]
    if args.port:
        base += ["--port", str(args.port)]
    commands = [[*base, "--worker", f"{i}/{workers}"] for i in range(workers)]
    return asyncio.run(supervise(commands))


#: The environment variable ``escala demo`` keeps the web chat's signing secret in.
DEMO_SECRET_ENV = "ESCALA_DEMO_WEBCHAT_SECRET"
#: The password of the demo's console logins (a fresh one each run unless set).
DEMO_PASSWORD_ENV = "ESCALA_DEMO_PASSWORD"
#: The demo's console logins: (login, role, extra keys).
DEMO_USERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("ana", "agent", {"agent": "ana"}),
    ("bruno", "agent", {"agent": "bruno"}),
    ("sofia", "supervisor", {}),
    ("admin", "admin", {}),
)


def demo_settings(config: Path | None) -> Settings:
    """The settings ``escala demo`` serves: the file's (or the embedded default) with
    the web chat and its demo page turned on. The web chat is a plug-in like any
    channel: the core only names its table here."""
    import os
    import secrets
    from dataclasses import replace

    settings = load_settings(config)
    webchat = dict(settings.channels.get("webchat") or {})
    webchat.setdefault("secret_env", DEMO_SECRET_ENV)
    webchat["demo_page"] = True
    if webchat["secret_env"] == DEMO_SECRET_ENV and not os.environ.get(DEMO_SECRET_ENV):
        # A fresh secret each run: visitors of an earlier run start a new conversation.
        os.environ[DEMO_SECRET_ENV] = secrets.token_urlsafe(32)
    web = dict(settings.web)
    if not web:
        # The agents' web console too, with one login per role. A fresh password each
        # run, printed by ``escala demo``: the console is on this machine only.
        from bot.users import hash_password

        password = os.environ.setdefault(DEMO_PASSWORD_ENV, secrets.token_urlsafe(9))
        hashed = hash_password(password)
        web = {
            "secure_cookies": False,  # plain http on localhost
            "users": [
                {"login": login, "password_hash": hashed, "role": role, **extra}
                for login, role, extra in DEMO_USERS
            ],
        }
    return replace(settings, channels={**settings.channels, "webchat": webchat}, web=web)


def run_demo(args: argparse.Namespace) -> int:
    """``escala demo``: ``escala serve`` with the web chat on a local page and the web
    console for agents; agents can also work from this terminal (``/agent`` commands),
    like ``escala chat``."""
    import asyncio
    import logging
    import os

    from bot import plugins
    from bot.server import run_server
    from bot.store import open_store

    settings = demo_settings(args.config)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    path = str(settings.channels["webchat"].get("path", "/webchat")).rstrip("/")
    agent_id = settings.agents[0].id if settings.agents else ""
    tasks: list[asyncio.Task[None]] = []

    async def ready(escala: Escala, base_url: str) -> None:
        print("Escala demo: memory store, sample knowledge base and flows", flush=True)
        print(f"  web chat (customer): {base_url}{path}/demo", flush=True)
        print(f"  health:              {base_url}/healthz", flush=True)
        web = settings.web
        if web and web.get("users") and os.environ.get(DEMO_PASSWORD_ENV):
            console_path = str(web.get("path", "/console")).rstrip("/")
            logins = ", ".join(login for login, _, _ in DEMO_USERS)
            print(f"  agent console:       {base_url}{console_path}/", flush=True)
            print(
                f"  console logins:      {logins}; password {os.environ[DEMO_PASSWORD_ENV]}",
                flush=True,
            )
        print(
            "  agents: type /agent commands here (/help), e.g. /agent claim, "
            "/agent reply Olá!  Ctrl-C stops.",
            flush=True,
        )
        console = plugins.terminal().terminal(
            escala.edge,
            sys.stdout,
            locale=settings.engine.default_locale,
            agent_id=agent_id,
            echo=not sys.stdin.isatty(),
        )
        # The terminal is the agents' side only; at the end of input the web chat goes on.
        tasks.append(asyncio.create_task(console.run(agent_lines(sys.stdin))))

    async def demo() -> None:
        store = await open_store(settings)
        await run_server(settings, store, host=args.host, port=args.port, ready=ready)
        for task in tasks:
            task.cancel()

    asyncio.run(demo())
    return 0


async def agent_lines(stream: TextIO) -> AsyncIterator[str]:
    """``/agent`` and ``/help`` lines from ``stream``; anything else is ignored (the
    customer is in the browser)."""
    async for line in read_lines(stream):
        if line.strip().startswith("/") and line.strip() not in ("/quit", "/exit"):
            yield line


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run``, on uvloop when it is installed (``pip install escala[speed]``)."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def run_chat(args: argparse.Namespace) -> int:
    import asyncio

    from bot import plugins
    from bot.app import build
    from bot.server import reload_on_hangup
    from bot.store import open_store

    settings = load_settings(args.config)
    if args.agent and not any(agent.id == args.agent for agent in settings.agents):
        raise ConfigError("--agent", args.agent, "no such agent in the settings")
    agent_id = args.agent or (settings.agents[0].id if settings.agents else "")

    async def chat() -> None:
        store = await open_store(settings)
        try:
            escala = build(settings, store=store)
            console = plugins.terminal().terminal(
                escala.edge,
                sys.stdout,
                locale=args.locale or settings.engine.default_locale,
                agent_id=agent_id,
                echo=not sys.stdin.isatty(),
                # without --locale, the language the customer writes in (as on SMS)
                locale_known=args.locale is not None,
            )
            await escala.content.start()
            reload_on_hangup(escala)
            escala.timers.start(settings.engine.timer_sweep_seconds)
            try:
                await console.run(read_lines(sys.stdin))
            finally:
                await escala.timers.stop()
                await escala.content.stop()
        finally:
            await store.close()

    asyncio.run(chat())
    return 0


async def read_lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines of a (possibly interactive) stream without blocking the event loop."""
    import asyncio

    while True:
        line = await asyncio.to_thread(stream.readline)
        if not line:
            return
        yield line


def run_check(args: argparse.Namespace) -> int:
    from bot.app import build, desk_problems
    from bot.server import check_edges
    from bot.store import MemoryStore

    settings = load_settings(args.config)
    escala = build(settings, store=MemoryStore())
    # Every problem at once: the desk's and every channel's.
    problems = desk_problems(settings, escala.engine.parts.triage)
    edges: list[str] = []
    try:
        edges = check_edges(settings)
    except ConfigErrors as e:
        problems.extend(e.errors)
    except ConfigError as e:
        problems.append(e)
    if problems:
        raise ConfigErrors.of(problems)
    source = settings.source or "built-in defaults"
    print(
        f"ok: {source}: {len(escala.engine.parts.kb.entries)} KB entries, "
        f"{len(escala.engine.parts.flows.ids())} flows, {len(settings.tiers)} tiers, "
        f"{len(settings.agents)} agents, channels: {', '.join(edges) or 'none'}, "
        f"KB matcher: {escala.engine.parts.matcher.kind}"
    )
    return 0


def _matcher(kb_paths: Sequence[Path], config: Path | None) -> tuple[KnowledgeBase, Matcher]:
    from bot.settings import thresholds
    from kb.errors import KbError
    from kb.loader import load_kb
    from kb.matcher import Matcher

    settings = load_settings(config)
    try:
        kb = load_kb(kb_paths)
    except KbError as e:
        raise ConfigError(e.file, e.place, e.reason, e.problems) from e
    if settings.kb.semantic_on:
        # The fused matcher (encoder, embedding cache) is built where the server builds
        # it; the lexical one needs none of bot.content's imports (issue 18, part 5).
        from bot.content import make_matcher

        return kb, make_matcher(kb, settings)
    return kb, Matcher(kb, thresholds(settings))


def run_kb_ask(args: argparse.Namespace) -> int:
    _, matcher = _matcher(args.kb, args.config)
    print(json.dumps(matcher.match(args.question).to_json(), ensure_ascii=False, indent=2))
    return 0


def run_kb_eval(args: argparse.Namespace) -> int:
    from kb.errors import KbError
    from kb.evaluate import evaluate, load_cases

    kb, matcher = _matcher(args.kb, args.config)
    try:
        cases = load_cases(args.cases, kb)
    except KbError as e:
        raise ConfigError(e.file, e.place, e.reason, e.problems) from e
    print(json.dumps(evaluate(matcher, cases), indent=2))
    return 0


def run_turn_eval(args: argparse.Namespace) -> int:
    """``escala eval``: whole turns through the engine (:mod:`bot.turn_eval`)."""
    import asyncio

    from bot import turn_eval

    settings = load_settings(args.config)
    cases = turn_eval.load_cases(args.cases)
    results = asyncio.run(turn_eval.run_cases(settings, cases))
    report = turn_eval.report(cases, results)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print("\n".join(turn_eval.render(report, failures=args.failures)))
    met = all(target["met"] for target in report["targets"].values())
    return 1 if args.check and not met else 0


def _content_command(args: argparse.Namespace, work: Callable[[Escala], Awaitable[int]]) -> int:
    """Run ``work`` on the configured store with its live content (seeded if empty)."""
    import asyncio

    from bot.app import build
    from bot.store import open_store

    settings = load_settings(args.config)

    async def run() -> int:
        store = await open_store(settings)
        try:
            escala = build(settings, store=store)
            await escala.content.sync()
            return await work(escala)
        finally:
            await store.close()

    return asyncio.run(run())


def run_content_export(args: argparse.Namespace) -> int:
    from bot.content import write_dir

    async def work(escala: Escala) -> int:
        store = escala.content.store
        number = args.version or await store.live_content_version()
        version = await store.content_version(number)
        if version is None:
            raise ConfigError("--version", str(number), "no such content version")
        args.to.mkdir(parents=True, exist_ok=True)
        write_dir(version.files, args.to)
        print(f"exported version {number} ({len(version.files)} files) to {args.to}")
        return 0

    return _content_command(args, work)


def run_content_import(args: argparse.Namespace) -> int:
    from bot.content import describe_changes, read_dir

    async def work(escala: Escala) -> int:
        files = read_dir(args.source)
        problems = await escala.content.check(files)
        if problems:
            raise ConfigErrors.of([ConfigError(*p) for p in problems])
        live = await escala.content.live_version()
        changes = describe_changes(live.files if live else {}, files)
        number = live.number if live else 0
        print(f"ok: {args.source} is valid; against live version {number}:")
        for line in changes or ("no change",):
            print(f"  {line}")
        return 0

    return _content_command(args, work)


def run_content_publish(args: argparse.Namespace) -> int:
    from bot.content import read_dir

    async def work(escala: Escala) -> int:
        files = read_dir(args.source)
        live = await escala.content.store.live_content_version()
        expected = args.expect_version if args.expect_version is not None else live
        result = await escala.content.publish(
            files, author=args.author, message=args.message, expected=expected
        )
        if result.problems:
            raise ConfigErrors.of([ConfigError(*p) for p in result.problems])
        if result.conflict:
            print(
                f"escala: version {expected} is no longer live (live: {result.live}); "
                "export, rebase your changes and publish again",
                file=sys.stderr,
            )
            return 1
        print(f"published version {result.number}:")
        for line in result.changes or ("no change",):
            print(f"  {line}")
        return 0

    return _content_command(args, work)


def run_content_history(args: argparse.Namespace) -> int:
    async def work(escala: Escala) -> int:
        for v in await escala.content.store.content_history(args.limit):
            restored = f" (restores {v.restored_from})" if v.restored_from else ""
            print(
                f"{v.number}\t{v.at.isoformat(timespec='seconds')}\t{v.author}\t{v.message}{restored}"
            )
            for line in v.changes:
                print(f"\t{line}")
        return 0

    return _content_command(args, work)


def run_content_rollback(args: argparse.Namespace) -> int:
    async def work(escala: Escala) -> int:
        live = await escala.content.store.live_content_version()
        result = await escala.content.rollback(args.version, author=args.author, expected=live)
        if result.problems:
            raise ConfigErrors.of([ConfigError(*p) for p in result.problems])
        if result.conflict:
            print(f"escala: another publish came first (live: {result.live}); try again",
                  file=sys.stderr)  # fmt: skip
            return 1
        print(f"published version {result.number}: version {args.version} restored")
        return 0

    return _content_command(args, work)


def run_flows_check(args: argparse.Namespace) -> int:
    from flows.errors import FlowError
    from flows.loader import load_flows

    try:
        flows = load_flows(args.paths)
    except FlowError as e:
        raise ConfigError(e.file, e.place, e.reason, e.problems) from e
    print(f"ok: {len(flows.ids())} flows: {', '.join(flows.ids())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
