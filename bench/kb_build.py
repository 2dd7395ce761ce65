"""KB index build: time, peak RSS and live size at 1k, 10k and 100k phrasings (issue 18, part 7).

Each size is built in a fresh subprocess (``python -m bench.kb_build --child N``) so the
peak is that build's alone: ``ru_maxrss`` of a process that has only loaded the datasets
and synthesized the KB (:func:`bench.latency.synthesize`, the same KBs as the latency
benchmark) before building the :class:`~kb.matcher.Matcher`.

Figures per size:

* **build**: wall seconds of ``Matcher(kb)``;
* **before**: RSS once the KB is in memory, before the build;
* **live**: what the matcher keeps, in bytes allocated (``tracemalloc``, in a second
  fresh process: tracing slows the build, so the timed and peak run is untraced). RSS
  after the build is reported too, but it overstates what is kept: memory the build
  freed stays in the allocator's arenas;
* **peak**: ``ru_maxrss`` minus *before*: the most the build needed on top of the KB;
* **peak / live**: the target is ≤ 2 at 100k phrasings.

``python -m bench.kb_build [--sizes 1000,10000,100000]`` prints a Markdown table; the
datasets come from ``$ESCALA_DATASETS`` (or ``../shared/datasets``), as for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.datasets import build_kb, default_datasets_dir, load_suites
from bench.latency import SIZES, synthesize
from kb.matcher import Matcher
from kb.model import KnowledgeBase

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _rss() -> int:
    """Resident set size now, in bytes (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _kb(size: int, datasets: Path) -> KnowledgeBase:
    suites = load_suites(datasets)
    pool = [(q, f"{s.name}:{e.id}") for s in suites for e in s.kb.entries for q in e.questions]
    return build_kb(synthesize(pool, size))


def _live(size: int, datasets: Path) -> dict[str, Any]:
    """Bytes the built matcher keeps (allocated since just before the build)."""
    kb = _kb(size, datasets)
    gc.collect()
    tracemalloc.start()
    matcher = Matcher(kb)
    gc.collect()
    live, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert matcher.match("hello") is not None  # the matcher is kept alive until measured
    return {"live_mb": live / MB, "traced_peak_mb": traced_peak / MB}


def _child(size: int, datasets: Path) -> dict[str, Any]:
    """Build time and RSS figures of one untraced build."""
    kb = _kb(size, datasets)
    gc.collect()
    before = _rss()
    # ru_maxrss so far is the loading's peak; the build's own shows only if it goes higher,
    # so it is compared with the current RSS (what the build starts from).
    loading_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    matcher = Matcher(kb)
    build = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gc.collect()
    after = _rss()
    assert matcher.match("hello") is not None  # the matcher is kept alive until measured
    return {
        "phrasings": size,
        "entries": len(kb.entries),
        "build_seconds": build,
        "before_mb": before / MB,
        "loading_peak_mb": loading_peak / MB,
        "rss_after_mb": (after - before) / MB,
        "peak_mb": (peak - before) / MB,
        "process_peak_mb": peak / MB,
        # False: the build never rose above loading the datasets; its peak is unseen.
        "build_peak_visible": peak > loading_peak,
    }


def run(*, sizes: Sequence[int] = SIZES, datasets: Path | None = None) -> dict[str, Any]:
    root = datasets or default_datasets_dir(REPO_ROOT)
    results: dict[str, Any] = {}
    for size in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.kb_build", "--child", str(size), "--datasets", str(root)],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        row = json.loads(out.stdout)
        out = subprocess.run(
            [sys.executable, "-m", "bench.kb_build", "--live", str(size), "--datasets", str(root)],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        row |= json.loads(out.stdout)
        row["peak_over_live"] = row["peak_mb"] / row["live_mb"]
        results[str(size)] = row
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "### KB index build (fresh process per size)",
        "",
        "| phrasings | build | RSS before | live (kept) | build peak (RSS) | peak / live "
        "| RSS after | process peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results.values():
        lines.append(
            f"| {row['phrasings']:,} | {row['build_seconds']:.2f} s | {row['before_mb']:.0f} MB "
            f"| {row['live_mb']:.0f} MB | {row['peak_mb']:.0f} MB | {row['peak_over_live']:.2f} "
            f"| +{row['rss_after_mb']:.0f} MB | {row['process_peak_mb']:.0f} MB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kb_build", description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--datasets", type=Path, default=None)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--live", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    root = options.datasets or default_datasets_dir(REPO_ROOT)
    if options.child is not None:
        print(json.dumps(_child(options.child, root)))
        return 0
    if options.live is not None:
        print(json.dumps(_live(options.live, root)))
        return 0
    sizes = [int(s) for s in options.sizes.split(",") if s]
    print(markdown(run(sizes=sizes, datasets=options.datasets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
