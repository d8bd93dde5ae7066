"""The error tree <-> `google.rpc.Status` with details, in both directions.

The server sends `to_status(error)`; the SDK rebuilds the same typed error with
`from_status(status)`. Details: ErrorInfo always (stable reason, domain, metadata),
BadRequest field violations for InvalidArgument, RetryInfo for retryable errors.

A status travels in the call's trailers, which clients cap at about 8 KB: one that repeated a
large input would never arrive, and the caller would see RESOURCE_EXHAUSTED instead of its
error. So every status stays under MAX_STATUS_BYTES: the message and each text within it are
clipped (imageeditor.core.errors.clip), and violations are shortened before any is left out.
"""

from __future__ import annotations

from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from imageeditor.core.errors import (
    ERROR_DOMAIN,
    ERRORS_BY_CODE,
    ImageEditorError,
    InvalidArgument,
    RetryableError,
    clip,
    clip_key,
)

MAX_STATUS_BYTES = 4096
MESSAGE_LIMIT = 1000


def to_status(error: ImageEditorError) -> status_pb2.Status:
    """The `google.rpc.Status` that reports `error`, under MAX_STATUS_BYTES."""
    violations = error.field_violations if isinstance(error, InvalidArgument) else {}
    # Shorter texts first, then fewer of them (the last entry counting those left out).
    for text_limit, count in ((200, 64), (80, 64), (40, 64), (40, 24), (40, 8)):
        status = _status(error, violations, text_limit, count)
        if status.ByteSize() <= MAX_STATUS_BYTES:
            break
    return status


def _status(
    error: ImageEditorError, violations: dict[str, str], text_limit: int, count: int
) -> status_pb2.Status:
    code = code_pb2.Code.Value(error.code)
    status = status_pb2.Status(code=code, message=clip(error.message, MESSAGE_LIMIT))
    metadata = {clip(k, 64): clip(v, text_limit) for k, v in list(error.metadata.items())[:16]}
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=clip(error.reason, 64), domain=ERROR_DOMAIN, metadata=metadata
        )
    ]
    if violations:
        items = list(violations.items())
        shown = [(clip_key(n, text_limit), clip(t, text_limit)) for n, t in items[:count]]
        if len(items) > count:
            shown[-1] = ("…", f"and {len(items) - count + 1} more fields")
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=name, description=text)
                    for name, text in shown
                ]
            )
        )
    if isinstance(error, RetryableError):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    for detail in details:
        status.details.add().Pack(detail)
    return status


def from_status(status: status_pb2.Status) -> ImageEditorError:
    """The typed error a `google.rpc.Status` reports (ImageEditorError for unknown codes)."""
    code = code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: dict[str, str] = {}
    retry_after: float | None = None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations = {v.field: v.description for v in bad_request.field_violations}
        elif detail.Unpack(retry):
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    cls = ERRORS_BY_CODE.get(code, ImageEditorError)
    if cls is InvalidArgument:
        return InvalidArgument(
            status.message, field_violations=violations, reason=reason, metadata=metadata
        )
    if issubclass(cls, RetryableError):
        return cls(status.message, retry_after=retry_after or 1.0, reason=reason, metadata=metadata)
    error = cls(status.message, reason=reason, metadata=metadata)
    if cls is ImageEditorError:
        error.code = code
    return error
