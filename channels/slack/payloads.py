"""The minimum shape a Slack payload must have before Bolt sees it.

Bolt indexes payloads without checking them (``body["actions"][0]``,
``body["view"]["type"]``), so a broken one would be a 500 from deep inside it. A
request that passed the signature check but lacks what Bolt reads is refused with a
400 here instead. Which listener handles what, and with which values, is still
Bolt's and our matchers' job (an unknown action is Bolt's 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _is_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def malformed(body: object) -> str | None:
    """Why ``body`` cannot be a Slack payload, or ``None`` when it can."""
    if not isinstance(body, Mapping):
        return "not an object"
    if not body:
        return None  # nothing to dispatch: Bolt answers 404
    kind = body.get("type")
    if "command" in body:
        return None if _is_str(body.get("command")) else "command is not a string"
    if kind is not None and not isinstance(kind, str):
        return "type is not a string"
    for key in ("user", "team", "channel", "container", "enterprise"):
        if key in body and body[key] is not None and not isinstance(body[key], Mapping):
            return f"{key} is not an object"
    if "authorizations" in body and not isinstance(body["authorizations"], list):
        return "authorizations is not a list"
    if kind == "block_actions":
        return _actions(body.get("actions"))
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, Mapping) or not _is_str(view.get("type")):
            return "view has no type"
        if not _is_str(view.get("callback_id")):
            return "view has no callback_id"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, Mapping) or not _is_str(event.get("type")):
            return "event has no type"
    return None


def _actions(actions: Any) -> str | None:
    if not isinstance(actions, list) or not actions:
        return "no actions"
    for action in actions:
        if not isinstance(action, Mapping) or not _is_str(action.get("action_id")):
            return "an action has no action_id"
    return None
