"""JSON for content versions and drafts (the Redis store keeps them as strings)."""

from __future__ import annotations

import json
from typing import Any

from bot.store.base import ContentDraft, ContentVersion
from bot.store.codec import format_datetime, parse_datetime


def meta_to_json(version: ContentVersion, number: int) -> str:
    return json.dumps(
        {
            "number": number,
            "author": version.author,
            "at": format_datetime(version.at),
            "message": version.message,
            "changes": list(version.changes),
            "restored_from": version.restored_from,
        },
        ensure_ascii=False,
    )


def files_to_json(files: Any) -> str:
    return json.dumps(dict(files), ensure_ascii=False, sort_keys=True)


def version_from_json(meta: str, files: str | None) -> ContentVersion:
    d = json.loads(meta)
    restored = d.get("restored_from")
    return ContentVersion(
        number=int(d["number"]),
        author=str(d["author"]),
        at=parse_datetime(d["at"]),
        message=str(d["message"]),
        changes=tuple(str(c) for c in d.get("changes", ())),
        files={str(k): str(v) for k, v in json.loads(files).items()} if files else {},
        restored_from=int(restored) if restored is not None else None,
    )


def draft_to_json(draft: ContentDraft) -> str:
    return json.dumps(
        {
            "owner": draft.owner,
            "base": draft.base,
            "files": dict(draft.files),
            "updated_at": format_datetime(draft.updated_at),
        },
        ensure_ascii=False,
    )


def draft_from_json(raw: str) -> ContentDraft:
    d = json.loads(raw)
    return ContentDraft(
        owner=str(d["owner"]),
        base=int(d["base"]),
        files={str(k): str(v) for k, v in d["files"].items()},
        updated_at=parse_datetime(d["updated_at"]),
    )
