"""Opaque page tokens for ListTasks (AIP-158): the cursor plus a fingerprint of the filters,
so a token cannot be replayed against a different query."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.ports import PageCursor, TaskQuery


def _fingerprint(query: TaskQuery) -> str:
    parts = [
        sorted(query.states),
        query.batch_id,
        sorted(query.labels.items()),
        query.created_after.isoformat() if query.created_after else "",
        query.created_before.isoformat() if query.created_before else "",
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def encode_page_token(cursor: PageCursor, query: TaskQuery) -> str:
    raw = json.dumps(
        {"c": cursor.created_at.isoformat(), "i": cursor.task_id, "f": _fingerprint(query)}
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, query: TaskQuery) -> PageCursor | None:
    """The cursor a token stands for; None for the first page."""
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = PageCursor(datetime.fromisoformat(raw["c"]), str(raw["i"]))
        fingerprint = raw["f"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "page_token is not a token this service issued",
            field_violations={"page_token": "malformed page token"},
            reason="PAGE_TOKEN_INVALID",
        ) from None
    if fingerprint != _fingerprint(query):
        raise InvalidArgument(
            "page_token belongs to a different query",
            field_violations={"page_token": "the filters changed since this token was issued"},
            reason="PAGE_TOKEN_INVALID",
        )
    return cursor
