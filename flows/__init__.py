"""Guided conversations: admin-edited flow files, their loader and the runner.

``flows`` knows nothing of channels, storage or the network; the engine in ``bot/``
implements :class:`FlowHost` and stores the :class:`FlowPosition` between messages.
"""

from flows.errors import FlowError
from flows.loader import FlowSet, default_flows_path, load_flows
from flows.position import FlowPosition
from flows.runner import FlowHost, FlowReply, FlowRunner, Option

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
