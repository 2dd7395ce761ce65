"""``python -m bench``: run the benchmarks, print a Markdown table, write JSON results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import e2e, latency, quality, redis_memory, startup
from bench.datasets import DatasetMissing, Suite, default_datasets_dir, load_suites
from bench.progress import Progress
from bench.report import machine, markdown

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest.json"

QUICK_QUALITY_SAMPLE = 100
QUICK_DIFFLIB_SAMPLE = 10
QUICK_LATENCY_SIZES = (1_000, 10_000)
QUICK_LATENCY_QUERIES = 50
QUICK_CONVERSATIONS = 20
QUICK_EXTRA_MESSAGES = 10


class Options(argparse.Namespace):
    quick: bool
    only: str
    datasets: Path | None
    output: Path
    quiet: bool


Runner = Callable[[Options, Progress, Callable[[], list[Suite]]], dict[str, Any]]


def _quality(options: Options, progress: Progress, suites: Callable[[], list[Suite]]) -> Any:
    try:
        loaded = suites()
    except DatasetMissing as e:
        progress.say(f"[kb-quality] skipped: {e}")
        return {"datasets": {"skipped": str(e)}}
    if options.quick:
        return {
            s.name: quality.run_suite(
                s,
                sample=QUICK_QUALITY_SAMPLE,
                progress=progress,
                difflib_sample=QUICK_DIFFLIB_SAMPLE,
            )
            for s in loaded
        }
    return {s.name: quality.run_suite(s, sample=None, progress=progress) for s in loaded}


def _latency(options: Options, progress: Progress, suites: Callable[[], list[Suite]]) -> Any:
    try:
        loaded = suites()
    except DatasetMissing as e:
        progress.say(f"[kb-latency] skipped: {e}")
        return {"skipped": str(e)}
    if options.quick:
        return latency.run(
            loaded, sizes=QUICK_LATENCY_SIZES, queries=QUICK_LATENCY_QUERIES, progress=progress
        )
    return latency.run(loaded, progress=progress)


def _redis(options: Options, progress: Progress, suites: Callable[[], list[Suite]]) -> Any:
    if options.quick:
        result = redis_memory.run(
            conversations=QUICK_CONVERSATIONS, extra=QUICK_EXTRA_MESSAGES, progress=progress
        )
    else:
        result = redis_memory.run(progress=progress)
    if "skipped" in result:
        progress.say(f"[redis-memory] skipped: {result['skipped']}")
    return result


def _http(options: Options, progress: Progress, suites: Callable[[], list[Suite]]) -> Any:
    return e2e.run_all(options.quick, progress)


def _startup(options: Options, progress: Progress, suites: Callable[[], list[Suite]]) -> Any:
    repetitions = startup.QUICK_REPETITIONS if options.quick else startup.REPETITIONS
    return startup.run(repetitions=repetitions, progress=progress)


#: Name -> runner, in run order. Names are what ``--only`` takes.
BENCHMARKS: dict[str, Runner] = {
    "kb-quality": _quality,
    "kb-latency": _latency,
    "redis-memory": _redis,
    "http-throughput": _http,
    "startup": _startup,
}
DEFAULT = tuple(BENCHMARKS)


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny sample: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT),
        help=f"comma-separated benchmarks (known: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=None,
        help="folder with banking77/ and clinc150/ (default: $ESCALA_DATASETS, "
        "else ../shared/datasets next to the repository)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    options = parser.parse_args(argv, namespace=Options())
    unknown = [n for n in options.only.split(",") if n and n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark '{unknown[0]}' (known: {', '.join(BENCHMARKS)})")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    progress = Progress(quiet=options.quiet)
    root = options.datasets or default_datasets_dir(REPO_ROOT)
    cache: list[Suite] = []

    def suites() -> list[Suite]:
        if not cache:
            progress.say(f"[datasets] reading {root}")
            cache.extend(load_suites(root))
        return cache

    results: dict[str, Any] = {
        "machine": machine(),
        "quick": options.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name in [n for n in options.only.split(",") if n]:
        started = time.perf_counter()
        progress.say(f"[{name}] running")
        results[name] = BENCHMARKS[name](options, progress, suites)
        progress.say(f"[{name}] done in {time.perf_counter() - started:.1f}s")
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    progress.say(f"results written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
