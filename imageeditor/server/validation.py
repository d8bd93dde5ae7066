"""Request validation: every problem of a request, as BadRequest field violations at once."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import replace

from google.protobuf.message import Message

from imageeditor.core.api.convert import STATES, datetime_from_proto, spec_from_proto
from imageeditor.core.errors import ImageEditorError, InvalidArgument, clip, clip_key
from imageeditor.core.geometry import check_output_sizes
from imageeditor.core.image_probe import ImageHeader, probe
from imageeditor.core.ports import TaskQuery
from imageeditor.core.service import NewTask
from imageeditor.core.settings import Settings
from imageeditor.core.styles import check_prompt
from imageeditor.core.urls import (
    MAX_CALLBACK_URL_LENGTH,
    MAX_URL_LENGTH,
    refuse_internal_target,
    validate_http_url,
)
from imageeditor.server.operation_checks import check_operations, check_output
from imageeditor.v1 import image_editor_service_pb2 as service_pb2

MAX_LABELS = 32
MAX_REQUEST_ID = 128
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class Violations:
    """Collects field violations; the first specific reason becomes the ErrorInfo reason."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.items: dict[str, str] = {}
        self.reason = ""

    def add(self, field: str, description: str, reason: str = "") -> None:
        self.items.setdefault(self.prefix + field, description)
        self.reason = self.reason or reason

    def check_url(self, field: str, url: str, allowed_hosts: tuple[str, ...]) -> None:
        """The URL's form, and that it does not name an internal address outright."""
        limit = MAX_CALLBACK_URL_LENGTH if field == "callback_url" else MAX_URL_LENGTH
        try:
            validate_http_url(url, field, limit)
            refuse_internal_target(url, field, allowed_hosts)
        except InvalidArgument as exc:
            self.add_all(exc)

    def check_style_prompt(self, prompt: str, settings: Settings) -> str:
        """The prompt as stored (see imageeditor.core.styles), or "" with a violation added."""
        try:
            return check_prompt(prompt, settings)
        except InvalidArgument as exc:
            self.add_all(exc)
            return ""

    def add_all(self, exc: InvalidArgument) -> None:
        for name, text in exc.field_violations.items():
            self.add(name, text, exc.reason)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            fields = clip(", ".join(self.items), 300)
            raise InvalidArgument(
                f"invalid {what}: {fields}",
                field_violations=self.items,
                reason=self.reason or "INVALID_REQUEST",
            )


def request_digest(request: Message) -> str:
    """A digest of everything a request asks for (AIP-155): two requests with the same
    request_id are the same request exactly when their digests are equal. Deterministic
    serialization orders map entries (labels), so equal requests serialize equally."""
    if not getattr(request, "request_id", ""):
        return ""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def validate_task_id(task_id: str) -> str:
    return _validate_id(task_id, "task_id", "SubmitTask", "INVALID_TASK_ID")


def validate_batch_id(batch_id: str) -> str:
    return _validate_id(batch_id, "batch_id", "BatchSubmit", "INVALID_BATCH_ID")


def _validate_id(value: str, field: str, maker: str, reason: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        kind = field.removesuffix("_id")
        raise InvalidArgument(
            f"{field} {clip(value, 64)!r} is not a UUID",
            field_violations={field: f"must be a {kind} id (a UUID) returned by {maker}"},
            reason=reason,
        ) from None


def validate_submit(
    request: service_pb2.SubmitTaskRequest, settings: Settings, prefix: str = ""
) -> NewTask:
    """The NewTask a SubmitTaskRequest asks for, or InvalidArgument naming every bad field."""
    v = Violations(prefix)
    header: ImageHeader | None = None
    source = request.WhichOneof("source")
    if source is None:
        v.add("source", "set image_url or image_data", "SOURCE_MISSING")
    elif source == "image_url":
        v.check_url("image_url", request.image_url, settings.allowed_hosts)
    else:
        header = _check_image_data(v, request.image_data, settings)
    problems = check_operations(request.operations, settings) + check_output(request.output)
    for field, description, reason in problems:
        v.add(field, description, reason)
    style_prompt = v.check_style_prompt(request.style_prompt, settings)
    if request.callback_url:
        v.check_url("callback_url", request.callback_url, settings.callback_allowed_hosts)
    _check_request_id(v, request.request_id)
    _check_labels(v, dict(request.labels))
    v.raise_if_any("SubmitTaskRequest")
    spec = spec_from_proto(request)
    check_output_sizes(
        header.upright_size if header is not None else None,
        spec.operations,
        max_pixels=settings.effective_max_output_pixels,
        max_side=settings.max_output_side,
        field=f"{prefix}operations",
    )
    return NewTask(
        spec=replace(spec, style_prompt=style_prompt),
        image_data=request.image_data if source == "image_data" else None,
        request_id=request.request_id,
        labels=dict(request.labels),
        request_digest=request_digest(request),
    )


def validate_batch(
    request: service_pb2.BatchSubmitRequest, settings: Settings
) -> list[NewTask | ImageEditorError]:
    """Each item's NewTask or its own error (a batch succeeds item by item); InvalidArgument
    for problems of the batch as a whole."""
    v = Violations()
    limit = settings.max_batch_size
    if not 1 <= len(request.requests) <= limit:
        v.add("requests", f"between 1 and {limit} items; got {len(request.requests)}", "BATCH_SIZE")
    if request.callback_url:
        v.check_url("callback_url", request.callback_url, settings.callback_allowed_hosts)
    _check_request_id(v, request.request_id)
    v.raise_if_any("BatchSubmitRequest")
    items: list[NewTask | ImageEditorError] = []
    for i, item in enumerate(request.requests):
        prefix = f"requests[{i}]."
        try:
            if item.request_id:
                raise InvalidArgument(
                    "items of a batch take no request_id; the batch's request_id covers them",
                    field_violations={prefix + "request_id": "must be empty in a batch"},
                )
            items.append(validate_submit(item, settings, prefix))
        except InvalidArgument as exc:
            items.append(exc)
    return items


def validate_list(request: service_pb2.ListTasksRequest, user_id: str) -> TaskQuery:
    """The TaskQuery a ListTasksRequest asks for, or InvalidArgument naming every bad field."""
    v = Violations()
    if request.page_size < 0:
        v.add("page_size", "must be >= 0")
    unknown = sorted({s for s in request.states if s not in STATES})
    if unknown:
        v.add("states", f"unknown state values {clip(str(unknown[:8]), 80)}")
    _check_labels(v, dict(request.labels))
    if len(request.batch_id) > MAX_REQUEST_ID:
        v.add("batch_id", "is not a batch id")
    times = {}
    for field in ("create_time_after", "create_time_before"):
        if request.HasField(field):
            try:
                times[field] = datetime_from_proto(getattr(request, field), field)
            except InvalidArgument as exc:
                v.add_all(exc)
    v.raise_if_any("ListTasksRequest")
    return TaskQuery(
        user_id=user_id,
        states=frozenset(STATES[s] for s in request.states),
        batch_id=request.batch_id,
        labels=dict(request.labels),
        created_after=times.get("create_time_after"),
        created_before=times.get("create_time_before"),
    )


def _check_image_data(v: Violations, data: bytes, settings: Settings) -> ImageHeader | None:
    """The inline image's header, or None with a violation added."""
    if not data:
        v.add("image_data", "is empty", "IMAGE_EMPTY")
    elif len(data) > settings.max_inline_image_bytes:
        v.add(
            "image_data",
            f"is {len(data)} bytes; the limit is {settings.max_inline_image_bytes}",
            "IMAGE_TOO_LARGE",
        )
    else:
        # Headers only: a hostile upload (unsupported format, a bomb, thousands of frames) is
        # refused before it is stored; damage past the headers fails the task in the worker.
        try:
            return probe(data, max_pixels=settings.max_image_pixels, max_frames=settings.max_frames)
        except InvalidArgument as exc:
            v.add("image_data", exc.message, exc.reason)
    return None


def _check_request_id(v: Violations, request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
        v.add("request_id", f"at most {MAX_REQUEST_ID} printable characters")


def _check_labels(v: Violations, labels: dict[str, str]) -> None:
    if len(labels) > MAX_LABELS:  # each one's own problems would only repeat the input
        v.add("labels", f"at most {MAX_LABELS} labels; got {len(labels)}", "TOO_MANY_LABELS")
        return
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            text = "keys are 1-63 of a-z, 0-9, _ and -, starting with a letter"
            v.add(f"labels[{clip_key(key)}]", text)
        elif len(value) > 255:
            v.add(f"labels[{key}]", "values are at most 255 characters")
