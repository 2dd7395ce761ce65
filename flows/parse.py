"""Parse one flow file's TOML into validated flows (the loader's reader).

Kept apart from :mod:`flows.loader`, which only gathers files and checks what spans
them (duplicate ids, triggers, jumps between flows).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NoReturn

from flows.errors import FlowError
from flows.model import (
    INPUT_VAR,
    LOCALES,
    PRIORITIES,
    WAITING,
    AllOf,
    AnyOf,
    Ask,
    Branch,
    Case,
    ChoiceDef,
    Collect,
    Compare,
    Condition,
    End,
    Flow,
    Handoff,
    HasTag,
    InLocale,
    JumpTo,
    KbLookup,
    LocalText,
    Not,
    OnChannel,
    Say,
    Status,
    Step,
    TagStep,
    exits,
)
from flows.text import VAR_NAME, normalize, template_problem

ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
FLOW_KEYS = frozenset({"id", "description", "triggers", "start", "step"})
#: The keys each step type accepts besides ``id`` and ``type`` (the typo guard).
STEP_KEYS: Mapping[str, frozenset[str]] = {
    "say": frozenset({"text", "goto"}),
    "ask": frozenset({"text", "choices", "var", "error", "max_retries", "on_invalid"}),
    "collect": frozenset({"text", "var", "pattern", "error", "max_retries", "goto", "on_invalid"}),
    "kb": frozenset({"query", "on_answer", "on_none"}),
    "branch": frozenset({"cases", "else"}),
    "tag": frozenset({"add", "set", "goto"}),
    "handoff": frozenset({"tier", "priority", "reason"}),
    "status": frozenset({"ticket", "goto"}),
    "end": frozenset({"text"}),
    "flow": frozenset({"flow"}),
}
LOCALE_TEXT = "{ " + ", ".join(f'{locale} = "..."' for locale in LOCALES) + " }"
CONDITION_KEYS = ("var", "attribute", "tag", "channel", "locale", "all", "any", "not")


class FileReader:
    """Turns one file's TOML into flows, or raises FlowError naming the place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = str(path)
        #: (place, target) of every goto of the flow being read, checked once all its steps are known.
        self.refs: list[tuple[str, str]] = []

    def fail(self, place: str, reason: str) -> NoReturn:
        raise FlowError(self.file, place, reason)

    def flows(self) -> list[Flow]:
        try:
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            where = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            place = f"line {where[1]}, column {where[2]}" if where else "TOML"
            reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
            self.fail(place, f"TOML syntax: {reason}")
        except UnicodeDecodeError:
            self.fail("file", "not UTF-8 text")
        self.check_keys(document, frozenset({"flow"}), "file")
        raw_flows = document.get("flow")
        if not isinstance(raw_flows, list) or not raw_flows:
            self.fail("file", "no flows: add one or more [[flow]] tables")
        flows: list[Flow] = []
        errors: list[FlowError] = []  # every flow is read: all problems at once
        for index, raw in enumerate(raw_flows, start=1):
            try:
                flow = self.flow(raw, f"flow #{index}")
                if any(f.id == flow.id for f in flows):
                    self.fail(f"flow '{flow.id}'", "duplicate flow id")
            except FlowError as e:
                errors.append(e)
                continue
            flows.append(flow)
        if errors:
            raise FlowError.combine(errors)
        return flows

    # -- flows and steps ---------------------------------------------------------------

    def flow(self, raw: object, place: str) -> Flow:
        raw = self.table(raw, place)
        flow_id = self.ident(raw, "id", place)
        place = f"flow '{flow_id}'"
        self.check_keys(raw, FLOW_KEYS, place)
        description = self.string(raw, "description", place) or ""
        triggers = self.strings(raw, "triggers", place)
        for trigger in triggers:
            if not normalize(trigger):
                self.fail(f"{place}.triggers", f"trigger '{trigger}' has no letters or digits")
        raw_steps = raw.get("step")
        if not isinstance(raw_steps, list) or not raw_steps:
            self.fail(place, "no steps: add one or more [[flow.step]] tables")
        self.refs = []
        tables = [self.table(s, f"{place}, step #{i}") for i, s in enumerate(raw_steps, 1)]
        ids = [self.ident(t, "id", f"{place}, step #{i}") for i, t in enumerate(tables, 1)]
        steps: dict[str, Step] = {}
        for index, (step_id, table) in enumerate(zip(ids, tables, strict=True)):
            if step_id in steps:
                self.fail(f"{place}, step '{step_id}'", "duplicate step id")
            following = ids[index + 1] if index + 1 < len(ids) else None
            steps[step_id] = self.step(table, step_id, following, f"{place}, step '{step_id}'")
        start = self.string(raw, "start", place) or ids[0]
        if start not in steps:
            self.fail(f"{place}.start", self.unknown_step(start, steps))
        flow = Flow(
            id=flow_id,
            description=description,
            triggers=tuple(triggers),
            start=start,
            steps=MappingProxyType(steps),
            file=self.file,
        )
        self.check_gotos(flow)
        self.check_progress(flow)
        return flow

    def step(
        self, raw: Mapping[str, object], step_id: str, following: str | None, place: str
    ) -> Step:
        kind = self.string(raw, "type", place, required=True) or ""
        if kind not in STEP_KEYS:
            self.fail(f"{place}.type", f"unknown step type '{kind}' ({', '.join(STEP_KEYS)})")
        self.check_keys(raw, STEP_KEYS[kind] | {"id", "type"}, place)

        def goto(key: str, default: str | None = following) -> str | None:
            target = self.string(raw, key, place)
            if target is not None:
                self.refs.append((f"{place}.{key}", target))
            return target or default

        match kind:
            case "say":
                return Say(step_id, self.text(raw, "text", place), goto("goto"))
            case "ask":
                choices = self.choices(raw, place)
                return Ask(
                    step_id,
                    self.text(raw, "text", place),
                    choices,
                    self.var(raw, place, required=False),
                    self.optional_text(raw, "error", place),
                    self.count(raw, "max_retries", place, default=1),
                    goto("on_invalid", None),
                )
            case "collect":
                pattern = self.string(raw, "pattern", place)
                return Collect(
                    step_id,
                    self.text(raw, "text", place),
                    self.var(raw, place, required=True) or "",
                    self.regex(pattern, f"{place}.pattern") if pattern else None,
                    self.optional_text(raw, "error", place),
                    self.count(raw, "max_retries", place, default=2),
                    goto("goto"),
                    goto("on_invalid", None),
                )
            case "kb":
                return KbLookup(
                    step_id, self.template(raw, "query", place), goto("on_answer"), goto("on_none")
                )
            case "branch":
                return Branch(step_id, self.cases(raw, place), goto("else"))
            case "tag":
                return TagStep(
                    step_id,
                    tuple(self.strings(raw, "add", place)),
                    self.assign(raw, place),
                    goto("goto"),
                )
            case "handoff":
                priority = self.string(raw, "priority", place)
                if priority is not None and priority.lower() not in PRIORITIES:
                    self.fail(
                        f"{place}.priority", f"'{priority}' is not one of {', '.join(PRIORITIES)}"
                    )
                reason = self.template(raw, "reason", place)
                if not reason:
                    self.fail(f"{place}.reason", "required: agents see why the flow handed off")
                return Handoff(
                    step_id,
                    self.string(raw, "tier", place),
                    priority.lower() if priority else None,
                    reason,
                )
            case "status":
                return Status(step_id, self.template(raw, "ticket", place), goto("goto"))
            case "end":
                return End(step_id, self.optional_text(raw, "text", place))
            case _:
                target = self.string(raw, "flow", place, required=True)
                return JumpTo(step_id, target or "")

    def choices(self, raw: Mapping[str, object], place: str) -> tuple[ChoiceDef, ...]:
        items = raw.get("choices")
        if not isinstance(items, list) or not items:
            self.fail(f"{place}.choices", "needs at least one choice: { id, label, goto }")
        choices: list[ChoiceDef] = []
        for index, item in enumerate(items, start=1):
            at = f"{place}.choices[{index}]"
            table = self.table(item, at)
            self.check_keys(table, frozenset({"id", "label", "goto"}), at)
            choice_id = self.ident(table, "id", at)
            if any(c.id == choice_id for c in choices):
                self.fail(f"{at}.id", f"duplicate choice id '{choice_id}'")
            label = self.text(table, "label", at)
            target = self.string(table, "goto", at, required=True) or ""
            self.refs.append((f"{at}.goto", target))
            choices.append(ChoiceDef(choice_id, label, target))
        return tuple(choices)

    def cases(self, raw: Mapping[str, object], place: str) -> tuple[Case, ...]:
        items = raw.get("cases")
        if not isinstance(items, list) or not items:
            self.fail(f"{place}.cases", 'needs at least one case: { if = {...}, goto = "..." }')
        cases: list[Case] = []
        for index, item in enumerate(items, start=1):
            at = f"{place}.cases[{index}]"
            table = self.table(item, at)
            self.check_keys(table, frozenset({"if", "goto"}), at)
            if "if" not in table:
                self.fail(f"{at}.if", "required")
            condition = self.condition(table["if"], f"{at}.if")
            target = self.string(table, "goto", at, required=True) or ""
            self.refs.append((f"{at}.goto", target))
            cases.append(Case(condition, target))
        return tuple(cases)

    def condition(self, raw: object, place: str) -> Condition:
        table = self.table(raw, place)
        subjects = [k for k in CONDITION_KEYS if k in table]
        if len(subjects) != 1:
            self.fail(place, f"needs exactly one of {', '.join(CONDITION_KEYS)}")
        subject = subjects[0]
        if subject in ("var", "attribute"):
            self.check_keys(table, frozenset({subject, "equals", "matches", "set"}), place)
            tests = [k for k in ("equals", "matches", "set") if k in table]
            if len(tests) != 1:
                self.fail(place, f"'{subject}' needs exactly one of equals, matches, set")
            name = self.string(table, subject, place, required=True) or ""
            if subject == "var" and not VAR_NAME.fullmatch(name):
                self.fail(f"{place}.var", f"'{name}' is not a variable name (letters, digits, _)")
            source: Literal["var", "attribute"] = "var" if subject == "var" else "attribute"
            if "set" in table:
                if not isinstance(table["set"], bool):
                    self.fail(f"{place}.set", "must be true or false")
                return Compare(source, name, is_set=table["set"])
            if "matches" in table:
                pattern = self.string(table, "matches", place, required=True) or ""
                return Compare(source, name, matches=self.regex(pattern, f"{place}.matches"))
            return Compare(source, name, equals=self.string(table, "equals", place, required=True))
        self.check_keys(table, frozenset({subject}), place)
        value = table[subject]
        if subject in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.fail(f"{place}.{subject}", "needs a non-empty list of conditions")
            parts = tuple(
                self.condition(v, f"{place}.{subject}[{i}]") for i, v in enumerate(value, 1)
            )
            return AllOf(parts) if subject == "all" else AnyOf(parts)
        if subject == "not":
            return Not(self.condition(value, f"{place}.not"))
        text = self.string(table, subject, place, required=True) or ""
        if subject == "tag":
            return HasTag(text)
        if subject == "channel":
            return OnChannel(text)
        if text not in LOCALES:
            self.fail(f"{place}.locale", f"'{text}' is not one of {', '.join(LOCALES)}")
        return InLocale(text)

    def assign(self, raw: Mapping[str, object], place: str) -> Mapping[str, str]:
        if "set" not in raw:
            return MappingProxyType({})
        table = self.table(raw["set"], f"{place}.set")
        for name in table:
            self.var_name(name, f"{place}.set.{name}")
        return MappingProxyType(
            {name: self.template(table, name, f"{place}.set") or "" for name in table}
        )

    # -- cross-step checks ---------------------------------------------------------------

    def check_gotos(self, flow: Flow) -> None:
        """Every goto names a step of this flow; report the first that dangles."""
        for place, target in self.refs:
            if target not in flow.steps:
                self.fail(place, self.unknown_step(target, flow.steps))

    def check_progress(self, flow: Flow) -> None:
        """Reject steps that can only loop among themselves without ever waiting or ending
        (``goto`` to itself is the trivial case); the runner also guards at runtime."""
        done = {
            s.id for s in flow.steps.values() if isinstance(s, (*WAITING, Handoff, End, JumpTo))
        }
        changed = True
        while changed:
            changed = False
            for step in flow.steps.values():
                if step.id not in done and any(t is None or t in done for t in exits(step)):
                    done.add(step.id)
                    changed = True
        stuck = [s for s in flow.steps if s not in done]
        if stuck:
            self.fail(
                f"flow '{flow.id}', step '{stuck[0]}'",
                f"loops forever without waiting for the customer (steps: {', '.join(stuck)})",
            )

    # -- typed values ------------------------------------------------------------------

    def check_keys(self, raw: Mapping[str, object], allowed: frozenset[str], place: str) -> None:
        for key in raw:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"; did you mean '{close[0]}'?"
                    if close
                    else f" (allowed: {', '.join(sorted(allowed))})"
                )
                self.fail(f"{place}.{key}", f"unknown key{hint}")

    def table(self, raw: object, place: str) -> dict[str, object]:
        if not isinstance(raw, dict):
            self.fail(place, "must be a table")
        return raw

    def string(
        self, raw: Mapping[str, object], key: str, place: str, required: bool = False
    ) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(f"{place}.{key}", "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{place}.{key}", "must be a non-empty string")
        return value.strip()

    def strings(self, raw: Mapping[str, object], key: str, place: str) -> list[str]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(f"{place}.{key}", "must be a list of non-empty strings")
        return [v.strip() for v in value]

    def ident(self, raw: Mapping[str, object], key: str, place: str) -> str:
        value = self.string(raw, key, place, required=True) or ""
        if not ID.fullmatch(value):
            self.fail(f"{place}.{key}", f"'{value}' is not an id (letters, digits, _ and -)")
        return value

    def var(self, raw: Mapping[str, object], place: str, required: bool) -> str | None:
        name = self.string(raw, "var", place, required=required)
        return None if name is None else self.var_name(name, f"{place}.var")

    def var_name(self, name: str, place: str) -> str:
        if not VAR_NAME.fullmatch(name):
            self.fail(place, f"'{name}' is not a variable name (letters, digits, _)")
        if name == INPUT_VAR:
            self.fail(place, f"'{INPUT_VAR}' is reserved: it holds the customer's latest reply")
        return name

    def count(self, raw: Mapping[str, object], key: str, place: str, default: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
            self.fail(f"{place}.{key}", "must be a whole number from 0 to 10")
        return value

    def template(self, raw: Mapping[str, object], key: str, place: str) -> str | None:
        value = self.string(raw, key, place)
        if value is not None and (problem := template_problem(value)):
            self.fail(f"{place}.{key}", problem)
        return value

    def regex(self, pattern: str, place: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error as e:
            self.fail(place, f"invalid regular expression: {e}")

    def text(self, raw: Mapping[str, object], key: str, place: str) -> LocalText:
        text = self.optional_text(raw, key, place)
        if text is None:
            self.fail(f"{place}.{key}", f"required: {LOCALE_TEXT}")
        return text

    def optional_text(self, raw: Mapping[str, object], key: str, place: str) -> LocalText | None:
        """Customer text: one template per locale, every locale required."""
        if key not in raw:
            return None
        at = f"{place}.{key}"
        value = raw[key]
        if not isinstance(value, dict):
            self.fail(at, f"needs one text per locale: {LOCALE_TEXT}")
        self.check_keys(value, frozenset(LOCALES), at)
        for locale in LOCALES:
            if locale not in value:
                self.fail(at, f"missing the '{locale}' text")
            self.template(value, locale, at)
        return LocalText(MappingProxyType({locale: value[locale] for locale in LOCALES}))

    def unknown_step(self, target: str, steps: Mapping[str, Step]) -> str:
        close = difflib.get_close_matches(target, list(steps), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"no step '{target}' in this flow{hint}"
