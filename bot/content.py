"""Admin content (knowledge base, flows, routing rules) as immutable versions (issue 16).

The files under ``[kb] paths``, ``[flows] paths`` and ``[triage] rules`` are the seed: the
first process to start on an empty store publishes them as version 1. Every publish is a
new immutable :class:`~bot.store.base.ContentVersion` in the store (author, time,
message, what changed), stored by a compare-and-set on the live version number, so two
admins publishing from the same base get one winner and the other is told to rebase.

A version is a set of TOML texts under logical paths: ``kb/<name>.toml``,
``flows/<name>.toml`` and ``routing.toml``. :func:`compile_content` checks them with the
loaders the files always had (every problem at once, with file, place and reason) and
builds one immutable :class:`Content`: the KB and its matcher, the flows and their
runner, and triage. The engine takes its content from a :class:`ContentHolder`, read
once at the start of each turn, so a turn runs entirely on one version while
:class:`ContentVersions` swaps the holder between turns: every process polls the live
version number about once a second and switches within seconds of a publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from bot.clock import Clock
from bot.errors import ConfigError, ConfigErrors
from bot.events import Recorder
from bot.models import EventKind
from bot.settings import Settings, thresholds
from bot.store.base import ContentDraft, ContentStore, ContentVersion
from bot.triage import Triage, load_triage
from bot.turn import TurnParts
from flows.errors import FlowError
from flows.loader import FlowSet, load_flows
from flows.runner import FlowRunner
from kb.errors import KbError
from kb.fused import FusedMatcher, fusion_for
from kb.loader import load_kb
from kb.matcher import Matcher
from kb.model import KnowledgeBase
from kb.semantic import EmbeddingCache, Embeddings, default_cache_dir, shared_encoder

log = logging.getLogger(__name__)

KB_DIR = "kb"
FLOWS_DIR = "flows"
ROUTING = "routing.toml"
#: Content size limits: a version is read whole by every process.
MAX_FILES = 200
MAX_FILE_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024
#: How often every process asks the store for the live version number.
POLL_SECONDS = 1.0
_PATH = re.compile(r"^(kb|flows)/[A-Za-z0-9][A-Za-z0-9_.-]{0,80}\.toml$")

Files = Mapping[str, str]
#: ``(file, place, reason)``: one validation problem.
Problem = tuple[str, str, str]


def valid_path(path: str) -> bool:
    return path == ROUTING or _PATH.match(path) is not None


def embeddings(settings: Settings) -> Embeddings | None:
    """The process's encoder and cache when ``[kb] semantic`` is on (issue 19), else
    ``None``. Loads no model: that happens on the first text embedded."""
    if not settings.kb.semantic_on:
        return None
    return Embeddings(
        shared_encoder(), EmbeddingCache(settings.kb.semantic_cache or default_cache_dir())
    )


def make_matcher(kb: KnowledgeBase, settings: Settings) -> Matcher:
    """The KB's matcher: lexical, or fused with embeddings when ``[kb] semantic`` is on."""
    found = embeddings(settings)
    if found is None:
        return Matcher(kb, thresholds(settings))
    # The fusion's own operating point, with the [kb] thresholds the config sets over it.
    fusion = fusion_for(kb)
    return FusedMatcher(
        kb,
        thresholds(settings, fusion.thresholds()),
        encoder=found.encoder,
        cache=found.cache,
        fusion=fusion,
    )


@dataclass(frozen=True, eq=False)
class Content:
    """One version of the content, ready for turns. Never changed once built.

    ``version`` is the store's number; 0 means "the settings' files, not (yet) read
    from the store" (commands that run without the store, such as ``escala eval``)."""

    version: int
    files: Files
    kb: KnowledgeBase
    matcher: Matcher
    flows: FlowSet
    runner: FlowRunner
    triage: Triage

    def turn_parts(self, base: TurnParts) -> TurnParts:
        """``base`` (the engine's own parts) with this version's content."""
        return replace(
            base,
            kb=self.kb,
            matcher=self.matcher,
            flows=self.flows,
            runner=self.runner,
            triage=self.triage,
        )


class ContentHolder:
    """Where the engine reads the content of its next turn. Swapping is one attribute
    assignment: a turn that already took :attr:`current` keeps its version."""

    def __init__(self, content: Content) -> None:
        self._content = content

    @property
    def current(self) -> Content:
        return self._content

    def swap(self, content: Content) -> bool:
        """Make ``content`` current unless a newer version already is; whether it did."""
        if self._content.version and content.version <= self._content.version:
            return False
        self._content = content
        return True


# -- files ---------------------------------------------------------------------------


def files_from_settings(settings: Settings) -> dict[str, str]:
    """The settings' KB, flow and routing files under their logical paths."""
    files: dict[str, str] = {}
    origin: dict[str, Path] = {}

    def add(kind: str, paths: Sequence[Path | str]) -> None:
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                found = sorted(path.glob("*.toml"))
            elif path.is_file():
                found = [path]
            else:
                raise ConfigError(str(path), "path", "no such file or directory")
            for file in found:
                name = f"{kind}/{file.name}"
                if name in origin and origin[name] != file:
                    raise ConfigError(
                        str(file), "path", f"two {kind} files named {file.name} ({origin[name]})"
                    )
                origin[name] = file
                files[name] = _read_text(file)

    add(KB_DIR, settings.kb.paths)
    add(FLOWS_DIR, settings.flows.paths)
    files[ROUTING] = _read_text(Path(settings.triage.rules))
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "file", f"cannot read: {e}") from e


def read_dir(folder: Path) -> dict[str, str]:
    """A version exported by :func:`write_dir` (``kb/``, ``flows/``, ``routing.toml``)."""
    if not folder.is_dir():
        raise ConfigError(str(folder), "path", "no such directory")
    files: dict[str, str] = {}
    for kind in (KB_DIR, FLOWS_DIR):
        for file in sorted((folder / kind).glob("*.toml")):
            files[f"{kind}/{file.name}"] = _read_text(file)
    routing = folder / ROUTING
    if routing.is_file():
        files[ROUTING] = _read_text(routing)
    return files


def write_dir(files: Files, folder: Path) -> None:
    """Write a version as files, byte for byte, for review in git."""
    for name, text in sorted(files.items()):
        if not valid_path(name):
            raise ConfigError(name, "path", "not a content file name")
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def size_problems(files: Files) -> list[Problem]:
    problems: list[Problem] = []
    if len(files) > MAX_FILES:
        problems.append(("content", "files", f"{len(files)} files; at most {MAX_FILES}"))
    total = 0
    for name, text in sorted(files.items()):
        size = len(text.encode("utf-8"))
        total += size
        if not valid_path(name):
            problems.append(
                (name, "file name", "must be routing.toml, kb/<name>.toml or flows/<name>.toml")
            )
        if size > MAX_FILE_BYTES:
            problems.append((name, "size", f"{size} bytes; at most {MAX_FILE_BYTES}"))
    if total > MAX_TOTAL_BYTES:
        problems.append(("content", "size", f"{total} bytes in all; at most {MAX_TOTAL_BYTES}"))
    if ROUTING not in files:
        problems.append((ROUTING, "file", "missing: the routing rules file is required"))
    return problems


# -- compiling -------------------------------------------------------------------------


def compile_content(files: Files, settings: Settings, version: int = 0) -> Content:
    """Check ``files`` as the loaders check the admin files, and build the content.

    Raises one :class:`ConfigError` listing every problem (file, place, reason), the
    files named by their logical paths. Synchronous and CPU-bound (the matcher's index):
    callers in the event loop run it in a thread (:meth:`ContentVersions.compile`)."""
    early = size_problems(files)
    if early:
        raise ConfigErrors.of([ConfigError(*p) for p in early])
    problems: list[ConfigError] = []
    with tempfile.TemporaryDirectory(prefix="escala-content-") as tmp:
        root = Path(tmp)
        write_dir(files, root)
        kb: KnowledgeBase | None = None
        flows: FlowSet | None = None
        triage: Triage | None = None
        kb_dir, flows_dir = root / KB_DIR, root / FLOWS_DIR
        try:
            kb = load_kb([kb_dir] if kb_dir.is_dir() else [])
        except KbError as e:
            problems.append(ConfigError(e.file or KB_DIR, e.place, e.reason, e.problems))
        try:
            flows = load_flows([flows_dir] if flows_dir.is_dir() else [])
        except FlowError as e:
            problems.append(ConfigError(e.file, e.place, e.reason, e.problems))
        if flows is not None:
            problems.extend(flow_problems(settings, flows))
        try:
            triage = load_triage(
                root / ROUTING, settings.tiers, settings.business_hours, embeddings(settings), kb
            )
        except ConfigError as e:
            problems.append(e)
        if kb is not None and flows is not None:
            problems.extend(cross_problems(settings, kb, flows))
        if problems:
            raise _relabel(problems, root)
    assert kb is not None and flows is not None and triage is not None
    return Content(
        version=version,
        files=MappingProxyType(dict(files)),
        kb=kb,
        matcher=make_matcher(kb, settings),
        flows=flows,
        runner=FlowRunner(flows),
        triage=triage,
    )


def problems_of(error: ConfigError) -> list[Problem]:
    leaves = error.errors if isinstance(error, ConfigErrors) else [error]
    return [problem for leaf in leaves for problem in leaf.problems]


def _relabel(errors: list[ConfigError], root: Path) -> ConfigError:
    """The same problems, files named by their logical paths instead of the folder
    they were checked in."""
    prefix = f"{root}/"
    problems = [problem for error in errors for problem in problems_of(error)]
    named = [
        ConfigError(file.replace(prefix, "").replace(str(root), "content"), place, reason)
        for file, place, reason in problems
    ]
    return ConfigErrors.of(named)


def flow_problems(settings: Settings, flows: FlowSet) -> list[ConfigError]:
    """The flows the settings name exist; a flow's handoff names a known tier."""
    source = str(settings.source or "built-in defaults")
    problems: list[ConfigError] = []
    for key in ("greeting_flow", "human_flow", "status_flow", "after_answer_flow"):
        flow_id = getattr(settings.engine, key)
        if flow_id is not None and flows.get(flow_id) is None:
            known = ", ".join(flows.ids())
            problems.append(
                ConfigError(source, f"engine.{key}", f"no flow '{flow_id}' (flows: {known})")
            )
    tier_names = {tier.name for tier in settings.tiers}
    for flow_id, step_id, tier in sorted(flows.handoff_tiers()):
        if tier not in tier_names:
            problems.append(
                ConfigError(
                    FLOWS_DIR,
                    f"flow '{flow_id}', step '{step_id}'.tier",
                    f"unknown tier '{tier}' (tiers: {', '.join(sorted(tier_names))})",
                )
            )
    return problems


def cross_problems(settings: Settings, kb: KnowledgeBase, flows: FlowSet) -> list[ConfigError]:
    """References between files: a KB entry's flow and tier hint must exist."""
    tier_names = {tier.name for tier in settings.tiers}
    problems: list[ConfigError] = []
    for entry in kb.entries:
        if entry.flow is not None and flows.get(entry.flow) is None:
            problems.append(
                ConfigError("knowledge base", f"entry '{entry.id}'.flow", f"no flow '{entry.flow}'")
            )
        if entry.tier_hint is not None and entry.tier_hint not in tier_names:
            problems.append(
                ConfigError(
                    "knowledge base",
                    f"entry '{entry.id}'.tier_hint",
                    f"unknown tier '{entry.tier_hint}'",
                )
            )
    return problems


# -- versions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What a publish (or rollback) did. ``ok``: ``number`` is live. ``problems``: the
    content did not validate, nothing changed. ``conflict``: another publish came
    first (``live`` is now live): rebase and try again."""

    ok: bool
    number: int = 0
    live: int = 0
    problems: tuple[Problem, ...] = ()
    conflict: bool = False
    changes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Rebased:
    """A draft moved onto the live version: ``conflicts`` lists the files both the
    draft and the live version changed (the draft was left as it was)."""

    ok: bool
    base: int
    conflicts: tuple[str, ...] = ()


class ContentVersions:
    """Publishing, rollback, drafts, and keeping this process on the live version."""

    def __init__(
        self,
        settings: Settings,
        store: ContentStore,
        holder: ContentHolder,
        recorder: Recorder,
        clock: Clock,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.holder = holder
        self._recorder = recorder
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self._failed: set[int] = set()  # versions this process could not build (logged once)

    @property
    def current(self) -> Content:
        return self.holder.current

    async def start(self) -> None:
        """Seed the store when it has no version, switch to the live one, and follow it."""
        await self.sync()
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="content-follow")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.sync()
            except Exception:  # a Redis hiccup: try again at the next tick
                log.exception("content: could not check the live version")

    async def sync(self) -> None:
        """Switch to the live version if it is newer than this process's."""
        async with self._sync_lock:
            live = await self.store.live_content_version()
            current = self.holder.current
            if live == 0:
                seeded = await self._publish_checked(
                    current,
                    author="files",
                    message="seed: the files named in the settings",
                    expected=0,
                    changes=("first version, from the settings' files",),
                    kind=EventKind.CONTENT_PUBLISHED,
                )
                if seeded.ok:
                    return
                live = seeded.live  # another process seeded first
            if live <= current.version or live in self._failed:
                return
            version = await self.store.content_version(live)
            if version is None:
                return
            if current.version == 0 and dict(version.files) == dict(current.files):
                self.holder.swap(replace(current, version=live))  # no rebuild needed
                return
            try:
                content = await self.compile(version.files, live)
            except ConfigError as e:
                # Only possible when the settings changed under a stored version (a tier
                # removed): keep answering with what we have, and say why, once.
                self._failed.add(live)
                log.error("content version %s cannot be used here; keeping %s:\n%s",
                          live, current.version, e)  # fmt: skip
                return
            if self.holder.swap(content):
                log.info("content: now on version %s", live)

    async def compile(self, files: Files, version: int = 0) -> Content:
        return await asyncio.to_thread(compile_content, files, self.settings, version)

    async def check(self, files: Files) -> list[Problem]:
        """Every validation problem of ``files``; empty when they can be published."""
        try:
            await self.compile(files)
        except ConfigError as e:
            return problems_of(e)
        return []

    async def live_version(self) -> ContentVersion | None:
        return await self.store.content_version(await self.store.live_content_version())

    async def publish(self, files: Files, *, author: str, message: str, expected: int) -> Published:
        """Validate and publish ``files`` if ``expected`` is still the live version."""
        try:
            content = await self.compile(files)
        except ConfigError as e:
            return Published(ok=False, problems=tuple(problems_of(e)))
        before = await self.store.content_version(expected)
        changes = describe_changes(before.files if before else {}, files)
        return await self._publish_checked(
            content, author=author, message=message, expected=expected, changes=changes,
            kind=EventKind.CONTENT_PUBLISHED,
        )  # fmt: skip

    async def rollback(self, number: int, *, author: str, expected: int) -> Published:
        """Publish again what version ``number`` held, as a new version."""
        old = await self.store.content_version(number)
        if old is None:
            return Published(
                ok=False, problems=(("content", f"version {number}", "no such version"),)
            )
        try:
            content = await self.compile(old.files)
        except ConfigError as e:
            return Published(ok=False, problems=tuple(problems_of(e)))
        before = await self.store.content_version(expected)
        changes = describe_changes(before.files if before else {}, old.files)
        return await self._publish_checked(
            content, author=author, message=f"rollback to version {number}", expected=expected,
            changes=changes, kind=EventKind.CONTENT_ROLLED_BACK, restored_from=number,
        )  # fmt: skip

    async def reload_files(self, author: str = "files (SIGHUP)") -> Published | None:
        """Publish the settings' files if they differ from the live version (SIGHUP in
        file-based deployments); None when they are the same. Every process may get
        the signal: after the first publish the others find nothing new."""
        try:
            files = await asyncio.to_thread(files_from_settings, self.settings)
        except ConfigError as e:
            return Published(ok=False, problems=tuple(problems_of(e)))
        live = await self.live_version()
        if live is not None and dict(live.files) == files:
            return None
        result = await self.publish(
            files, author=author, message="reloaded from files", expected=live.number if live else 0
        )
        if not result.ok:
            log.error("SIGHUP: the files were not published:\n%s",
                      "\n".join(": ".join(p) for p in result.problems) or "another publish came first")  # fmt: skip
        return result

    async def _publish_checked(
        self,
        content: Content,
        *,
        author: str,
        message: str,
        expected: int,
        changes: Sequence[str],
        kind: EventKind,
        restored_from: int | None = None,
    ) -> Published:
        version = ContentVersion(
            number=0,
            author=author,
            at=self._clock.now(),
            message=message,
            changes=tuple(changes),
            files=dict(content.files),
            restored_from=restored_from,
        )
        result = await self.store.publish_content(expected, version)
        if not result.ok:
            return Published(ok=False, live=result.live, conflict=True)
        self.holder.swap(replace(content, version=result.number))
        await self._recorder.record(
            kind,
            version=result.number,
            author=author,
            message=message,
            changes=list(changes),
            restored_from=restored_from,
        )
        log.info("content version %s published by %s", result.number, author)
        return Published(ok=True, number=result.number, live=result.number, changes=tuple(changes))

    # -- drafts ------------------------------------------------------------------------

    async def draft(self, owner: str) -> ContentDraft:
        """``owner``'s draft; a fresh copy of the live version when there is none."""
        draft = await self.store.get_draft(owner)
        if draft is not None:
            return draft
        live = await self.live_version()
        base = live.number if live else 0
        files = dict(live.files) if live else dict(self.holder.current.files)
        return ContentDraft(owner=owner, base=base, files=files, updated_at=self._clock.now())

    async def save_draft(self, owner: str, files: Files, base: int) -> ContentDraft | str:
        """Keep ``owner``'s edited files (valid or not: the draft shows its problems);
        a reason instead when they break the size limits."""
        limits = [p for p in size_problems(files) if p[1] in ("files", "size", "file name")]
        if limits:
            return "; ".join(": ".join(p) for p in limits)
        draft = ContentDraft(
            owner=owner, base=base, files=dict(files), updated_at=self._clock.now()
        )
        await self.store.save_draft(draft)
        return draft

    async def discard_draft(self, owner: str) -> None:
        await self.store.discard_draft(owner)

    async def rebase(self, owner: str) -> Rebased:
        """Move ``owner``'s draft onto the live version, keeping the draft's own changes;
        refused (conflicts listed) for a file both changed."""
        draft = await self.draft(owner)
        live = await self.live_version()
        if live is None or live.number == draft.base:
            return Rebased(ok=True, base=draft.base)
        base = await self.store.content_version(draft.base)
        base_files = dict(base.files) if base else {}
        mine = _changed(base_files, draft.files)
        theirs = _changed(base_files, live.files)
        conflicts = tuple(sorted(name for name in mine & theirs
                                 if draft.files.get(name) != live.files.get(name)))  # fmt: skip
        if conflicts:
            return Rebased(ok=False, base=draft.base, conflicts=conflicts)
        files = dict(live.files)
        for name in mine:
            if name in draft.files:
                files[name] = draft.files[name]
            else:
                files.pop(name, None)
        await self.store.save_draft(
            ContentDraft(owner=owner, base=live.number, files=files, updated_at=self._clock.now())
        )
        return Rebased(ok=True, base=live.number)


def _changed(old: Files, new: Files) -> set[str]:
    return {name for name in set(old) | set(new) if old.get(name) != new.get(name)}


def describe_changes(old: Files, new: Files) -> tuple[str, ...]:
    """What changed between two versions, one line each, by meaning where the files
    parse (``kb entry 'x' changed``, ``routing rule 'y' added``), else by file."""
    from bot.content_diff import semantic_changes

    return semantic_changes(old, new)
