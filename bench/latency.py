"""Part 2: per-query latency of ``Matcher.match`` on KBs of 1k, 10k and 100k phrasings.

The KBs are synthesized from the BANKING77 and CLINC150 training phrasings: the real
phrasings first, then deterministic perturbations of them (a word dropped, two words
swapped, one letter doubled) until the size is reached, each kept in its own intent's
entry. Queries are test-split texts; each call is timed alone, in one process.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence

from bench.datasets import Suite, build_kb
from bench.progress import Progress
from kb.matcher import Matcher

SIZES = (1_000, 10_000, 100_000)
QUERIES = 300
SEED = 6


def perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    kind = rng.randrange(3)
    if kind == 0 and len(words) > 2:
        del words[rng.randrange(len(words))]
    elif kind == 1 and len(words) > 1:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        i = rng.randrange(len(words))
        word = words[i]
        j = rng.randrange(len(word)) if word else 0
        words[i] = word[:j] + word[j : j + 1] * 2 + word[j + 1 :]
    return " ".join(words)


def synthesize(
    pool: Sequence[tuple[str, str]], size: int, seed: int = SEED
) -> list[tuple[str, str]]:
    """``size`` (text, label) pairs: a seeded sample of ``pool``, then perturbed copies."""
    rng = random.Random(seed)
    base = list(pool)
    rng.shuffle(base)
    out = base[:size]
    while len(out) < size:
        text, label = base[len(out) % len(base)]
        out.append((perturb(text, rng), label))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    suites: Sequence[Suite],
    *,
    sizes: Sequence[int] = SIZES,
    queries: int = QUERIES,
    progress: Progress,
) -> dict[str, object]:
    pool = [(q, f"{s.name}:{e.id}") for s in suites for e in s.kb.entries for q in e.questions]
    texts = [c.text for s in suites for c in s.test]
    rng = random.Random(SEED)
    sample = rng.sample(texts, min(queries, len(texts)))
    results: dict[str, object] = {}
    for size in sizes:
        progress.say(f"[latency] building a KB of {size} phrasings")
        kb = build_kb(synthesize(pool, size))
        started = time.perf_counter()
        matcher = Matcher(kb)
        build = time.perf_counter() - started
        for text in sample[:10]:  # warm-up: first calls allocate
            matcher.match(text)
        timings: list[float] = []
        for text in progress.track(sample, f"latency {size}", len(sample)):
            t0 = time.perf_counter()
            matcher.match(text)
            timings.append((time.perf_counter() - t0) * 1000.0)
        results[str(size)] = {
            "phrasings": size,
            "entries": len(kb.entries),
            "build_seconds": build,
            "queries": len(timings),
            "p50_ms": percentile(timings, 0.5),
            "p99_ms": percentile(timings, 0.99),
            "mean_ms": statistics.fmean(timings),
        }
    return results
