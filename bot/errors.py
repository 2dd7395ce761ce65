"""Every error Escala raises on purpose, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence


class EscalaError(Exception):
    """Base of Escala's own errors."""


def _line(file: str, place: str, reason: str) -> str:
    return f"{file}: {place}: {reason}" if place else f"{file}: {reason}"


class ConfigError(EscalaError):
    """A configuration or definition file is wrong. Names the file, the place and why.

    ``place`` is the key in a settings file (``kb.answer_threshold``), or a path such
    as ``flow password_reset, step ask_email`` in a flow file; positions in lists count
    from 1 (``tiers[1]`` is the first tier). ``problems`` holds every problem found when
    a loader checked a whole file (:class:`Problems`), ``(file, place, reason)`` each,
    the first one also as ``file``, ``place`` and ``reason``; the message has one line
    per problem. :class:`ConfigErrors` is the usual way to raise several.
    """

    def __init__(
        self,
        file: str,
        place: str,
        reason: str,
        problems: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        self.file = file
        self.place = place
        self.reason = reason
        self.problems = tuple(problems) or ((file, place, reason),)
        super().__init__("\n".join(_line(*problem) for problem in self.problems))


class Problems:
    """Collects the problems of a file's independent items (rules, tiers, entries) so
    an admin sees all of them at once instead of one per run::

        problems = Problems()
        for item in items:
            with problems.check():
                load(item)
        problems.raise_if_any()
    """

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as e:
            self.errors.append(e)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigErrors.of(self.errors)


class ConfigErrors(ConfigError):
    """Several configuration errors, reported at once (one line each). Nested ones are
    flattened: ``errors`` holds one error per problem, ``problems`` their places."""

    def __init__(self, errors: list[ConfigError]) -> None:
        flat = [leaf for error in errors for leaf in _leaves(error)]
        self.errors = flat
        first = flat[0]
        problems = [problem for error in flat for problem in error.problems]
        super().__init__(first.file, first.place, first.reason, problems)
        self.args = ("\n".join(str(e) for e in flat),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    @staticmethod
    def of(errors: list[ConfigError]) -> ConfigError:
        """One error as itself, several as one :class:`ConfigErrors`."""
        return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _leaves(error: ConfigError) -> list[ConfigError]:
    if isinstance(error, ConfigErrors):
        return list(error.errors)
    if len(error.problems) > 1:  # a loader's error carrying several problems
        return [ConfigError(*problem) for problem in error.problems]
    return [error]


class StoreError(EscalaError):
    """The store could not do what was asked (unreachable, corrupt ...)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached; callers answer 503 so providers retry."""


class LockTimeout(StoreError):
    """A conversation's lock could not be taken in time."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"timed out waiting for the lock of conversation {conversation_id}")
        self.conversation_id = conversation_id


class LockLost(StoreError):
    """A write was attempted with a lease that no longer holds the lock (fencing)."""

    def __init__(self, conversation_id: str, token: int) -> None:
        super().__init__(f"lock of conversation {conversation_id} lost (token {token})")
        self.conversation_id = conversation_id
        self.token = token


class DeliveryError(EscalaError):
    """A channel could not deliver an outbound message."""

    def __init__(self, channel: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.permanent = permanent


class DeliveryInterrupted(DeliveryError):
    """The sender stopped before the provider answered (shutdown): the reply was not
    sent and did not fail either; it stays in the durable outbox for the next process."""

    def __init__(self, channel: str, reason: str = "not sent before shutdown") -> None:
        super().__init__(channel, reason, permanent=False)
