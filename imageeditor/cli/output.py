"""What the CLI prints: a task as one readable line or as protobuf JSON, and errors as one
line for stderr.

--json output is the protobuf JSON mapping, one object per line, so it pipes into `jq`
and reads back with `json_format.Parse`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from imageeditor.core.api.rpc_errors import from_status
from imageeditor.core.errors import (
    ImageEditorError,
    InvalidArgument,
    RetryableError,
    Unauthenticated,
    Unavailable,
)
from imageeditor.sdk.errors import SERVER_UNREACHABLE
from imageeditor.v1 import operations_pb2, task_pb2


def print_message(message: Message, *, as_json: bool, file: TextIO | None = None) -> None:
    """Print a Task as a readable line, or any message as one line of protobuf JSON."""
    if isinstance(message, task_pb2.Task) and not as_json:
        line = format_task(message)
    else:
        line = json_format.MessageToJson(message, indent=None)
    print(line, file=file or sys.stdout, flush=True)


def format_task(task: task_pb2.Task) -> str:
    """`<id>  RUNNING  edit 40%`, `<id>  SUCCEEDED  640x480 webp 12.3 KiB`, ..."""
    parts = [task.id, state_name(task.state)]
    if task.state == task_pb2.TASK_STATE_RUNNING:
        parts.append(f"{stage_name(task.stage)} {task.progress:.0%}".lstrip())
    if task.HasField("result"):
        parts.append(format_result(task.result))
    if task.HasField("error"):
        parts.append(f"{code_name(task.error.code)}: {task.error.message}")
    if task.cancel_requested and task.state == task_pb2.TASK_STATE_RUNNING:
        parts.append("(cancel requested)")
    for label, field in (("callback", "callback"), ("batch callback", "batch_callback")):
        if task.HasField(field):
            parts.append(f"{label} {format_callback(getattr(task, field))}")
    return "  ".join(parts)


def format_timings(task: task_pb2.Task) -> str:
    """`stages: fetch 12 ms · validate 3 ms · edit 40 ms …` ("edit …" for the one running);
    "" before the first stage."""
    parts = []
    for timing in task.stage_timings:
        took = f"{timing.duration.ToMilliseconds()} ms" if timing.HasField("duration") else "…"
        parts.append(f"{stage_name(timing.stage)} {took}")
    return f"stages: {' · '.join(parts)}" if parts else ""


def format_callback(delivery: task_pb2.CallbackDelivery) -> str:
    """`DELIVERED`, `PENDING after 2 attempts (HTTP 503)`, `FAILED ENDPOINT_GONE`."""
    text = task_pb2.CallbackState.Name(delivery.state).removeprefix("CALLBACK_STATE_")
    if delivery.state == task_pb2.CALLBACK_STATE_FAILED:
        return f"{text} {delivery.failure_reason}"
    if delivery.state == task_pb2.CALLBACK_STATE_PENDING and delivery.attempts:
        last = delivery.attempts[-1]
        why = f"HTTP {last.http_status}" if last.http_status else last.error
        count = len(delivery.attempts)
        return f"{text} after {count} attempt{'s' if count > 1 else ''} ({why})"
    return text


def format_result(info: task_pb2.ResultInfo) -> str:
    """`640x480 webp 12.3 KiB`."""
    return f"{info.width}x{info.height} {format_name(info.format)} {format_bytes(info.size_bytes)}"


def describe_progress(task: task_pb2.Task) -> str:
    """The text beside a progress bar: `<id> RUNNING edit`."""
    text = f"{task.id} {state_name(task.state)}"
    if task.state == task_pb2.TASK_STATE_RUNNING and task.stage:
        text += f" {stage_name(task.stage)}"
    return text


def format_error(error: ImageEditorError, address: str, key_hint: str = "") -> str:
    """One line for stderr that says what went wrong and, where it helps, what to do.
    `key_hint` says where the CLI looked for an API key (for UNAUTHENTICATED)."""
    if isinstance(error, Unavailable) and error.reason == SERVER_UNREACHABLE:
        return f"error: UNAVAILABLE: the server at {address} is not reachable ({error.message})"
    line = f"error: {error.code}: {error.message}"
    if isinstance(error, InvalidArgument) and error.field_violations:
        details = new_details(error.message, error.field_violations)
        if details:
            line += f" ({details})"
    elif isinstance(error, RetryableError) and not isinstance(error, Unavailable):
        line += f" (retry after {error.retry_after:g}s)"
    elif isinstance(error, Unauthenticated):
        line += f" ({key_hint or 'set IMAGEEDITOR_API_KEY'}; an operator makes a key with"
        line += " `imageeditor keys create NAME`)"
    return line


def format_refusal(status: status_pb2.Status) -> str:
    """A refused batch item: `error: INVALID_ARGUMENT: … [INVALID_URL]` (its reason last)."""
    error = from_status(status)
    line = format_error(error, "").removeprefix("error: ")
    return f"error: {line} [{error.reason}]"


def new_details(message: str, violations: Mapping[str, str]) -> str:
    """The field violations a message does not already say: a description it contains is
    left out, and a field it names is not named again."""
    parts = []
    for field, text in violations.items():
        if text in message:
            continue
        parts.append(text if field in message else f"{field}: {text}")
    return "; ".join(parts)


def error_json(error: ImageEditorError) -> str:
    """The error as one JSON object (for --json): code, message, reason, metadata, field
    violations and, for a retryable error, retry_after in seconds."""
    fields: dict[str, object] = {
        "code": error.code,
        "message": error.message,
        "reason": error.reason,
        "metadata": dict(error.metadata),
        "field_violations": [
            {"field": field, "description": text}
            for field, text in getattr(error, "field_violations", {}).items()
        ],
    }
    if isinstance(error, RetryableError):
        fields["retry_after"] = error.retry_after
    return json.dumps({"error": fields})


def state_name(state: int) -> str:
    """TASK_STATE_RUNNING -> `RUNNING`."""
    return task_pb2.TaskState.Name(state).removeprefix("TASK_STATE_")


def stage_name(stage: int) -> str:
    """STAGE_EDIT -> `edit`; empty before the first stage."""
    return "" if not stage else task_pb2.Stage.Name(stage).removeprefix("STAGE_").lower()


def format_name(image_format: int) -> str:
    """IMAGE_FORMAT_WEBP -> `webp`."""
    return operations_pb2.ImageFormat.Name(image_format).removeprefix("IMAGE_FORMAT_").lower()


def code_name(code: int) -> str:
    """3 -> `INVALID_ARGUMENT` (the number itself for a code gRPC does not define)."""
    if code not in code_pb2.Code.values():
        return str(code)
    return str(code_pb2.Code.Name(code_pb2.Code.ValueType(code)))


def format_bytes(size: int) -> str:
    """`812 B`, `12.3 KiB`, `4.0 MiB`."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
