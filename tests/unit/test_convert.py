from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from google.rpc import code_pb2, error_details_pb2

from imageeditor.core.api.convert import (
    result_to_proto,
    spec_from_proto,
    spec_to_proto,
    task_to_proto,
)
from imageeditor.core.spec import (
    Adjust,
    Blur,
    Crop,
    Flip,
    Flop,
    Gravity,
    Grayscale,
    ImageFormat,
    OutputOptions,
    RemoveBackground,
    Resize,
    ResizeFit,
    Rotate,
    Sharpen,
    TaskSpec,
)
from imageeditor.core.task import ResultInfo, Stage, Task, TaskError, TaskState
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2, task_pb2

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SPEC = TaskSpec(
    image_url="https://example.com/a.jpg",
    operations=(
        Resize(64, 32, ResizeFit.FILL, True),
        Grayscale(),
        Crop(10, 20, 3, 4),
        Crop(10, 20, gravity=Gravity.SOUTH_WEST),
        Rotate(12.5, True, (1, 2, 3, 4)),
        Rotate(-90.0),
        Flip(),
        Flop(),
        Blur(1.5),
        Sharpen(3.0, 200, 0),
        Adjust(0.25, 1.0, 2.0),
        RemoveBackground(),
        RemoveBackground("u2net", True, (255, 255, 255, 255)),
    ),
    style_prompt="sepia",
    output=OutputOptions(ImageFormat.WEBP, 80, effort=6, keep_metadata=True),
    callback_url="https://hooks.example.com/x",
)


def test_a_spec_survives_the_trip_through_the_proto() -> None:
    message = spec_to_proto(SPEC)
    request = pb.SubmitTaskRequest(
        image_url=message.image_url,
        operations=message.operations,
        style_prompt=message.style_prompt,
        output=message.output,
        callback_url=message.callback_url,
    )
    assert spec_from_proto(request) == SPEC
    kinds = [op.WhichOneof("kind") for op in message.operations]
    assert kinds == [op.kind for op in SPEC.operations]
    assert message.operations[3].crop.size.gravity == operations_pb2.GRAVITY_SOUTH_WEST
    assert message.operations[4].rotate.fill.alpha == 4
    assert not message.operations[5].rotate.HasField("fill")
    assert not message.operations[11].remove_background.HasField("background")
    assert (message.output.effort, message.output.keep_metadata) == (6, True)


def test_a_finished_task_carries_times_result_and_labels() -> None:
    task = Task(
        id="t",
        user_id="u",
        spec=SPEC,
        state=TaskState.SUCCEEDED,
        stage=Stage.STORE,
        progress=1.0,
        attempts=1,
        version=9,
        created_at=START,
        updated_at=START + timedelta(seconds=2),
        started_at=START + timedelta(seconds=1),
        finished_at=START + timedelta(seconds=2),
        processing_ms=1000,
        result=ResultInfo(64, 32, ImageFormat.JPEG, 1234, "ab" * 32, "file:///r.jpg", "r.jpg"),
        labels={"team": "ads"},
    )
    message = task_to_proto(task)
    assert message.state == task_pb2.TASK_STATE_SUCCEEDED
    assert message.stage == task_pb2.STAGE_STORE
    assert message.version == 9 and message.attempts == 1
    assert message.create_time.ToDatetime(tzinfo=UTC) == START
    assert message.processing_time.ToMilliseconds() == 1000
    assert message.result.format == operations_pb2.IMAGE_FORMAT_JPEG
    assert (message.result.width, message.result.size_bytes) == (64, 1234)
    assert dict(message.labels) == {"team": "ads"}
    assert not message.HasField("error")


def test_a_failed_task_reports_a_status_with_its_reason() -> None:
    task = Task(
        id="t",
        user_id="u",
        spec=SPEC,
        state=TaskState.FAILED,
        error=TaskError("INVALID_ARGUMENT", "IMAGE_CORRUPT", "truncated JPEG"),
    )
    message = task_to_proto(task)
    assert message.error.code == code_pb2.INVALID_ARGUMENT
    assert message.error.message == "truncated JPEG"
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in message.error.details)
    assert info.reason == "IMAGE_CORRUPT"
    assert not message.HasField("start_time") and not message.HasField("result")


def test_a_result_on_the_servers_disk_shows_no_path() -> None:
    local = ResultInfo(8, 8, ImageFormat.PNG, 10, "ab" * 32, "file:///srv/var/blobs/r.png", "r")
    assert result_to_proto(local).uri == ""
    stored = ResultInfo(8, 8, ImageFormat.PNG, 10, "ab" * 32, "s3://bucket/results/r.png", "r")
    assert result_to_proto(stored).uri == "s3://bucket/results/r.png"


def test_stage_timings_go_out_in_order_the_open_one_without_a_duration() -> None:
    from imageeditor.core.task import StageTiming

    timings = (
        StageTiming(Stage.FETCH, START, 12),
        StageTiming(Stage.EDIT, START + timedelta(milliseconds=12)),
    )
    task = Task(id="t", user_id="u", spec=TaskSpec(image_url="https://e.com/a.png"))
    message = task_to_proto(replace(task, stage_timings=timings))
    fetch, edit = message.stage_timings
    assert (fetch.stage, fetch.duration.ToMilliseconds()) == (task_pb2.STAGE_FETCH, 12)
    assert fetch.start_time.ToDatetime(tzinfo=UTC) == START
    assert edit.stage == task_pb2.STAGE_EDIT and not edit.HasField("duration")
