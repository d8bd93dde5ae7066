"""The one mapping between domain objects and the rows of imageeditor/core/adapters/sql/tables.py.

Ids are UUID columns but strings in the domain; empty request and batch ids are NULL in the
database so that unique constraints and foreign keys bind only real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping

from imageeditor.core.callbacks import Attempt, Delivery, DeliveryState, EventType
from imageeditor.core.ports import ApiKey, Batch, RejectedItem, WebhookSecret
from imageeditor.core.sealing import Sealer
from imageeditor.core.snapshot import (
    error_from_dict,
    error_to_dict,
    result_from_dict,
    result_to_dict,
    spec_from_dict,
    spec_to_dict,
    task_to_dict,
    time_from_str,
    time_to_str,
    timings_from_list,
    timings_to_list,
)
from imageeditor.core.task import Stage, Task, TaskState

# What a transition may change; identity, ownership, spec and labels are fixed at creation.
TRANSITION_COLUMNS = (
    "state",
    "stage",
    "progress",
    "attempts",
    "version",
    "cancel_requested",
    "error",
    "result",
    "updated_at",
    "started_at",
    "finished_at",
    "processing_ms",
    "stage_timings",
    "reused_from",
)


def parse_uuid(text: str) -> uuid.UUID | None:
    """The UUID `text` spells, or None when it spells none (ids arrive from clients)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def task_to_row(task: Task, sealer: Sealer) -> dict[str, Any]:
    """The `tasks` row of `task` (its labels go in `label_rows`)."""
    return {
        "id": uuid.UUID(task.id),
        "user_id": task.user_id,
        "request_id": task.request_id or None,
        "batch_id": uuid.UUID(task.batch_id) if task.batch_id else None,
        "state": task.state.value,
        "stage": task.stage.value,
        "progress": task.progress,
        "attempts": task.attempts,
        "version": task.version,
        "cancel_requested": task.cancel_requested,
        "spec": spec_to_dict(task.spec, sealer),
        "error": error_to_dict(task.error),
        "result": result_to_dict(task.result),
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "processing_ms": task.processing_ms,
        "request_digest": task.request_digest or None,
        "admitted": task.admitted,
        "stage_timings": timings_to_list(task.stage_timings),
        "content_key": task.content_key or None,
        "reused_from": uuid.UUID(task.reused_from) if task.reused_from else None,
    }


def transition_values(task: Task, sealer: Sealer) -> dict[str, Any]:
    """The columns a transition to `task` updates."""
    row = task_to_row(task, sealer)
    return {name: row[name] for name in TRANSITION_COLUMNS}


def label_rows(task: Task) -> list[dict[str, Any]]:
    task_id = uuid.UUID(task.id)
    return [{"task_id": task_id, "key": k, "value": v} for k, v in task.labels.items()]


def event_row(task: Task, sealer: Sealer) -> dict[str, Any]:
    """The event-log entry recording `task` at its current version."""
    return {
        "task_id": uuid.UUID(task.id),
        "version": task.version,
        "snapshot": task_to_dict(task, sealer),
        "occurred_at": task.updated_at,
    }


def task_from_row(row: RowMapping, labels: Mapping[str, str], sealer: Sealer) -> Task:
    """The task stored in a `tasks` row, with its labels."""
    return Task(
        id=str(row["id"]),
        user_id=row["user_id"],
        spec=spec_from_dict(row["spec"], sealer),
        state=TaskState(row["state"]),
        stage=Stage(row["stage"]),
        progress=row["progress"],
        attempts=row["attempts"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        processing_ms=row["processing_ms"],
        error=error_from_dict(row["error"]),
        result=result_from_dict(row["result"]),
        batch_id=str(row["batch_id"]) if row["batch_id"] is not None else "",
        request_id=row["request_id"] or "",
        labels=dict(labels),
        cancel_requested=row["cancel_requested"],
        request_digest=row["request_digest"] or "",
        admitted=row["admitted"],
        stage_timings=timings_from_list(row["stage_timings"]),
        content_key=row["content_key"] or "",
        reused_from=str(row["reused_from"]) if row["reused_from"] is not None else "",
    )


def batch_to_row(batch: Batch, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": uuid.UUID(batch.id),
        "user_id": batch.user_id,
        "request_id": batch.request_id or None,
        # Deterministic: the randomized seal of a 1,500-character URL would not fit.
        "callback_url": sealer.seal_lookup(batch.callback_url),
        "task_ids": list(batch.task_ids),
        "created_at": batch.created_at,
        "unfinished": len(batch.task_ids),  # a new batch's tasks are all QUEUED
        "request_digest": batch.request_digest or None,
        "rejected": [
            {
                "position": item.position,
                "code": item.code,
                "reason": item.reason,
                "message": item.message,
                "field_violations": [list(pair) for pair in item.field_violations],
            }
            for item in batch.rejected
        ],
    }


def batch_from_row(row: RowMapping, sealer: Sealer) -> Batch:
    return Batch(
        id=str(row["id"]),
        user_id=row["user_id"],
        request_id=row["request_id"] or "",
        callback_url=sealer.open(row["callback_url"]),
        task_ids=tuple(row["task_ids"]),
        created_at=row["created_at"],
        request_digest=row["request_digest"] or "",
        rejected=tuple(
            RejectedItem(
                position=item["position"],
                code=item["code"],
                reason=item["reason"],
                message=item["message"],
                field_violations=tuple((name, text) for name, text in item["field_violations"]),
            )
            for item in row["rejected"] or ()
        ),
    )


def api_key_to_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": uuid.UUID(key.id),
        "name": key.name,
        "user_id": key.user_id,
        "key_hash": key.key_hash,
        "created_at": key.created_at,
    }


def api_key_from_row(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        name=row["name"],
        user_id=row["user_id"],
        key_hash=row["key_hash"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def delivery_to_row(delivery: Delivery, sealer: Sealer) -> dict[str, Any]:
    """The `callback_deliveries` row of a new, unclaimed delivery (its URL sealed for
    lookups: the senders find a target's rows by it)."""
    return {
        "id": uuid.UUID(delivery.id),
        "dedupe_key": delivery.key,
        "user_id": delivery.user_id,
        "url": sealer.seal_lookup(delivery.url),
        "event_type": delivery.event_type.value,
        "task_id": uuid.UUID(delivery.task_id) if delivery.task_id else None,
        "batch_id": uuid.UUID(delivery.batch_id) if delivery.batch_id else None,
        "created_at": delivery.created_at,
        "traceparent": delivery.traceparent,
        "claim_token": None,
        "lease_until": None,
        **delivery_progress_values(delivery),
    }


def delivery_progress_values(delivery: Delivery) -> dict[str, Any]:
    """The columns a sender's attempts change."""
    return {
        "state": delivery.state.value,
        "attempts": [_attempt_to_dict(attempt) for attempt in delivery.attempts],
        "next_attempt_at": delivery.next_attempt_at,
        "delivered_at": delivery.delivered_at,
        "failure_reason": delivery.failure_reason,
    }


def delivery_from_row(row: RowMapping, sealer: Sealer) -> Delivery:
    return Delivery(
        id=str(row["id"]),
        user_id=row["user_id"],
        url=sealer.open(row["url"]),
        event_type=EventType(row["event_type"]),
        created_at=row["created_at"],
        task_id=str(row["task_id"]) if row["task_id"] is not None else "",
        batch_id=str(row["batch_id"]) if row["batch_id"] is not None else "",
        state=DeliveryState(row["state"]),
        next_attempt_at=row["next_attempt_at"],
        attempts=tuple(_attempt_from_dict(data) for data in row["attempts"]),
        delivered_at=row["delivered_at"],
        failure_reason=row["failure_reason"],
        traceparent=row["traceparent"],
    )


def _attempt_to_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "at": time_to_str(attempt.at),
        "http_status": attempt.http_status,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def _attempt_from_dict(data: dict[str, Any]) -> Attempt:
    return Attempt(
        at=time_from_str(data["at"]),
        http_status=int(data["http_status"]),
        error=data["error"],
        duration_ms=int(data["duration_ms"]),
    )


def webhook_secret_to_row(secret: WebhookSecret, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": uuid.UUID(secret.id),
        "user_id": secret.user_id,
        "secret": sealer.seal(secret.secret),
        "created_at": secret.created_at,
        "expires_at": secret.expires_at,
    }


def webhook_secret_from_row(row: RowMapping, sealer: Sealer) -> WebhookSecret:
    return WebhookSecret(
        id=str(row["id"]),
        user_id=row["user_id"],
        secret=sealer.open(row["secret"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )
