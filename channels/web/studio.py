"""The admin studio (issue 16): edit the knowledge base, flows and routing rules in a
draft, see every validation problem and the diff against the live version, try a
customer message on draft and live side by side, measure both on the labelled cases,
publish, and roll back.

Pages on the web :class:`Site`, ``admin`` role only: the site checks the role and the
CSRF token of every request before a handler runs. Everything here goes through
:class:`bot.content.ContentVersions` (the Edge's ``content``); this module renders and
turns forms into TOML edits (:mod:`channels.web.content_edit`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import tryit, turn_eval
from bot.content import ROUTING, Content, ContentVersions, Files, Problem, valid_path
from bot.content_diff import semantic_changes, unified
from bot.errors import ConfigError
from bot.models import LOCALES, ConsoleRole, EventKind, Priority
from bot.store.base import ContentDraft
from channels.web import content_edit
from channels.web.content_edit import EditError
from channels.web.site import LOCALE, USER, Site
from kb.errors import KbError
from kb.evaluate import Case, load_cases

#: Longest message a customer types in the "try it" box.
MAX_TRY = 1000
#: Compiled drafts kept per process (by their files' hash): pages re-read them often.
CACHE = 8
ADMIN = ConsoleRole.ADMIN


class Studio:
    def __init__(self, site: Site, kb_cases: Path | None, turn_cases: Path | None) -> None:
        self.site = site
        self.edge = site.edge
        self.kb_cases = kb_cases
        self.turn_cases = turn_cases
        self._compiled: OrderedDict[str, Content | list[Problem]] = OrderedDict()
        get, post = site.get, site.post
        get("/studio", ADMIN, name="studio")(self.overview)
        get("/studio/kb", ADMIN)(self.kb)
        get("/studio/kb/new", ADMIN)(self.new_entry)
        get("/studio/kb/entry/{id:[a-z][a-z0-9_]*}", ADMIN)(self.entry)
        post("/studio/kb/save", ADMIN)(self.save_entry)
        post("/studio/kb/entry/{id:[a-z][a-z0-9_]*}/delete", ADMIN)(self.delete_entry)
        get("/studio/synonyms", ADMIN)(self.synonyms)
        post("/studio/synonyms", ADMIN)(self.save_synonyms)
        get("/studio/routing", ADMIN)(self.routing)
        post("/studio/routing/{index:\\d+}", ADMIN)(self.save_rule)
        get("/studio/flows", ADMIN)(self.flows)
        post("/studio/new-file", ADMIN)(self.new_file)
        get("/studio/file/{name:(kb|flows)/[A-Za-z0-9_.-]+|routing\\.toml}", ADMIN)(self.file)
        post("/studio/file/{name:(kb|flows)/[A-Za-z0-9_.-]+|routing\\.toml}", ADMIN)(self.save_file)
        get("/studio/diff", ADMIN)(self.diff)
        post("/studio/publish", ADMIN)(self.publish)
        post("/studio/rebase", ADMIN)(self.rebase)
        post("/studio/discard", ADMIN)(self.discard)
        get("/studio/history", ADMIN)(self.history)
        post("/studio/rollback/{number:\\d+}", ADMIN)(self.rollback)
        get("/studio/try", ADMIN)(self.try_it)
        post("/studio/eval", ADMIN)(self.evaluate)

    # -- helpers ------------------------------------------------------------------------

    @property
    def content(self) -> ContentVersions:
        return self.edge.content

    def t(self, request: web.Request, key: str, **values: Any) -> str:
        from channels.web import i18n

        return i18n.text(key, request[LOCALE], **values)

    async def draft(self, request: web.Request) -> ContentDraft:
        draft: ContentDraft = await self.content.draft(request[USER].login)
        return draft

    async def compiled(self, files: Files) -> Content | list[Problem]:
        """The draft built (or its problems), cached by the files' hash."""
        digest = hashlib.sha256(json.dumps(dict(files), sort_keys=True).encode()).hexdigest()
        found = self._compiled.get(digest)
        if found is None:
            try:
                found = await self.content.compile(files)
            except ConfigError as e:
                from bot.content import problems_of

                found = problems_of(e)
            self._compiled[digest] = found
            while len(self._compiled) > CACHE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(digest)
        return found

    async def problems(self, files: Files) -> list[Problem]:
        built = await self.compiled(files)
        return built if isinstance(built, list) else []

    async def save(self, request: web.Request, draft: ContentDraft, files: Files) -> bool:
        saved = await self.content.save_draft(draft.owner, files, draft.base)
        if isinstance(saved, str):
            await self.flash(request, "error", self.t(request, "studio.too_big", reason=saved))
            return False
        return True

    async def flash(self, request: web.Request, kind: str, message: str) -> None:
        session = await get_session(request)
        session["flash"] = [kind, message]

    async def page(
        self, request: web.Request, template: str, context: dict[str, Any]
    ) -> web.StreamResponse:
        session = await get_session(request)
        flash = session.pop("flash", None)
        draft = await self.draft(request)
        live = await self.content.store.live_content_version()
        live_files = await self.live_files()
        changed = sorted(
            n for n in set(draft.files) | set(live_files) if draft.files.get(n) != live_files.get(n)
        )
        return aiohttp_jinja2.render_template(
            template,
            request,
            {
                "flash": flash if isinstance(flash, list) else None,
                "draft": draft,
                "live_number": live,
                "changed_files": changed,
                **context,
            },
        )

    async def live_files(self) -> Files:
        live = await self.content.live_version()
        files: Files = live.files if live is not None else self.content.current.files
        return files

    def back(self, path: str) -> web.HTTPSeeOther:
        return web.HTTPSeeOther(self.site.url(path))

    # -- overview, diff, publish ------------------------------------------------------

    async def overview(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        live = await self.content.live_version()
        live_files = live.files if live else {}
        return await self.page(
            request,
            "studio.html",
            {
                "live": live,
                "problems": await self.problems(draft.files),
                "changes": semantic_changes(live_files, draft.files),
                "stale": live is not None and live.number != draft.base,
            },
        )

    async def diff(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        live_files = await self.live_files()
        return await self.page(
            request,
            "studio_diff.html",
            {
                "changes": semantic_changes(live_files, draft.files),
                "diffs": unified(live_files, draft.files),
            },
        )

    async def publish(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        message = str(form.get("message", "")).strip()[:500]
        if not message:
            await self.flash(request, "error", self.t(request, "studio.need_message"))
            raise self.back("/studio")
        draft = await self.draft(request)
        result = await self.content.publish(
            draft.files, author=request[USER].login, message=message, expected=draft.base
        )
        if result.problems:
            await self.flash(request, "error", self.t(request, "studio.not_published"))
        elif result.conflict:
            await self.flash(request, "error", self.t(request, "studio.conflict", live=result.live))
        else:
            await self.content.discard_draft(draft.owner)
            await self.flash(
                request, "ok", self.t(request, "studio.published", number=result.number)
            )
        raise self.back("/studio")

    async def rebase(self, request: web.Request) -> web.StreamResponse:
        result = await self.content.rebase(request[USER].login)
        if result.ok:
            await self.flash(request, "ok", self.t(request, "studio.rebased", number=result.base))
        else:
            files = ", ".join(result.conflicts)
            await self.flash(
                request, "error", self.t(request, "studio.rebase_conflict", files=files)
            )
        raise self.back("/studio")

    async def discard(self, request: web.Request) -> web.StreamResponse:
        await self.content.discard_draft(request[USER].login)
        await self.flash(request, "ok", self.t(request, "studio.discarded"))
        raise self.back("/studio")

    # -- history and rollback ------------------------------------------------------------

    async def history(self, request: web.Request) -> web.StreamResponse:
        versions = await self.content.store.content_history(50)
        kinds = (EventKind.CONTENT_PUBLISHED, EventKind.CONTENT_ROLLED_BACK)
        events = [e for e in await self.edge.recent_events(5000) if e.kind in kinds]
        return await self.page(
            request, "studio_history.html", {"versions": versions, "audit": events[::-1]}
        )

    async def rollback(self, request: web.Request) -> web.StreamResponse:
        number = int(request.match_info["number"])
        live = await self.content.store.live_content_version()
        if not 1 <= number < live:
            raise web.HTTPBadRequest(text="no such earlier version\n")
        result = await self.content.rollback(number, author=request[USER].login, expected=live)
        if result.ok:
            await self.flash(
                request,
                "ok",
                self.t(request, "studio.rolled_back", number=number, new=result.number),
            )
        elif result.conflict:
            await self.flash(request, "error", self.t(request, "studio.conflict", live=result.live))
        else:
            problems = "; ".join(": ".join(p) for p in result.problems)
            await self.flash(request, "error", problems)
        raise self.back("/studio/history")

    # -- knowledge base -----------------------------------------------------------------

    def kb_files(self, files: Files) -> list[str]:
        return sorted(n for n in files if n.startswith("kb/"))

    def entries(self, files: Files) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for name in self.kb_files(files):
            try:
                out.extend((name, e) for e in content_edit.entries_of(files[name], name))
            except EditError:
                continue  # shown among the draft's problems
        return out

    async def kb(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        query = request.query.get("q", "").strip()[:200]
        rows = self.entries(draft.files)
        if query:
            needle = query.casefold()
            rows = [
                (f, e) for f, e in rows if needle in json.dumps(e, ensure_ascii=False).casefold()
            ]
        return await self.page(request, "studio_kb.html", {"rows": rows, "query": query})

    def entry_form(
        self, files: Files, name: str | None, entry: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "file": name,
            "entry": entry,
            "kb_files": [n for n in self.kb_files(files)],
            "tiers": self.edge.tiers.names(),
            "locales": LOCALES,
        }

    async def new_entry(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        context = self.entry_form(draft.files, None, {})
        return await self.page(request, "studio_entry.html", {**context, "problems": []})

    async def entry(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        entry_id = request.match_info["id"]
        found = [(f, e) for f, e in self.entries(draft.files) if e.get("id") == entry_id]
        if not found:
            raise web.HTTPNotFound(text="no such entry in your draft\n")
        name, entry = found[0]
        mine = [p for p in await self.problems(draft.files) if f"'{entry_id}'" in p[1]]
        context = self.entry_form(draft.files, name, entry)
        return await self.page(request, "studio_entry.html", {**context, "problems": mine})

    async def save_entry(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()

        def field(key: str, limit: int = 4000) -> str:
            return str(form.get(key, "")).strip()[:limit]

        def lines(key: str) -> list[str]:
            return [line.strip() for line in field(key, 100_000).splitlines() if line.strip()]

        draft = await self.draft(request)
        original = field("original_id") or None
        name = field("file")
        if name not in draft.files or not name.startswith("kb/"):
            raise web.HTTPBadRequest(text="unknown knowledge base file\n")
        entry_id = field("id", 80)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", entry_id):
            await self.flash(request, "error", self.t(request, "studio.bad_id"))
            raise self.back(f"/studio/kb/entry/{original}" if original else "/studio/kb/new")
        fields = {
            "id": entry_id,
            "category": field("category", 80),
            "tier_hint": field("tier_hint", 40),
            "flow": field("flow", 80),
            "tags": [t.strip() for t in field("tags").split(",") if t.strip()],
            "questions": lines("questions"),
            "answers": {loc: field(f"answer_{loc}") for loc in LOCALES},
            "titles": {loc: field(f"title_{loc}", 200) for loc in LOCALES},
        }
        try:
            text = content_edit.save_entry(draft.files[name], name, original, fields)
        except EditError as e:
            await self.flash(request, "error", str(e))
            raise self.back("/studio/kb") from None
        if await self.save(request, draft, {**draft.files, name: text}):
            await self.flash(request, "ok", self.t(request, "studio.saved"))
        raise self.back(f"/studio/kb/entry/{entry_id}")

    async def delete_entry(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        entry_id = request.match_info["id"]
        found = [f for f, e in self.entries(draft.files) if e.get("id") == entry_id]
        if not found:
            raise web.HTTPNotFound(text="no such entry in your draft\n")
        text = content_edit.remove_entry(draft.files[found[0]], found[0], entry_id)
        if await self.save(request, draft, {**draft.files, found[0]: text}):
            await self.flash(request, "ok", self.t(request, "studio.saved"))
        raise self.back("/studio/kb")

    def synonyms_file(self, files: Files) -> str | None:
        for name in self.kb_files(files):
            try:
                if content_edit.synonyms_of(files[name], name):
                    return name
            except EditError:
                continue
        return next(iter(self.kb_files(files)), None)

    async def synonyms(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        name = self.synonyms_file(draft.files)
        table: dict[str, list[str]] = {}
        if name is not None:
            try:
                table = content_edit.synonyms_of(draft.files[name], name)
            except EditError:
                table = {}
        text = "\n".join(f"{k}: {', '.join(v)}" for k, v in table.items())
        problems = [p for p in await self.problems(draft.files) if "synonyms" in p[1]]
        return await self.page(
            request, "studio_synonyms.html", {"file": name, "text": text, "problems": problems}
        )

    async def save_synonyms(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        draft = await self.draft(request)
        name = self.synonyms_file(draft.files)
        if name is None:
            raise web.HTTPBadRequest(text="no knowledge base file\n")
        table: dict[str, list[str]] = {}
        for n, line in enumerate(str(form.get("synonyms", "")).splitlines(), start=1):
            if not line.strip():
                continue
            canonical, sep, variants = line.partition(":")
            words = [v.strip() for v in variants.split(",") if v.strip()]
            if not sep or not canonical.strip() or not words:
                message = self.t(request, "studio.bad_synonym", line=n)
                await self.flash(request, "error", message)
                raise self.back("/studio/synonyms")
            table[canonical.strip()] = words
        try:
            text = content_edit.save_synonyms(draft.files[name], name, table)
        except EditError as e:
            await self.flash(request, "error", str(e))
            raise self.back("/studio/synonyms") from None
        if await self.save(request, draft, {**draft.files, name: text}):
            await self.flash(request, "ok", self.t(request, "studio.saved"))
        raise self.back("/studio/synonyms")

    # -- routing and flows -----------------------------------------------------------------

    async def routing(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        problems = [p for p in await self.problems(draft.files) if p[0] == ROUTING]
        try:
            rules = content_edit.rules_of(draft.files.get(ROUTING, ""))
            broken = None
        except EditError as e:
            rules, broken = [], str(e)
        by_rule = {
            i: [p for p in problems if p[1].startswith(f"rule[{i}]")]
            for i in range(1, len(rules) + 1)
        }
        other = [p for p in problems if not re.match(r"rule\[\d+\]", p[1])]
        return await self.page(
            request,
            "studio_routing.html",
            {
                "rules": rules,
                "by_rule": by_rule,
                "other": other,
                "broken": broken,
                "tiers": self.edge.tiers.names(),
                "priorities": [p.label for p in Priority],
            },
        )

    async def save_rule(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        index = int(request.match_info["index"])

        def field(key: str, limit: int = 2000) -> str:
            return str(form.get(key, "")).strip()[:limit]

        fields = {
            "name": field("name", 80),
            "reason": field("reason"),
            "tier": field("tier", 40),
            "priority": field("priority", 20),
            "keywords": [k.strip() for k in field("keywords", 20_000).splitlines() if k.strip()],
            "private": form.get("private") == "on",
            "handoff": form.get("handoff") == "on",
        }
        draft = await self.draft(request)
        try:
            text = content_edit.save_rule(draft.files.get(ROUTING, ""), index, fields)
        except EditError as e:
            await self.flash(request, "error", str(e))
            raise self.back("/studio/routing") from None
        if await self.save(request, draft, {**draft.files, ROUTING: text}):
            await self.flash(request, "ok", self.t(request, "studio.saved"))
        raise web.HTTPSeeOther(self.site.url(f"/studio/routing#rule-{index}"))

    async def flows(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        names = sorted(n for n in draft.files if n.startswith("flows/"))
        ids: dict[str, list[str]] = {}
        for name in names:
            try:
                flows = tomllib.loads(draft.files[name]).get("flow")
            except tomllib.TOMLDecodeError:
                flows = None
            ids[name] = [
                str(f.get("id")) for f in flows if isinstance(f, dict)
            ] if isinstance(flows, list) else []  # fmt: skip
        problems = [p for p in await self.problems(draft.files) if p[0].startswith("flows")]
        return await self.page(
            request, "studio_flows.html", {"names": names, "ids": ids, "problems": problems}
        )

    async def new_file(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        kind = str(form.get("kind", ""))
        stem = str(form.get("name", "")).strip()[:60]
        name = f"{kind}/{stem}.toml"
        if kind not in ("kb", "flows") or not valid_path(name):
            await self.flash(request, "error", self.t(request, "studio.bad_file_name"))
            raise self.back("/studio/flows" if kind == "flows" else "/studio/kb")
        draft = await self.draft(request)
        if name not in draft.files:
            seed = "# New flows: [[flow]] tables (see flows/README.md)\n" if kind == "flows" else (
                "# New knowledge base entries: [[entry]] tables\n"
            )  # fmt: skip
            if not await self.save(request, draft, {**draft.files, name: seed}):
                raise self.back("/studio")
        raise self.back(f"/studio/file/{name}")

    async def file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        draft = await self.draft(request)
        if name not in draft.files:
            raise web.HTTPNotFound(text="no such file in your draft\n")
        problems = [p for p in await self.problems(draft.files) if p[0] == name]
        others = [p for p in await self.problems(draft.files) if p[0] != name]
        return await self.page(
            request,
            "studio_file.html",
            {"name": name, "text": draft.files[name], "problems": problems, "others": others},
        )

    async def save_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await request.post()
        draft = await self.draft(request)
        if form.get("action") == "delete" and name != ROUTING:
            files = {k: v for k, v in draft.files.items() if k != name}
            if await self.save(request, draft, files):
                await self.flash(request, "ok", self.t(request, "studio.saved"))
            raise self.back("/studio")
        text = str(form.get("text", "")).replace("\r\n", "\n")
        if await self.save(request, draft, {**draft.files, name: text}):
            await self.flash(request, "ok", self.t(request, "studio.saved"))
        raise self.back(f"/studio/file/{name}")

    # -- try it and eval -------------------------------------------------------------------

    async def try_it(self, request: web.Request) -> web.StreamResponse:
        text = request.query.get("text", "").strip()[:MAX_TRY]
        locale = request.query.get("locale", "pt-BR")
        locale = locale if locale in LOCALES else "pt-BR"
        draft = await self.draft(request)
        built = await self.compiled(draft.files)
        live = self.content.current
        sides: list[tuple[str, Any]] = []
        if text:
            now = self.edge.now()
            settings = self.edge.settings
            sides.append(("live", tryit.explain(live, settings, text, locale, now)))
            if isinstance(built, list):
                sides.append(("draft", None))
            else:
                sides.append(("draft", tryit.explain(built, settings, text, locale, now)))
        return await self.page(
            request,
            "studio_try.html",
            {
                "text": text,
                "try_locale": locale,
                "sides": sides,
                "problems": built if isinstance(built, list) else [],
                "locales": LOCALES,
                "kb_cases": self.kb_cases,
                "turn_cases": self.turn_cases,
                "figures": None,
            },
        )

    async def evaluate(self, request: web.Request) -> web.StreamResponse:
        draft = await self.draft(request)
        built = await self.compiled(draft.files)
        live = self.content.current
        figures: dict[str, Any] = {}
        if isinstance(built, list):
            await self.flash(request, "error", self.t(request, "studio.fix_first"))
            raise self.back("/studio/try")
        if self.kb_cases is not None:
            try:
                cases: list[Case] = load_cases(self.kb_cases)
            except KbError as e:  # the file changed since start-up
                await self.flash(request, "error", str(e))
                raise self.back("/studio/try") from None
            figures["kb"] = {
                "live": tryit.kb_figures(live, cases),
                "draft": tryit.kb_figures(built, cases),
            }
        if self.turn_cases is not None:
            try:
                turns = turn_eval.load_cases(self.turn_cases)
            except ConfigError as e:
                await self.flash(request, "error", str(e))
                raise self.back("/studio/try") from None
            settings = self.edge.settings
            figures["turns"] = {
                "live": (await tryit.turn_figures(settings, live, turns))["all"],
                "draft": (await tryit.turn_figures(settings, built, turns))["all"],
            }
        return await self.page(
            request,
            "studio_try.html",
            {
                "text": "",
                "try_locale": "pt-BR",
                "sides": [],
                "problems": [],
                "locales": LOCALES,
                "kb_cases": self.kb_cases,
                "turn_cases": self.turn_cases,
                "figures": figures,
            },
        )
