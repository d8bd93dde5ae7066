"""Translation between protobuf messages and the domain model, in both directions.

The server uses both directions; the callback sender renders tasks and deliveries with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from imageeditor.core.api.convert_operations import (
    FORMATS_TO_PROTO,
    operation_from_proto,
    operation_to_proto,
    output_from_proto,
    output_to_proto,
)
from imageeditor.core.api.rpc_errors import to_status
from imageeditor.core.callbacks import Delivery, DeliveryState, batch_key, task_key
from imageeditor.core.errors import ERRORS_BY_CODE, ImageEditorError, InvalidArgument
from imageeditor.core.ports import BatchUpdate
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import ResultInfo, Stage, Task, TaskError, TaskState
from imageeditor.v1 import image_editor_service_pb2 as service_pb2
from imageeditor.v1 import task_pb2

STATES_TO_PROTO = {
    TaskState.QUEUED: task_pb2.TASK_STATE_QUEUED,
    TaskState.RUNNING: task_pb2.TASK_STATE_RUNNING,
    TaskState.SUCCEEDED: task_pb2.TASK_STATE_SUCCEEDED,
    TaskState.FAILED: task_pb2.TASK_STATE_FAILED,
    TaskState.CANCELLED: task_pb2.TASK_STATE_CANCELLED,
}
STATES = {value: state for state, value in STATES_TO_PROTO.items()}
STAGES_TO_PROTO = {
    Stage.NONE: task_pb2.STAGE_UNSPECIFIED,
    Stage.FETCH: task_pb2.STAGE_FETCH,
    Stage.VALIDATE: task_pb2.STAGE_VALIDATE,
    Stage.EDIT: task_pb2.STAGE_EDIT,
    Stage.STYLE: task_pb2.STAGE_STYLE,
    Stage.ENCODE: task_pb2.STAGE_ENCODE,
    Stage.STORE: task_pb2.STAGE_STORE,
    Stage.REMOVE_BACKGROUND: task_pb2.STAGE_REMOVE_BACKGROUND,
}


# -- proto -> domain ----------------------------------------------------------------------------


def spec_from_proto(request: service_pb2.SubmitTaskRequest) -> TaskSpec:
    return TaskSpec(
        image_url=request.image_url,
        operations=tuple(operation_from_proto(op) for op in request.operations),
        style_prompt=request.style_prompt.strip(),
        output=output_from_proto(request.output),
        callback_url=request.callback_url,
    )


# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799


def datetime_from_proto(ts: timestamp_pb2.Timestamp, field: str = "time") -> datetime:
    """The moment `ts` stands for; InvalidArgument (a violation on `field`) outside the range
    a Timestamp may hold, or with nanos outside 0-999,999,999."""
    if not (
        MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS
        and 0 <= ts.nanos <= 999_999_999
    ):
        problem = "must lie between 0001-01-01 and 9999-12-31, with nanos from 0 to 999999999"
        raise InvalidArgument(
            f"{field} is not a valid timestamp", field_violations={field: problem}
        )
    return ts.ToDatetime(tzinfo=UTC)


# -- domain -> proto ----------------------------------------------------------------------------


def error_to_status(error: TaskError | ImageEditorError) -> status_pb2.Status:
    if isinstance(error, TaskError):
        cls = ERRORS_BY_CODE.get(error.code, ImageEditorError)
        error = cls(error.message, reason=error.reason)
    return to_status(error)


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def spec_to_proto(spec: TaskSpec) -> task_pb2.TaskSpec:
    return task_pb2.TaskSpec(
        image_url=spec.image_url,
        image_size_bytes=spec.input_size,
        operations=[operation_to_proto(op) for op in spec.operations],
        style_prompt=spec.style_prompt,
        output=output_to_proto(spec.output),
        callback_url=spec.callback_url,
    )


def result_to_proto(result: ResultInfo, download_url: str = "") -> task_pb2.ResultInfo:
    return task_pb2.ResultInfo(
        width=result.width,
        height=result.height,
        format=FORMATS_TO_PROTO[result.format],
        size_bytes=result.size_bytes,
        sha256=result.sha256,
        uri=public_uri(result.uri),
        download_url=download_url,
    )


def public_uri(uri: str) -> str:
    """What a caller may see of where a result is stored: an object store's URI, but never
    a path on the server's disk (GetResult streams those)."""
    return "" if uri.startswith("file:") else uri


def task_to_proto(
    task: Task, download_url: str = "", callbacks: Mapping[str, Delivery] | None = None
) -> task_pb2.Task:
    """`download_url` goes into the result of a succeeded task (see ResultLinks); `callbacks`
    are deliveries by outbox key (TaskService.callbacks_of): the task's and its batch's go in."""
    message = task_pb2.Task(
        id=task.id,
        state=STATES_TO_PROTO[task.state],
        stage=STAGES_TO_PROTO[task.stage],
        progress=task.progress,
        attempts=task.attempts,
        version=task.version,
        create_time=_timestamp(task.created_at),
        update_time=_timestamp(task.updated_at),
        batch_id=task.batch_id,
        request_id=task.request_id,
        labels=task.labels,
        spec=spec_to_proto(task.spec),
        cancel_requested=task.cancel_requested,
        reused_from=task.reused_from,
    )
    if task.started_at is not None:
        message.start_time.CopyFrom(_timestamp(task.started_at))
    if task.finished_at is not None:
        message.finish_time.CopyFrom(_timestamp(task.finished_at))
    if task.processing_ms is not None:
        message.processing_time.FromMilliseconds(task.processing_ms)
    for timing in task.stage_timings:
        shown = message.stage_timings.add(
            stage=STAGES_TO_PROTO[timing.stage], start_time=_timestamp(timing.started_at)
        )
        if timing.duration_ms is not None:
            shown.duration.FromMilliseconds(timing.duration_ms)
    if task.error is not None:
        message.error.CopyFrom(error_to_status(task.error))
    if task.result is not None:
        message.result.CopyFrom(result_to_proto(task.result, download_url))
    found = callbacks or {}
    if (own := found.get(task_key(task.id))) is not None:
        message.callback.CopyFrom(delivery_to_proto(own))
    if task.batch_id and (batch := found.get(batch_key(task.batch_id))) is not None:
        message.batch_callback.CopyFrom(delivery_to_proto(batch))
    return message


def batch_update_to_proto(
    update: BatchUpdate, task: task_pb2.Task | None
) -> service_pb2.WatchBatchResponse:
    """A WatchBatch message; `task` is update.task as task_to_proto made it."""
    progress, counts = update.progress, update.progress.counts
    message = service_pb2.WatchBatchResponse(
        index=update.index,
        resume_token=update.resume_token,
        progress=service_pb2.BatchProgress(
            total=progress.total,
            refused=progress.refused,
            queued=counts.get(TaskState.QUEUED, 0),
            running=counts.get(TaskState.RUNNING, 0),
            succeeded=counts.get(TaskState.SUCCEEDED, 0),
            failed=counts.get(TaskState.FAILED, 0),
            cancelled=counts.get(TaskState.CANCELLED, 0),
            fraction_done=progress.fraction_done,
            complete=progress.complete,
        ),
    )
    if task is not None:
        message.task.CopyFrom(task)
    return message


CALLBACK_STATES_TO_PROTO = {
    DeliveryState.PENDING: task_pb2.CALLBACK_STATE_PENDING,
    DeliveryState.DELIVERED: task_pb2.CALLBACK_STATE_DELIVERED,
    DeliveryState.FAILED: task_pb2.CALLBACK_STATE_FAILED,
}


def delivery_to_proto(delivery: Delivery) -> task_pb2.CallbackDelivery:
    message = task_pb2.CallbackDelivery(
        event_id=delivery.id,
        event_type=delivery.event_type.value,
        url=delivery.url,
        state=CALLBACK_STATES_TO_PROTO[delivery.state],
        failure_reason=delivery.failure_reason,
    )
    for attempt in delivery.attempts:
        item = message.attempts.add(http_status=attempt.http_status, error=attempt.error)
        item.attempt_time.CopyFrom(_timestamp(attempt.at))
        item.duration.FromMilliseconds(attempt.duration_ms)
    if delivery.next_attempt_at is not None:
        message.next_attempt_time.CopyFrom(_timestamp(delivery.next_attempt_at))
    if delivery.delivered_at is not None:
        message.delivered_time.CopyFrom(_timestamp(delivery.delivered_at))
    return message
