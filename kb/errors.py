"""The one error the knowledge base raises: a bad file, named with the place and reason."""

from __future__ import annotations

from collections.abc import Sequence


class KbError(Exception):
    """A knowledge base file (or a labelled cases file) that cannot be used.

    ``file`` is the path as given, ``place`` says where in it (``entry[3] 'reset_password'
    .answers.en``, ``synonyms.senha``, ``line 4``; positions count from 1) and ``reason``
    what is wrong, so an admin can fix the file without reading code. ``problems`` holds
    every problem found in one load, ``(file, place, reason)`` each (the first is also
    ``file``, ``place``, ``reason``); the message has one line per problem.
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
    def combine(cls, errors: Sequence[KbError]) -> KbError:
        """One error carrying every problem of ``errors``, in order."""
        problems = [problem for error in errors for problem in error.problems]
        return cls(*problems[0], problems=problems)
