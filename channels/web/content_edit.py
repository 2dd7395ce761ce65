"""Edits the studio's forms make to TOML files, with ``tomlkit`` so a file keeps its
comments and layout (the files are reviewed in git: a one-field edit stays a one-line
diff). Each function returns the new text or raises :class:`EditError`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table


class EditError(Exception):
    """The edit cannot be made (the file does not parse, the item is gone ...)."""


def _parse(text: str, name: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except TOMLKitError as e:
        raise EditError(f"{name} is not valid TOML ({e}); fix it in the TOML editor first") from e


def _strings(values: Sequence[str]) -> Any:
    array = tomlkit.array()
    array.extend(values)
    if len(values) > 3:
        array.multiline(True)
    return array


def _same(table: Table, key: str, value: Any) -> bool:
    current: Any = table.get(key)
    plain = current.unwrap() if hasattr(current, "unwrap") else current
    wanted = value.unwrap() if hasattr(value, "unwrap") else value
    return bool(plain == wanted)


def _set(table: Table, key: str, value: Any) -> None:
    """Set ``key`` (untouched when equal: a one-field edit stays a one-line diff), or
    drop it when the value is empty (optional keys)."""
    if _same(table, key, value):
        return
    if value in (None, "", [], {}):
        if key in table:
            del table[key]
        return
    table[key] = value


def _localized(table: Table, key: str, texts: Mapping[str, str]) -> None:
    present = {k: v for k, v in texts.items() if v}
    if not present:
        if key in table:
            del table[key]
        return
    current = table.get(key)
    if isinstance(current, Table | dict):
        for locale in list(current.keys()):
            if locale not in present:
                del current[locale]
        for locale, text in present.items():
            if current.get(locale) != text:
                current[locale] = text
    else:
        sub = tomlkit.table()
        for locale, text in present.items():
            sub[locale] = text
        table[key] = sub


def entries_of(text: str, name: str) -> list[dict[str, Any]]:
    doc = _parse(text, name)
    entries = doc.get("entry")
    return [dict(e.unwrap()) for e in entries] if isinstance(entries, AoT) else []


def save_entry(text: str, name: str, original_id: str | None, fields: Mapping[str, Any]) -> str:
    """``text`` with the entry ``original_id`` changed to ``fields`` (or, without an
    original id, a new entry appended)."""
    doc = _parse(text, name)
    entries = doc.get("entry")
    if original_id:
        if not isinstance(entries, AoT):
            raise EditError(f"{name} has no entries")
        found = [t for t in entries if t.get("id") == original_id]
        if not found:
            raise EditError(f"entry '{original_id}' is no longer in {name}")
        table = found[0]
    else:
        table = tomlkit.table()
        if not isinstance(entries, AoT):
            entries = tomlkit.aot()
            doc.append("entry", entries)
        entries.append(table)
        table = entries[-1]
    _set(table, "id", fields["id"])
    _set(table, "category", fields["category"])
    _set(table, "tags", _strings(fields["tags"]) if fields["tags"] else None)
    _set(table, "tier_hint", fields["tier_hint"] or None)
    _set(table, "flow", fields["flow"] or None)
    _set(table, "questions", _strings(fields["questions"]))
    _localized(table, "answers", fields["answers"])
    _localized(table, "titles", fields["titles"])
    return tomlkit.dumps(doc)


def remove_entry(text: str, name: str, entry_id: str) -> str:
    doc = _parse(text, name)
    entries = doc.get("entry")
    if not isinstance(entries, AoT):
        raise EditError(f"{name} has no entries")
    kept = [t for t in entries if t.get("id") != entry_id]
    if len(kept) == len(entries):
        raise EditError(f"entry '{entry_id}' is no longer in {name}")
    fresh = tomlkit.aot()
    for table in kept:
        fresh.append(table)
    doc["entry"] = fresh
    return tomlkit.dumps(doc)


def rules_of(text: str) -> list[dict[str, Any]]:
    doc = _parse(text, "routing.toml")
    rules = doc.get("rule")
    return [dict(r.unwrap()) for r in rules] if isinstance(rules, AoT) else []


def save_rule(text: str, index: int, fields: Mapping[str, Any]) -> str:
    """``text`` with rule number ``index`` (from 1) changed to ``fields``: name, reason,
    tier, priority, keywords, private, handoff (its other keys stay)."""
    doc = _parse(text, "routing.toml")
    rules = doc.get("rule")
    if not isinstance(rules, AoT) or not 1 <= index <= len(rules):
        raise EditError(f"routing.toml has no rule[{index}]")
    rule = rules[index - 1]
    for key in ("name", "reason", "tier"):
        _set(rule, key, fields[key])
    # Defaults stay implicit: only what differs from them is written.
    for key, default in (("priority", "normal"), ("private", False), ("handoff", True)):
        if fields[key] != rule.get(key, default):
            rule[key] = fields[key]
    when = rule.get("when")
    if isinstance(when, Table) and _same(when, "keywords", fields["keywords"]):
        pass
    elif fields["keywords"]:
        if not isinstance(when, Table):
            when = tomlkit.table()
            rule["when"] = when
            when = rule["when"]
        when["keywords"] = _strings(fields["keywords"])
    elif isinstance(when, Table) and "keywords" in when:
        del when["keywords"]
    return tomlkit.dumps(doc)


def synonyms_of(text: str, name: str) -> dict[str, list[str]]:
    doc = _parse(text, name)
    table = doc.get("synonyms")
    if not isinstance(table, Table):
        return {}
    return {str(k): [str(v) for v in vs] for k, vs in table.unwrap().items()}


def save_synonyms(text: str, name: str, synonyms: Mapping[str, Sequence[str]]) -> str:
    doc = _parse(text, name)
    table = tomlkit.table()
    for canonical, variants in synonyms.items():
        table[canonical] = _strings(list(variants))
    if "synonyms" in doc:
        del doc["synonyms"]
    doc.append("synonyms", table)
    return tomlkit.dumps(doc)
