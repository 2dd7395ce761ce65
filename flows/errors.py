"""The one error a flow file (or a flow running away at runtime) raises."""

from __future__ import annotations

from collections.abc import Sequence


class FlowError(Exception):
    """A broken flow: which file, where in it, and why.

    ``place`` reads like ``flow 'password_reset', step 'ask_email'.pattern`` (positions
    count from 1: ``step #1``, ``choices[1]``) so an admin can go straight to the line.
    ``problems`` holds every problem of one load, ``(file, place, reason)`` each (the
    first is also ``file``, ``place``, ``reason``); the message has one line per problem.
    """

    def __init__(
        self,
        file: str,
        place: str,
        reason: str,
        problems: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        self.problems = tuple(problems) or ((file, place, reason),)
        super().__init__("\n".join(f"{f}: {p}: {r}" for f, p, r in self.problems))
        self.file = file
        self.place = place
        self.reason = reason

    @classmethod
    def combine(cls, errors: Sequence[FlowError]) -> FlowError:
        """One error carrying every problem of ``errors``, in order."""
        problems = [problem for error in errors for problem in error.problems]
        return cls(*problems[0], problems=problems)
