"""A task as plain JSON data: the event log's snapshots, the status cache's entries and the
broker's messages.

`task_from_dict(task_to_dict(task, sealer), sealer) == task` for every task; the store's row
mapping reuses the spec, error and result halves so each shape is written down once. What a
task reveals (its image and callback URLs, its style prompt) is sealed (imageeditor.core.sealing):
these dicts are what is kept at rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.spec import ImageFormat, TaskSpec
from imageeditor.core.task import ResultInfo, Stage, StageTiming, Task, TaskError, TaskState

# The spec's fields that say more about the caller than about the image work.
SEALED_SPEC_FIELDS = ("image_url", "style_prompt", "callback_url")


def spec_to_dict(spec: TaskSpec, sealer: Sealer = NO_SEALING) -> dict[str, Any]:
    """The spec as JSON-ready data, its revealing fields sealed."""
    data = spec.to_dict()
    for name in SEALED_SPEC_FIELDS:
        data[name] = sealer.seal(data[name])
    return data


def spec_from_dict(data: dict[str, Any], sealer: Sealer = NO_SEALING) -> TaskSpec:
    """The inverse of `spec_to_dict`."""
    opened = {**data, **{name: sealer.open(data.get(name, "")) for name in SEALED_SPEC_FIELDS}}
    return TaskSpec.from_dict(opened)


def task_to_dict(task: Task, sealer: Sealer = NO_SEALING) -> dict[str, Any]:
    """The task as JSON-ready data (timestamps as ISO 8601 strings in UTC)."""
    return {
        "id": task.id,
        "user_id": task.user_id,
        "spec": spec_to_dict(task.spec, sealer),
        "state": task.state.value,
        "stage": task.stage.value,
        "progress": task.progress,
        "attempts": task.attempts,
        "version": task.version,
        "created_at": time_to_str(task.created_at),
        "updated_at": time_to_str(task.updated_at),
        "started_at": time_to_str(task.started_at),
        "finished_at": time_to_str(task.finished_at),
        "processing_ms": task.processing_ms,
        "error": error_to_dict(task.error),
        "result": result_to_dict(task.result),
        "batch_id": task.batch_id,
        "request_id": task.request_id,
        "labels": dict(task.labels),
        "cancel_requested": task.cancel_requested,
        "request_digest": task.request_digest,
        "admitted": task.admitted,
        "stage_timings": timings_to_list(task.stage_timings),
        "content_key": task.content_key,
        "reused_from": task.reused_from,
    }


def task_from_dict(data: dict[str, Any], sealer: Sealer = NO_SEALING) -> Task:
    """The inverse of `task_to_dict`."""
    return Task(
        id=data["id"],
        user_id=data["user_id"],
        spec=spec_from_dict(data["spec"], sealer),
        state=TaskState(data["state"]),
        stage=Stage(data["stage"]),
        progress=float(data["progress"]),
        attempts=int(data["attempts"]),
        version=int(data["version"]),
        created_at=time_from_str(data["created_at"]),
        updated_at=time_from_str(data["updated_at"]),
        started_at=_optional_time_from_str(data["started_at"]),
        finished_at=_optional_time_from_str(data["finished_at"]),
        processing_ms=data["processing_ms"],
        error=error_from_dict(data["error"]),
        result=result_from_dict(data["result"]),
        batch_id=data["batch_id"],
        request_id=data["request_id"],
        labels=dict(data["labels"]),
        cancel_requested=bool(data["cancel_requested"]),
        request_digest=data.get("request_digest", ""),  # absent from older snapshots
        admitted=data.get("admitted", True),
        stage_timings=timings_from_list(data.get("stage_timings")),
        content_key=data.get("content_key", ""),
        reused_from=data.get("reused_from", ""),
    )


def timings_to_list(timings: tuple[StageTiming, ...]) -> list[dict[str, Any]] | None:
    """The stage timings as JSON-ready data; None when there are none."""
    if not timings:
        return None
    return [
        {"stage": t.stage.value, "started_at": time_to_str(t.started_at), "ms": t.duration_ms}
        for t in timings
    ]


def timings_from_list(data: list[dict[str, Any]] | None) -> tuple[StageTiming, ...]:
    """The inverse of `timings_to_list`."""
    return tuple(
        StageTiming(Stage(item["stage"]), time_from_str(item["started_at"]), item["ms"])
        for item in data or ()
    )


def error_to_dict(error: TaskError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "reason": error.reason, "message": error.message}


def error_from_dict(data: dict[str, Any] | None) -> TaskError | None:
    if data is None:
        return None
    return TaskError(code=data["code"], reason=data["reason"], message=data["message"])


def result_to_dict(result: ResultInfo | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "width": result.width,
        "height": result.height,
        "format": result.format.value,
        "size_bytes": result.size_bytes,
        "sha256": result.sha256,
        "uri": result.uri,
        "key": result.key,
    }


def result_from_dict(data: dict[str, Any] | None) -> ResultInfo | None:
    if data is None:
        return None
    return ResultInfo(
        width=int(data["width"]),
        height=int(data["height"]),
        format=ImageFormat(data["format"]),
        size_bytes=int(data["size_bytes"]),
        sha256=data["sha256"],
        uri=data["uri"],
        key=data["key"],
    )


def time_to_str(moment: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC (the store's JSON columns keep times this way)."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def time_from_str(text: str) -> datetime:
    """The inverse of `time_to_str`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def _optional_time_from_str(text: str | None) -> datetime | None:
    return None if text is None else time_from_str(text)
