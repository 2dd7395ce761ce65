"""The one error a flow file (or a flow running away at runtime) raises."""

from __future__ import annotations


class FlowError(Exception):
    """A broken flow: which file, where in it, and why.

    ``place`` reads like ``flow 'password_reset', step 'ask_email'.pattern`` so an admin
    can go straight to the line.
    """

    def __init__(self, file: str, place: str, reason: str) -> None:
        super().__init__(f"{file}: {place}: {reason}")
        self.file = file
        self.place = place
        self.reason = reason
