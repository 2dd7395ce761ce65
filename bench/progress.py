"""Plain progress lines on stderr for long runs (no dependency, no terminal tricks)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Prints ``[label] done/total (pct) elapsed`` at most every ``every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 2.0, quiet: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.quiet = quiet

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def track(self, items: Iterable[T], label: str, total: int) -> Iterator[T]:
        start = last = time.monotonic()
        for done, item in enumerate(items, start=1):
            yield item
            now = time.monotonic()
            if now - last >= self.every or done == total:
                last = now
                pct = 100.0 * done / total if total else 100.0
                self.say(f"[{label}] {done}/{total} ({pct:.0f}%) {now - start:.1f}s")
