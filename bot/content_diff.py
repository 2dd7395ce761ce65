"""Comparing two content versions: by meaning (entries, flows, rules) and line by line.

:func:`semantic` reads a version the way the loaders do, ignoring layout, comments and
which file holds what: two versions with the same entries, synonyms, flows and rules
(in the same order) are the same content. The studio shows :func:`semantic_changes`
as the summary of a draft and :func:`unified` as its diff; a version records its
summary as "what changed".
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.content import FLOWS_DIR, KB_DIR, ROUTING, Files


@dataclass(frozen=True)
class Semantic:
    entries: dict[str, Any]
    synonyms: dict[str, Any]
    flows: dict[str, Any]
    rules: list[tuple[str, Any]]
    human_request: Any
    #: Files that do not parse, by path (compared as text).
    unreadable: dict[str, str]


def semantic(files: Files) -> Semantic:
    entries: dict[str, Any] = {}
    synonyms: dict[str, Any] = {}
    flows: dict[str, Any] = {}
    rules: list[tuple[str, Any]] = []
    human: Any = None
    unreadable: dict[str, str] = {}
    for name, text in sorted(files.items()):
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            unreadable[name] = text
            continue
        if name.startswith(f"{KB_DIR}/"):
            for i, entry in enumerate(_list(doc.get("entry")), start=1):
                key = entry.get("id") if isinstance(entry, dict) else None
                entries[str(key) if key else f"{name}#{i}"] = entry
            if isinstance(doc.get("synonyms"), dict):
                synonyms.update(doc["synonyms"])
        elif name.startswith(f"{FLOWS_DIR}/"):
            for i, flow in enumerate(_list(doc.get("flow")), start=1):
                key = flow.get("id") if isinstance(flow, dict) else None
                flows[str(key) if key else f"{name}#{i}"] = flow
        elif name == ROUTING:
            for i, rule in enumerate(_list(doc.get("rule")), start=1):
                key = rule.get("name") if isinstance(rule, dict) else None
                rules.append((str(key) if key else f"rule[{i}]", rule))
            human = doc.get("human_request")
    return Semantic(entries, synonyms, flows, rules, human, unreadable)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _keyed(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = [f"{kind} '{k}' added" for k in new if k not in old]
    lines += [f"{kind} '{k}' removed" for k in old if k not in new]
    lines += [f"{kind} '{k}' changed" for k in new if k in old and old[k] != new[k]]
    return lines


def semantic_changes(old: Files, new: Files) -> tuple[str, ...]:
    a, b = semantic(old), semantic(new)
    lines = _keyed("kb entry", a.entries, b.entries)
    if a.synonyms != b.synonyms:
        lines += _keyed("synonym", a.synonyms, b.synonyms)
    lines += _keyed("flow", a.flows, b.flows)
    old_rules, new_rules = dict(a.rules), dict(b.rules)
    lines += _keyed("routing rule", old_rules, new_rules)
    common_old = [k for k, _ in a.rules if k in new_rules]
    common_new = [k for k, _ in b.rules if k in old_rules]
    if common_old != common_new:
        lines.append("routing rules reordered")
    if a.human_request != b.human_request:
        lines.append("[human_request] changed")
    lines += _keyed("unreadable file", a.unreadable, b.unreadable)
    if not lines and dict(old) != dict(new):
        changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
        lines = [f"{name}: layout or comments only" for name in changed]
    return tuple(lines)


@dataclass(frozen=True)
class FileDiff:
    name: str
    status: str  # "added", "removed", "changed"
    lines: tuple[str, ...]


def unified(old: Files, new: Files) -> list[FileDiff]:
    """A unified diff per changed file, ``old`` (live) to ``new`` (draft)."""
    out: list[FileDiff] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        status = "added" if before is None else "removed" if after is None else "changed"
        lines = difflib.unified_diff(
            (before or "").splitlines(),
            (after or "").splitlines(),
            fromfile=f"live/{name}",
            tofile=f"draft/{name}",
            lineterm="",
            n=2,
        )
        out.append(FileDiff(name, status, tuple(lines)))
    return out
