"""Load the knowledge base from TOML files and refuse a bad file with a precise message.

Each path is a ``.toml`` file or a directory whose ``*.toml`` files are read in sorted
order. A file holds any number of entries and, optionally, a synonyms table::

    [[entry]]
    id = "opening_hours"                  # required, snake_case, unique across all files
    category = "contact"                  # required
    questions = ["qual o horário?", "when are you open?"]   # required, >= 1 non-empty
    messages = ["vcs abrem sabado? preciso passar ai"]  # optional: see below
    tags = ["hours"]                      # optional
    tier_hint = "N1"                      # optional: where to hand off if it does not help
    flow = "opening_hours"                # optional: a flow to start instead of the answer
    [entry.answers]                       # required: "pt-BR" and "en", others allowed
    pt-BR = "Atendemos de segunda a sexta, das 8h às 20h."
    en = "We're open Monday to Friday, 8am to 8pm."
    [entry.titles]                        # optional, per locale; default: first question
    pt-BR = "Horário de atendimento"
    en = "Opening hours"

    [synonyms]                            # canonical = [variants]
    password = ["senha", "pass", "pin"]
    invoice = ["nota fiscal", "nf", "nfe"]

``messages`` are customer messages, as they were written, reviewed and labelled with
this entry (issue 19): with the ``semantic`` extra they are matched on meaning, like the
questions, and never on words. A real message carries words beside its question
("oi, boa tarde", "moro em campinas", "é presente"); as a phrasing its words would answer
other texts that share them ("qual a capital da frança?" took the delivery entry that
learnt "prazo para capitais"), while its meaning is the question's. Without the extra
they play no part.

A synonym variant (one or more words) is replaced by its canonical word(s) in both the
KB phrasings and the customer's text before matching; keys and variants are compared
folded (lowercase, no accents, no punctuation). A variant may belong to one canonical
only, across all files, and two variants that differ only by a suffix ("troca",
"trocar") count as one. Unknown keys are errors (a typo guard), as are duplicate ids.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from kb.errors import KbError
from kb.model import KbEntry, KnowledgeBase
from kb.normalize import fold, synonym_key

REQUIRED_LOCALES = ("pt-BR", "en")
ENTRY_KEYS = frozenset(
    {"id", "category", "questions", "messages", "answers", "titles", "tier_hint", "tags", "flow"}
)
TOP_KEYS = frozenset({"entry", "synonyms"})
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def default_kb_path() -> Path:
    """The sample knowledge base shipped with the package."""
    return Path(__file__).parent / "content"


def _files(paths: Sequence[Path | str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise KbError(str(path), "directory", "no *.toml files in it")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise KbError(str(path), "path", "no such file or directory")
    return files


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise KbError(str(path), "toml", f"syntax error: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise KbError(str(path), "file", f"cannot read: {e}") from e


class _EntryReader:
    """Reads one ``[[entry]]`` table, raising KbError at the first problem."""

    def __init__(self, file: str, index: int, raw: object) -> None:
        self.file = file
        self.place = f"entry[{index}]"
        if not isinstance(raw, dict):
            raise KbError(file, self.place, f"must be a table, got {_kind(raw)}")
        self.raw: dict[str, Any] = raw
        entry_id = raw.get("id")
        if isinstance(entry_id, str) and entry_id:
            self.place = f"entry[{index}] '{entry_id}'"

    def fail(self, place: str, reason: str) -> NoReturn:
        raise KbError(self.file, place, reason)

    def text(self, key: str, *, required: bool) -> str | None:
        value = self.raw.get(key)
        place = f"{self.place}.{key}"
        if value is None:
            if required:
                self.fail(place, "missing required key")
            return None
        if not isinstance(value, str):
            self.fail(place, f"must be a string, got {_kind(value)}")
        if not value.strip():
            self.fail(place, "must not be empty")
        return value.strip()

    def texts(self, key: str, *, required: bool) -> tuple[str, ...]:
        value = self.raw.get(key)
        place = f"{self.place}.{key}"
        if value is None:
            if required:
                self.fail(place, "missing required key")
            return ()
        if not isinstance(value, list):
            self.fail(place, f"must be a list of strings, got {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value, start=1):
            if not isinstance(item, str):
                self.fail(f"{place}[{i}]", f"must be a string, got {_kind(item)}")
            if not item.strip():
                self.fail(f"{place}[{i}]", "must not be empty")
            out.append(item.strip())
        if required and not out:
            self.fail(place, "must have at least one item")
        return tuple(out)

    def localized(self, key: str, *, required: bool) -> dict[str, str]:
        value = self.raw.get(key)
        place = f"{self.place}.{key}"
        if value is None:
            if required:
                self.fail(place, "missing required key")
            return {}
        if not isinstance(value, dict):
            self.fail(place, f"must be a table of locale = text, got {_kind(value)}")
        out: dict[str, str] = {}
        for locale, text in value.items():
            if not isinstance(text, str):
                self.fail(f"{place}.{locale}", f"must be a string, got {_kind(text)}")
            if not text.strip():
                self.fail(f"{place}.{locale}", "must not be empty")
            out[locale] = text.strip()
        for locale in REQUIRED_LOCALES:
            if required and locale not in out:
                self.fail(f"{place}.{locale}", f"missing locale '{locale}'")
        return out

    def entry(self) -> KbEntry:
        unknown = sorted(set(self.raw) - ENTRY_KEYS)
        if unknown:
            self.fail(
                f"{self.place}.{unknown[0]}",
                f"unknown key (known: {', '.join(sorted(ENTRY_KEYS))})",
            )
        entry_id = self.text("id", required=True)
        assert entry_id is not None
        if not _ID.match(entry_id):
            self.fail(f"{self.place}.id", f"'{entry_id}' must be snake_case ([a-z][a-z0-9_]*)")
        category = self.text("category", required=True)
        assert category is not None
        questions = self.texts("questions", required=True)
        if not any(fold(q) for q in questions):
            self.fail(f"{self.place}.questions", "no question has any words")
        return KbEntry(
            id=entry_id,
            category=category,
            questions=questions,
            messages=self.texts("messages", required=False),
            answers=self.localized("answers", required=True),
            titles=self.localized("titles", required=False),
            tier_hint=self.text("tier_hint", required=False),
            tags=self.texts("tags", required=False),
            flow=self.text("flow", required=False),
        )


def _kind(value: object) -> str:
    names = {str: "string", int: "integer", float: "float", bool: "boolean"}
    names |= {list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _synonyms(
    file: str,
    raw: object,
    into: dict[str, str],
    origin: dict[str, str],
    keys: dict[tuple[str, ...], str],
) -> None:
    if not isinstance(raw, dict):
        raise KbError(
            file, "synonyms", f"must be a table of canonical = [variants], got {_kind(raw)}"
        )
    for canonical, variants in raw.items():
        place = f"synonyms.{canonical}"
        target = fold(canonical)
        if not target:
            raise KbError(file, place, "the canonical word has no letters or digits")
        if not isinstance(variants, list):
            raise KbError(file, place, f"must be a list of strings, got {_kind(variants)}")
        if not variants:
            raise KbError(file, place, "must have at least one variant")
        for i, variant in enumerate(variants, start=1):
            if not isinstance(variant, str):
                raise KbError(file, f"{place}[{i}]", f"must be a string, got {_kind(variant)}")
            key = fold(variant)
            if not key:
                raise KbError(file, f"{place}[{i}]", "the variant has no letters or digits")
            if key in into and into[key] != target:
                raise KbError(
                    file,
                    f"{place}[{i}]",
                    f"variant '{variant}' already maps to '{into[key]}' ({origin[key]})",
                )
            # The matcher compares variants by stem: "troca" and "trocar" are one variant.
            stems = tuple(synonym_key(w) for w in key.split())
            twin = keys.get(stems)
            if twin is not None and into[twin] != target:
                raise KbError(
                    file,
                    f"{place}[{i}]",
                    f"variant '{variant}' matches the same words as '{twin}', "
                    f"which maps to '{into[twin]}' ({origin[twin]})",
                )
            into[key] = target
            origin[key] = file
            keys.setdefault(stems, key)


def load_kb(paths: Sequence[Path | str]) -> KnowledgeBase:
    """Read every entry and synonym from ``paths``; raise one KbError listing every
    problem found (one per entry or synonyms table, positions counting from 1)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    entries: list[KbEntry] = []
    seen: dict[str, str] = {}
    synonyms: dict[str, str] = {}
    origin: dict[str, str] = {}
    keys: dict[tuple[str, ...], str] = {}
    # Every entry of every file is checked: an admin sees all the problems at once.
    errors: list[KbError] = []
    for path in _files(paths):
        file = str(path)
        try:
            doc = _read(path)
        except KbError as e:
            errors.append(e)
            continue
        unknown = sorted(set(doc) - TOP_KEYS)
        if unknown:
            errors.append(
                KbError(file, unknown[0], "unknown top-level key (known: entry, synonyms)")
            )
        raw_entries = doc.get("entry", [])
        if not isinstance(raw_entries, list):
            errors.append(
                KbError(
                    file,
                    "entry",
                    f"must be an array of tables ([[entry]]), got {_kind(raw_entries)}",
                )
            )
            raw_entries = []
        for index, raw in enumerate(raw_entries, start=1):
            try:
                reader = _EntryReader(file, index, raw)
                entry = reader.entry()
                if entry.id in seen:
                    raise KbError(
                        file,
                        f"{reader.place}.id",
                        f"duplicate id '{entry.id}' (first in {seen[entry.id]})",
                    )
            except KbError as e:
                errors.append(e)
                continue
            seen[entry.id] = file
            entries.append(entry)
        if "synonyms" in doc:
            try:
                _synonyms(file, doc["synonyms"], synonyms, origin, keys)
            except KbError as e:
                errors.append(e)
    if errors:
        raise KbError.combine(errors)
    if not entries:
        raise KbError(
            ", ".join(str(p) for p in paths), "entry", "the knowledge base has no entries"
        )
    return KnowledgeBase(entries=tuple(entries), synonyms=synonyms)
