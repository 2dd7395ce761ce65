"""Instructions per turn (issue 18): a measure of a turn's cost that noise does not move.

CPU time per message moved 1.7x within an hour on the machine of README's figures
(a shared virtual machine), so a change of a few percent cannot be seen in
:mod:`bench.e2e`. The instructions a turn executes can: valgrind's ``callgrind`` counts
them, and with ``PYTHONHASHSEED`` fixed the same code gives the same count to within
about 2%. Instructions are not time (a cache miss costs more than an addition), but
two versions of the same Python code compare well by them.

What is counted: whole engine turns in this process (:meth:`bot.engine.Engine.handle`:
the store's begin and commit steps, the decision, the events, the outbox delivering to
a channel that only records), for :data:`bench.e2e.QUESTION` on the built-in
defaults, 20 customers at once, on the memory store or, with ``--redis``, on a private
``redis-server`` (this process's side only: the client, not the server). Not counted:
HTTP, aiogram, the provider's API.

``bench.e2e`` asks one question again and again, so whatever is cached by text hits
across its messages. ``--texts answers`` asks whether that flatters it: every counted
turn is a new customer's first message, each a different text, drawn (in a fixed
shuffled order) from the repository's labelled turn cases that expect a KB answer
(``tests/data/turn_cases*.jsonl``: real phrasings, typos, pt-BR and English).
``--texts question-first`` counts the benchmark's question in the same way (a new
customer each turn), the like-for-like reference.

Per turn = (count with ``large`` turns - count with ``small``) / (large - small): the
start-up, the KB build and the warm-up turns are in both counts and cancel out.

    python -m bench.instructions [--redis] [--small 100 --large 300]
        [--texts question|question-first|answers]

Needs ``valgrind`` (``apt-get install valgrind``); a run takes about a minute per
count. To compare two versions, run it in a checkout of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.e2e import QUESTION
from bench.processes import RedisServer
from bench.report import machine
from bot.app import build
from bot.clock import FakeClock
from bot.models import InboundMessage, OutboundMessage
from bot.settings import default_settings
from bot.store.memory import MemoryStore
from bot.store.redis import RedisStore

#: Customers writing at once (turns interleave as under load: group commit applies).
CUSTOMERS = 20
#: Turns each customer takes before the counted ones (the KB's caches fill up).
WARM_UP = 2
#: A count of the same code varies this much (callgrind, PYTHONHASHSEED fixed): event
#: loop scheduling and collections differ a little from run to run.
NOISE = 0.02

#: Replies per turn: the answer, then "did this help?" (as in bench.e2e).
REPLIES = 2
#: What the counted turns say (module doc): the benchmark's question from the same
#: customers, the question as every customer's first message, or varied first messages.
TEXTS = ("question", "question-first", "answers")
#: The varied texts' shuffle (fixed: both counts and every run draw the same order).
SHUFFLE_SEED = 18


def answer_texts() -> list[tuple[str, str]]:
    """``(text, locale)`` of every distinct labelled turn case that expects a KB
    answer, in a fixed shuffled order."""
    from bench.semantic import CASE_FILES

    seen: dict[str, str] = {}
    for path in CASE_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            if case["expect"] == "answer":
                seen.setdefault(case["text"], case.get("locale") or "pt-BR")
    texts = sorted(seen.items())
    random.Random(SHUFFLE_SEED).shuffle(texts)
    return texts


#: The longest a child waits for the replies still in the outbox (valgrind is slow).
REPLY_WAIT_SECONDS = 600.0

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLY_WAIT_SECONDS
    while not condition():
        if loop.time() > deadline:
            raise RuntimeError("the replies did not all reach the channel")
        await asyncio.sleep(0.01)


class ValgrindMissing(Exception):
    """valgrind is not installed: the message says how to install it."""


def collected(valgrind_output: str) -> int:
    """The instruction count callgrind reports at the end (``Collected : N``)."""
    found = _COLLECTED.findall(valgrind_output)
    if not found:
        raise ValueError(f"no instruction count in valgrind's output: {valgrind_output[-500:]!r}")
    return int(found[-1])


def per_turn(small: tuple[int, int], large: tuple[int, int]) -> float:
    """Instructions per turn from two ``(turns, instructions)`` counts."""
    turns = large[0] - small[0]
    if turns <= 0:
        raise ValueError("the large count must take more turns than the small one")
    return (large[1] - small[1]) / turns


class _Counting:
    """A customer channel that counts what it is given."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        self.sent += 1


async def turns(
    count: int, redis_url: str | None = None, texts: str = "question"
) -> dict[str, Any]:
    """Run ``count`` counted turns (after the warm-up): the replies they sent, and the
    KB matcher that answered (``lexical``, or more with the semantic extra). ``texts``:
    one of :data:`TEXTS` (module doc).

    On Redis the two counts of :func:`run` share one private server: each count's
    customers are its own (their addresses carry ``count``), so each starts with new
    conversations, as on the memory store, and nothing is deleted."""
    store = MemoryStore() if redis_url is None else RedisStore.from_url(redis_url)
    try:
        if isinstance(store, RedisStore):
            await store.load_scripts()
        escala = build(default_settings(), store=store)
        channel = _Counting()
        escala.outbox.register("telegram", channel)
        clock = FakeClock()
        messages = 0
        # The warm-up asks the benchmark's question in every mode: the varied texts are
        # drawn for the counted turns only, from the start of the order, so the large
        # count's texts are the small count's and more.
        varied = answer_texts() if texts == "answers" else None
        drawn = 0

        async def customer(number: int, each: int, counted: bool) -> None:
            nonlocal messages, drawn
            for _ in range(each):
                messages += 1
                text, locale = QUESTION, "pt-BR"
                address = f"{count}{1000 + number}"
                if counted and texts != "question":
                    address = f"{count}-new-{messages}"  # a new customer's first message
                if counted and varied is not None:
                    text, locale = varied[drawn % len(varied)]
                    drawn += 1
                await escala.engine.handle(
                    InboundMessage(
                        channel="telegram",
                        address=address,
                        text=text,
                        provider_message_id=f"{count}-{messages}",
                        received_at=clock.now(),
                        locale=locale,
                    )
                )

        await asyncio.gather(*(customer(c, WARM_UP, False) for c in range(CUSTOMERS)))
        await _until(lambda: channel.sent >= REPLIES * WARM_UP * CUSTOMERS)
        channel.sent = 0
        each = count // CUSTOMERS
        await asyncio.gather(*(customer(c, each, True) for c in range(CUSTOMERS)))
        if varied is None:
            await _until(lambda: channel.sent >= REPLIES * count)  # replies still in the outbox
        else:  # not every text gets two replies (a choice of answers, a handoff)
            await _until(lambda: escala.outbox.idle)
        return {
            "turns": count,
            "replies": channel.sent,
            "matcher": escala.engine.parts.matcher.kind,
        }
    finally:
        await store.close()


def count(
    turns_: int, redis_url: str | None, valgrind: str, texts: str = "question"
) -> tuple[int, dict[str, Any]]:
    """callgrind's instruction count for a child process that takes ``turns_`` turns,
    and what the child says of its turns (:func:`turns`)."""
    command = [
        valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "bench.instructions", "--child", str(turns_), "--texts", texts,
    ]  # fmt: skip
    if redis_url is not None:
        command += ["--redis-url", redis_url]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the counted run failed ({done.returncode}): {done.stderr[-2000:]}")
    said: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return collected(done.stderr), said


def run(
    small: int = 100, large: int = 300, redis: bool = False, texts: str = "question"
) -> dict[str, Any]:
    """Instructions per turn on the memory store, or on a private Redis."""
    if texts not in TEXTS:
        raise ValueError(f"texts must be one of {', '.join(TEXTS)}, got {texts!r}")
    for turns_ in (small, large):
        if turns_ <= 0 or turns_ % CUSTOMERS:
            raise ValueError(f"turns must be a positive multiple of {CUSTOMERS}, got {turns_}")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ValgrindMissing("valgrind is not installed (apt-get install valgrind)")
    with contextlib.ExitStack() as stack:
        url = None
        if redis:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = stack.enter_context(RedisServer(directory)).url
        runs = [(n, *count(n, url, valgrind, texts)) for n in (small, large)]
    counts = [(n, instructions) for n, instructions, _ in runs]
    return {
        "store": "redis" if redis else "memory",
        "matcher": runs[0][2]["matcher"],
        "texts": texts,
        "question": QUESTION,
        "replies": [said["replies"] for _, _, said in runs],
        "customers": CUSTOMERS,
        "replies_per_turn": REPLIES,
        "counts": counts,
        "instructions_per_turn": round(per_turn(counts[0], counts[1])),
        "noise": NOISE,
        "machine": machine(),
    }


def markdown(result: dict[str, Any]) -> str:
    return (
        f"Instructions per turn ({result['store']} store, {result['matcher']} KB matcher, "
        f"texts: {result.get('texts', 'question')}, callgrind, "
        f"{result['customers']} customers at once): "
        f"**{result['instructions_per_turn']:,}** (runs of the same code vary by about "
        f"{result['noise']:.0%})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--redis", action="store_true", help="on a private redis-server")
    parser.add_argument("--small", type=int, default=100, help="turns of the first count")
    parser.add_argument("--large", type=int, default=300, help="turns of the second count")
    parser.add_argument(
        "--texts",
        choices=TEXTS,
        default="question",
        help="what the counted turns say (see above; default: the benchmark's question)",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(asyncio.run(turns(args.child, args.redis_url, args.texts))))
        return 0
    try:
        result = run(args.small, args.large, args.redis, args.texts)
    except (ValgrindMissing, ValueError) as e:
        print(f"bench.instructions: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
