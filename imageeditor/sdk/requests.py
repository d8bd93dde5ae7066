"""Protobuf requests from friendly Python arguments, shared by both clients and the CLI.

The edit steps of a submit are built by imageeditor.sdk.operations (re-exported here).

Argument mistakes a client can see on its own (a bad format name, a non-URL string) raise
the same `InvalidArgument` the server would, with the same field paths, before any call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypedDict, Unpack, cast

from imageeditor.core.errors import InvalidArgument
from imageeditor.sdk.operations import resize_operation
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2, task_pb2

ImageSource = bytes | str | Path

FORMATS = {
    "png": operations_pb2.IMAGE_FORMAT_PNG,
    "webp": operations_pb2.IMAGE_FORMAT_WEBP,
    "jpeg": operations_pb2.IMAGE_FORMAT_JPEG,
    "jpg": operations_pb2.IMAGE_FORMAT_JPEG,
    "avif": operations_pb2.IMAGE_FORMAT_AVIF,
}
STATES = {
    "queued": task_pb2.TASK_STATE_QUEUED,
    "running": task_pb2.TASK_STATE_RUNNING,
    "succeeded": task_pb2.TASK_STATE_SUCCEEDED,
    "failed": task_pb2.TASK_STATE_FAILED,
    "cancelled": task_pb2.TASK_STATE_CANCELLED,
}


def task_state(name: str | int) -> task_pb2.TaskState:
    """A TaskState from "running", "TASK_STATE_RUNNING" or the enum number itself."""
    if isinstance(name, int):
        if name not in task_pb2.TaskState.values():
            raise _invalid("states", f"{name} is not a TaskState number")
        return cast(task_pb2.TaskState, name)
    key = name.lower().removeprefix("task_state_")
    if key not in STATES:
        raise _invalid("states", f"{name!r} is not one of {', '.join(STATES)}")
    return STATES[key]


def build_submit_request(
    image: ImageSource,
    *,
    operations: Iterable[operations_pb2.Operation] = (),
    resize: tuple[int, int] | None = None,
    format: str | None = None,
    quality: int = 0,
    effort: int = 0,
    keep_metadata: bool = False,
    style_prompt: str = "",
    callback_url: str = "",
    request_id: str = "",
    labels: Mapping[str, str] | None = None,
) -> pb.SubmitTaskRequest:
    """A SubmitTaskRequest. `image` is the encoded bytes, an http(s) URL, or a Path that is
    read and sent inline. `resize` is a shorthand for a leading Resize step (inside fit):
    shrinking first makes every later step cheaper. `effort` is the PNG zlib level (1-9), the
    WEBP method (1-6) or the AVIF effort (1-10), 0 for the server's fast default;
    `keep_metadata` keeps the source's EXIF and ICC profile in the result."""
    request = pb.SubmitTaskRequest(
        style_prompt=style_prompt,
        callback_url=callback_url,
        request_id=request_id,
        labels=dict(labels or {}),
    )
    if isinstance(image, Path):
        request.image_data = image.read_bytes()
    elif isinstance(image, bytes | bytearray | memoryview):
        request.image_data = bytes(image)
    elif isinstance(image, str) and image.startswith(("http://", "https://")):
        request.image_url = image
    else:
        raise _invalid(
            "image_url", "a str image must be an http(s) URL; pass a pathlib.Path for a file"
        )
    if resize is not None:
        request.operations.append(resize_operation(*resize))
    request.operations.extend(operations)
    if format is not None:
        if format.lower() not in FORMATS:
            raise _invalid("output.format", f"{format!r} is not one of png, webp, jpeg, avif")
        request.output.format = FORMATS[format.lower()]
    if quality:
        if not 0 < quality <= 100:
            raise _invalid("output.quality", "must be between 1 and 100")
        request.output.quality = quality
    if effort:
        if not 0 < effort <= 10:
            raise _invalid("output.effort", "PNG takes 1-9, WEBP 1-6, AVIF 1-10")
        request.output.effort = effort
    if keep_metadata:
        request.output.keep_metadata = True
    return request


class EditOptions(TypedDict, total=False):
    """The per-job arguments of `build_submit_request` that a batch's items share."""

    operations: Iterable[operations_pb2.Operation]
    resize: tuple[int, int] | None
    format: str | None
    quality: int
    effort: int
    keep_metadata: bool
    style_prompt: str
    labels: Mapping[str, str] | None


BatchItem = ImageSource | pb.SubmitTaskRequest


def build_batch_request(
    items: Sequence[BatchItem],
    *,
    callback_url: str = "",
    request_id: str = "",
    **options: Unpack[EditOptions],
) -> pb.BatchSubmitRequest:
    """A BatchSubmitRequest. Each item is an image (bytes, an http(s) URL or a Path, as for
    `build_submit_request`) made into a job with the shared `options`, or a SubmitTaskRequest
    of its own, taken as it is. `callback_url` and `request_id` are the batch's."""
    requests = [
        item if isinstance(item, pb.SubmitTaskRequest) else build_submit_request(item, **options)
        for item in items
    ]
    return pb.BatchSubmitRequest(
        requests=requests, callback_url=callback_url, request_id=request_id
    )


def build_list_request(
    *,
    states: Iterable[str | int] = (),
    batch_id: str = "",
    labels: Mapping[str, str] | None = None,
    page_size: int = 50,
) -> pb.ListTasksRequest:
    """The first ListTasksRequest of a listing; the clients then follow next_page_token."""
    return pb.ListTasksRequest(
        page_size=page_size,
        states=[task_state(state) for state in states],
        batch_id=batch_id,
        labels=dict(labels or {}),
    )


def new_request_id() -> str:
    """A fresh idempotency key. The clients fill one in when the caller gives none, so the
    automatic retry of a submit whose answer was lost cannot create a second task."""
    return str(uuid.uuid4())


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"invalid {field}", field_violations={field: description})


__all__ = [
    "FORMATS",
    "STATES",
    "ImageSource",
    "build_batch_request",
    "build_list_request",
    "build_submit_request",
    "new_request_id",
    "task_state",
]
