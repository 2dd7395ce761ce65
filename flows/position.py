"""Where a conversation stands in a flow between two customer messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class FlowPosition:
    """A paused flow: the step waiting for the customer's reply and the flow's variables."""

    flow_id: str
    step_id: str
    vars: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    retries: int = 0
