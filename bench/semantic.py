"""Benchmarks of the ``semantic`` extra (issue 19): fused beside lexical, same run.

    python -m bench.semantic [--datasets DIR] [--only quality,turns,latency,startup]
                             [--sizes 1000,10000,100000] [--output FILE]

- **quality**: BANKING77 and CLINC150 *test* splits (run after tuning on train / val
  only: ``bench.semantic_tune``; README says which runs were made), lexical
  :class:`kb.matcher.Matcher` at its thresholds and :class:`kb.fused.FusedMatcher` at
  its own operating point (:data:`kb.fused.VOTING`), as each ships: top-1, coverage,
  precision, out-of-scope answered. Skipped, saying why, when the datasets are missing.
- **turns**: the pt-BR ``holdout`` cases of the whole-turn case files
  (:data:`CASE_FILES`; ``--split dev`` while tuning) through the whole engine, ``[kb]
  semantic = false`` and ``true``: KB topic right (cases expecting a KB answer that got
  that entry) and triage tier right (handoff cases that reached their tier); the
  held-out cases added on 2026-11-30 and each fresh set written on 2026-12-01 are also
  reported apart from the original ones (:data:`PARTS`).
- **latency**: KBs of 1k / 10k / 100k phrasings (``bench.latency.synthesize``), each
  size in a fresh subprocess per matcher: per-message p50 / p99 of ``match`` (every
  query a new text: its embedding included), peak RSS, build time with a cold
  embedding cache (the embedding time) and with a warm one.
- **startup**: ``escala check`` wall time on the shipped content, semantic off and on
  (cache warm), each a subprocess, repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.datasets import DatasetMissing, build_kb, default_datasets_dir, load_suites
from bench.latency import percentile, synthesize
from bench.progress import Progress
from bench.quality import matcher_rows, summarize
from bench.report import machine
from kb.fused import FusedMatcher
from kb.matcher import Matcher
from kb.semantic import CACHE_ENV, EmbeddingCache, available, default_cache_dir, shared_encoder

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000)
QUERIES = 300
SEED = 19
CHECK_REPETITIONS = 3


def quality(root: Path, progress: Progress) -> dict[str, Any]:
    try:
        suites = load_suites(root)
    except DatasetMissing as e:
        progress.say(f"[quality] skipped: {e}")
        return {"skipped": str(e)}
    encoder = shared_encoder()
    cache = EmbeddingCache(default_cache_dir())
    out: dict[str, Any] = {}
    for suite in suites:
        lexical, _ = matcher_rows(Matcher(suite.kb), suite.test, progress, f"{suite.name} lexical")
        fused_matcher = FusedMatcher(suite.kb, encoder=encoder, cache=cache)
        fused, _ = matcher_rows(fused_matcher, suite.test, progress, f"{suite.name} fused")
        out[suite.name] = {"lexical": summarize(lexical), "fused": summarize(fused)}
    return out


#: The held-out pt-BR cases added on 2026-11-30, written before either matcher ran on
#: them (README); reported apart from, and together with, the original ones.
ADDED = "holdout-added-2026-11-30"
#: The fresh held-out pt-BR cases of 2026-12-01, committed before anything ran on them
#: (README), once the earlier held-out cases had been run too often to stay unseen.
FRESH = "holdout-fresh-2026-12-01"
#: The second fresh set of 2026-12-01, written apart from the tuning on the first one
#: once that had been run, and committed before anything ran on it (README).
FRESH2 = "holdout-fresh2-2026-12-01"
#: The third fresh set of 2026-12-01, written apart from the tuning on the first two
#: once they had been run, and committed before anything ran on it (README).
FRESH3 = "holdout-fresh3-2026-12-01"
#: The fourth fresh set of 2026-12-01: three files by three writers, each apart from
#: the tuning on the first three sets and from each other, committed before anything
#: ran on them (README).
FRESH4 = "holdout-fresh4-2026-12-01"
#: The fifth, written the same way once the fourth had been run and read (README).
FRESH5 = "holdout-fresh5-2026-12-01"
#: Each part reported apart: its name and the tag its cases carry (``None``: neither).
PARTS = (
    ("original", None),
    ("added", ADDED),
    ("fresh", FRESH),
    ("fresh2", FRESH2),
    ("fresh3", FRESH3),
    ("fresh4", FRESH4),
    ("fresh5", FRESH5),
)
#: The whole-turn cases: issue 12's set (``escala eval``'s targets are tested on it),
#: the pt-BR cases added for issue 19 (held-out and dev, tagged by the day they were
#: added) and the five fresh held-out sets, each kept in files of its own.
CASE_FILES = (
    ROOT / "tests" / "data" / "turn_cases.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_added.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh2.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh3.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh4_a.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh4_b.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh4_c.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh5_a.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh5_b.jsonl",
    ROOT / "tests" / "data" / "turn_cases_ptbr_fresh5_c.jsonl",
)


def part_of(case: Any) -> str:
    """Which part of the held-out set ``case`` belongs to (:data:`PARTS`)."""
    return next((name for name, tag in PARTS if tag is not None and tag in case.tags), "original")


def turn_figures(cases: Sequence[Any], results: Sequence[Any]) -> dict[str, Any]:
    """KB topic right (cases expecting a given KB answer that got it), triage tier right
    (handoff cases that reached their tier) and fully correct, over ``cases``."""
    from bot import turn_eval

    pairs = list(zip(cases, results, strict=True))
    topic = [(c, r) for c, r in pairs if c.expect == "answer" and c.entry]
    tiered = [(c, r) for c, r in pairs if c.expect == "handoff" and c.tier]
    return {
        "cases": len(pairs),
        "kb_topic_right": sum(r.outcome == "answer" and r.entry == c.entry for c, r in topic)
        / max(len(topic), 1),
        "kb_cases": len(topic),
        "triage_tier_right": sum(r.outcome == "handoff" and r.tier == c.tier for c, r in tiered)
        / max(len(tiered), 1),
        "tier_cases": len(tiered),
        "fully_correct": sum(turn_eval.correct(c, r) for c, r in pairs) / max(len(pairs), 1),
    }


def turns(progress: Progress, split: str = "holdout") -> dict[str, Any]:
    """The pt-BR cases of ``split`` through the whole engine, semantic off and on: all of
    them, and (held-out) the original cases, those added on 2026-11-30 and the three fresh
    sets of 2026-12-01 apart."""
    from bot import turn_eval
    from bot.settings import default_settings

    cases = [
        c
        for path in CASE_FILES
        for c in turn_eval.load_cases(path)
        if c.split == split and c.locale == "pt-BR"
    ]
    out: dict[str, Any] = {"split": split, "cases": len(cases)}
    base = default_settings()
    for name, on in (("lexical", False), ("fused", True)):
        settings = replace(base, kb=replace(base.kb, semantic=on))
        progress.say(f"[turns] {name}: {len(cases)} {split} pt-BR cases")
        results = asyncio.run(turn_eval.run_cases(settings, cases))
        out[name] = turn_figures(cases, results)
        for part, _ in PARTS:
            chosen = [(c, r) for c, r in zip(cases, results, strict=True) if part_of(c) == part]
            if chosen:
                out[name][part] = turn_figures([c for c, _ in chosen], [r for _, r in chosen])
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not
    inherited from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency_one(root: Path, size: int, kind: str, queries: int) -> dict[str, Any]:
    """One matcher on one KB size, in this process (run by :func:`latency` in a child)."""
    suites = load_suites(root)
    pool = [(q, f"{s.name}:{e.id}") for s in suites for e in s.kb.entries for q in e.questions]
    texts = [c.text for s in suites for c in s.test]
    sample = random.Random(SEED).sample(texts, min(queries, len(texts)))
    kb = build_kb(synthesize(pool, size))
    out: dict[str, Any] = {"phrasings": size, "entries": len(kb.entries), "matcher": kind}
    started = time.perf_counter()
    if kind == "lexical":
        matcher: Matcher = Matcher(kb)
    else:
        with tempfile.TemporaryDirectory() as cold:
            encoder = shared_encoder()
            encoder.embed(["warm up"])  # the model's load is start-up, measured apart
            started = time.perf_counter()
            FusedMatcher(kb, encoder=encoder, cache=EmbeddingCache(Path(cold)))
            out["build_cold_cache_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            matcher = FusedMatcher(kb, encoder=encoder, cache=EmbeddingCache(Path(cold)))
    out["build_seconds"] = time.perf_counter() - started
    for text in sample[:10]:
        matcher.match(text + " warm")
    timings: list[float] = []
    for text in sample:
        t0 = time.perf_counter()
        matcher.match(text)
        timings.append((time.perf_counter() - t0) * 1000.0)
    out |= {
        "queries": len(timings),
        "p50_ms": percentile(timings, 0.5),
        "p99_ms": percentile(timings, 0.99),
        "mean_ms": statistics.fmean(timings),
        "peak_rss_mb": peak_rss_mb(),
    }
    return out


def latency(root: Path, sizes: Sequence[int], progress: Progress) -> dict[str, Any]:
    try:
        load_suites(root)
    except DatasetMissing as e:
        progress.say(f"[latency] skipped: {e}")
        return {"skipped": str(e)}
    out: dict[str, Any] = {}
    for size in sizes:
        for kind in ("lexical", "fused"):
            progress.say(f"[latency] {kind} at {size} phrasings (subprocess)")
            done = subprocess.run(
                [sys.executable, "-m", "bench.semantic", "--one", f"{size}:{kind}",
                 "--datasets", str(root)],
                cwd=ROOT, capture_output=True, text=True, check=True, timeout=3600,
            )  # fmt: skip
            out[f"{size}:{kind}"] = json.loads(done.stdout)
            progress.say(f"[latency] {out[f'{size}:{kind}']}")
    return out


def startup(progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, on in (("lexical", "false"), ("fused", "true")):
            config = Path(folder) / f"{name}.toml"
            config.write_text(f"[kb]\nsemantic = {on}\n", encoding="utf-8")
            command = [sys.executable, "-m", "bot.cli", "check", "--config", str(config)]
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # warms the cache
            times = []
            for _ in range(CHECK_REPETITIONS):
                t0 = time.perf_counter()
                subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            out[name] = {"check_seconds_median": statistics.median(times), "runs": times}
            progress.say(f"[startup] {name}: {out[name]}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.semantic", description=__doc__)
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(ROOT))
    parser.add_argument("--only", default="quality,turns,latency,startup")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument(
        "--split", choices=("dev", "holdout"), default="holdout", help="turns: which split"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # SIZE:KIND, in a child process
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "semantic.json")
    args = parser.parse_args(argv)
    if not available():
        print(
            "bench.semantic: skipped: " + "the 'semantic' extra is not installed", file=sys.stderr
        )
        return 0
    if args.one:
        size, kind = args.one.split(":")
        print(json.dumps(latency_one(args.datasets, int(size), kind, args.queries)))
        return 0
    os.environ.setdefault(CACHE_ENV, str(default_cache_dir()))
    progress = Progress()
    parts = set(args.only.split(","))
    result: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()}
    if "quality" in parts:
        result["quality"] = quality(args.datasets, progress)
    if "turns" in parts:
        result["turns"] = turns(progress, args.split)
    if "latency" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        result["latency"] = latency(args.datasets, sizes, progress)
    if "startup" in parts:
        result["startup"] = startup(progress)
    result["load_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
