"""The configured tiers, looked up by name and level."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bot import i18n
from bot.models import Tier


class TierMap:
    """The tiers a desk has, in level order (N1, N2, N3 ...)."""

    def __init__(self, tiers: Sequence[Tier]) -> None:
        self.by_name = {tier.name: tier for tier in tiers}
        self.ordered = tuple(sorted(tiers, key=lambda t: t.level))

    def __iter__(self) -> Iterator[Tier]:
        return iter(self.ordered)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def names(self) -> tuple[str, ...]:
        return tuple(tier.name for tier in self.ordered)

    def get(self, name: str) -> Tier | None:
        return self.by_name.get(name)

    def tier(self, name: str) -> Tier:
        """The tier a ticket is in; a tier removed from config still has a name to show."""
        return self.by_name.get(name) or Tier(name=name, level=99, first_response_minutes=0)

    def next_tier(self, name: str) -> Tier | None:
        current = self.tier(name)
        return next((t for t in self.ordered if t.level > current.level), None)

    def promise(self, name: str, locale: str) -> str:
        """The tier's first-response promise as the customer reads it ("15 minutos")."""
        return i18n.duration(self.tier(name).first_response_minutes, locale)
