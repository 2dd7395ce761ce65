"""Read flow files (TOML), validate everything, and hand the engine a :class:`FlowSet`.

Validation happens here, once, so a running bot never meets a broken flow: every
error names the file, the place (``flow 'x', step 'y'.pattern``) and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from flows.errors import FlowError
from flows.model import Flow, Handoff, JumpTo
from flows.parse import FileReader
from flows.text import normalize


class FlowSet:
    """Every loaded flow, by id, and the trigger phrases that start them."""

    def __init__(self, flows: Iterable[Flow] = ()) -> None:
        self._flows: dict[str, Flow] = {f.id: f for f in flows}
        self._triggers: dict[str, str] = {
            normalize(t): f.id for f in self._flows.values() for t in f.triggers
        }
        self._longest = max((len(t.split()) for t in self._triggers), default=0)

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def ids(self) -> tuple[str, ...]:
        return tuple(self._flows)

    def find_trigger(self, text: str, then: Callable[[str], bool] | None = None) -> str | None:
        """The flow ``text`` starts, ignoring case, accents and punctuation: the one whose
        trigger it is, or, when it is several triggers in a row, the last one's ("oi, bom
        dia" is the greeting's; "olá! esqueci minha senha" the password reset's: a
        greeting before a request is courtesy). ``then``: what may follow the triggers
        (the rest of the text, normalized), e.g. small talk ("bom dia, tudo bem?")."""
        key = normalize(text)
        if not key:
            return None
        found = self._triggers.get(key)
        if found is not None:
            return found
        words = key.split()
        at = 0
        while at < len(words):  # the longest trigger at each place, left to right
            for size in range(min(self._longest, len(words) - at), 0, -1):
                flow = self._triggers.get(" ".join(words[at : at + size]))
                if flow is not None:
                    found, at = flow, at + size
                    break
            else:
                break
        if found is None or at == len(words):
            return found
        return found if then is not None and then(" ".join(words[at:])) else None

    def handoff_tiers(self) -> set[tuple[str, str, str]]:
        """``(flow id, step id, tier)`` of every handoff naming a tier, for the engine to check."""
        return {
            (flow.id, step.id, step.tier)
            for flow in self._flows.values()
            for step in flow.steps.values()
            if isinstance(step, Handoff) and step.tier is not None
        }


def default_flows_path() -> Path:
    """The flows shipped with Escala."""
    return Path(__file__).parent / "default"


def load_flows(paths: Sequence[Path | str]) -> FlowSet:
    """Load flow files, or every ``*.toml`` of a directory (sorted by name)."""
    flows: dict[str, Flow] = {}
    triggers: dict[str, tuple[str, str]] = {}  # normalized -> (flow id, file)
    jumps: list[tuple[Flow, JumpTo]] = []
    errors: list[FlowError] = []
    read: list[Flow] = []
    for file in _files(paths):
        try:
            read.extend(FileReader(file).flows())
        except FlowError as e:
            errors.append(e)  # the other files are still read: all problems at once
    if errors:
        raise FlowError.combine(errors)
    for flow in read:
        place = f"flow '{flow.id}'"
        if flow.id in flows:
            raise FlowError(flow.file, place, f"duplicate flow id (also in {flows[flow.id].file})")
        flows[flow.id] = flow
        for trigger in flow.triggers:
            key = normalize(trigger)
            owner = triggers.setdefault(key, (flow.id, flow.file))
            if owner[0] != flow.id:
                raise FlowError(
                    flow.file,
                    f"{place}.triggers",
                    f"trigger '{trigger}' already starts flow '{owner[0]}' ({owner[1]})",
                )
        jumps.extend((flow, s) for s in flow.steps.values() if isinstance(s, JumpTo))
    for flow, jump in jumps:
        if jump.flow not in flows:
            raise FlowError(
                flow.file,
                f"flow '{flow.id}', step '{jump.id}'.flow",
                f"no flow '{jump.flow}' (flows: {', '.join(sorted(flows))})",
            )
    return FlowSet(flows.values())


def _files(paths: Sequence[Path | str]) -> list[Path]:
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found = sorted(entry.glob("*.toml"))
            if not found:
                raise FlowError(str(entry), "directory", "no *.toml flow files in it")
            files.extend(found)
        elif entry.is_file():
            files.append(entry)
        else:
            raise FlowError(str(entry), "path", "no such file or directory")
    return files
