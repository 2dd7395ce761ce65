"""Guided conversations: admin-edited flow files, their loader and the runner.

``flows`` knows nothing of channels, storage or the network; the engine in ``bot/``
implements :class:`FlowHost` and stores the :class:`FlowPosition` between messages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.errors import FlowError
    from flows.loader import FlowSet, default_flows_path, load_flows
    from flows.position import FlowPosition
    from flows.runner import FlowHost, FlowReply, FlowRunner, Option

#: Where each public name lives. Imported on first use (PEP 562): the core imports
#: ``flows.position`` for every message model, and a command that never runs a flow
#: (``escala kb ask``) should not load the flow parser and runner (issue 18, part 5).
_HOMES = {
    "FlowError": "flows.errors",
    "FlowHost": "flows.runner",
    "FlowPosition": "flows.position",
    "FlowReply": "flows.runner",
    "FlowRunner": "flows.runner",
    "FlowSet": "flows.loader",
    "Option": "flows.runner",
    "default_flows_path": "flows.loader",
    "load_flows": "flows.loader",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'flows' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "FlowError",
    "FlowHost",
    "FlowPosition",
    "FlowReply",
    "FlowRunner",
    "FlowSet",
    "Option",
    "default_flows_path",
    "load_flows",
]
