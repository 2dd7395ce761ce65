"""Public intent datasets turned into in-memory knowledge bases (nothing copied into the repo).

BANKING77 (``banking77/train.csv``, ``test.csv``: columns ``text,category``): one KB entry
per intent whose phrasings are that intent's training queries; evaluated on ``test.csv``.
CLINC150 (``clinc150/data_full.json``: ``train``, ``val``, ``test``, ``oos_*``; items
``[text, intent]``): KB from the in-scope ``train`` items; evaluated on ``test`` plus
``oos_test`` (out of scope: the bot must not answer them). The test splits are used for
evaluation only; ``val`` (and ``oos_val``) are there for tuning.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.evaluate import Case
from kb.model import KbEntry, KnowledgeBase

ENV_VAR = "ESCALA_DATASETS"


class DatasetMissing(Exception):
    """A dataset's files are not where we looked; the benchmark is skipped, with this text."""


@dataclass(frozen=True)
class Suite:
    """A KB built from a training split, and labelled cases to evaluate it on."""

    name: str
    kb: KnowledgeBase
    #: In-scope cases (``expected`` is an entry id) then out-of-scope ones (``expected`` None).
    test: tuple[Case, ...]
    #: Held-out cases for tuning, never the test split.
    val: tuple[Case, ...] = ()

    @property
    def phrasings(self) -> int:
        return sum(len(e.questions) for e in self.kb.entries)


def default_datasets_dir(repo_root: Path) -> Path:
    """``$ESCALA_DATASETS``, else ``../shared/datasets`` next to the repository."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else repo_root.parent / "shared" / "datasets"


def build_kb(labelled: Iterable[tuple[str, str]]) -> KnowledgeBase:
    """One entry per label, in first-seen order, with that label's texts as phrasings."""
    by_label: dict[str, list[str]] = {}
    for text, label in labelled:
        if text.strip():
            by_label.setdefault(label, []).append(text.strip())
    return KnowledgeBase(
        tuple(
            KbEntry(
                id=label,
                category=label.split("_", 1)[0],
                questions=tuple(texts),
                answers={"pt-BR": label, "en": label},
                titles={},
            )
            for label, texts in by_label.items()
        )
    )


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DatasetMissing(f"{path} not found (set --datasets DIR or ${ENV_VAR})")
    return path


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with _need(path).open(encoding="utf-8", newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def banking77(root: Path) -> Suite:
    folder = root / "banking77"
    train = _read_csv(folder / "train.csv")
    test = _read_csv(folder / "test.csv")
    return Suite("banking77", build_kb(train), tuple(Case(t, c) for t, c in test))


def clinc150(root: Path) -> Suite:
    raw = json.loads(_need(root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))

    def pairs(split: str) -> list[tuple[str, str]]:
        return [(str(text), str(intent)) for text, intent in raw[split]]

    def cases(split: str, oos_split: str) -> tuple[Case, ...]:
        in_scope = [Case(t, i) for t, i in pairs(split)]
        return (*in_scope, *(Case(t, None) for t, _ in pairs(oos_split)))

    return Suite(
        "clinc150",
        build_kb(pairs("train")),
        cases("test", "oos_test"),
        cases("val", "oos_val"),
    )


def load_suites(root: Path, names: Sequence[str] = ("banking77", "clinc150")) -> list[Suite]:
    loaders = {"banking77": banking77, "clinc150": clinc150}
    return [loaders[name](root) for name in names]
