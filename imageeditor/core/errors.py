"""The one error tree of imageeditor, shared by the server, the worker and the SDK.

    ImageEditorError              (message, reason, metadata)
    ├── InvalidArgument           INVALID_ARGUMENT    (field_violations: field -> description)
    ├── Unauthenticated           UNAUTHENTICATED
    ├── NotFound                  NOT_FOUND
    ├── AlreadyExists             ALREADY_EXISTS
    ├── FailedPrecondition        FAILED_PRECONDITION
    ├── RetryableError            (retry_after seconds; no code of its own: catch it to retry)
    │   ├── ResourceExhausted     RESOURCE_EXHAUSTED
    │   └── Unavailable           UNAVAILABLE
    ├── DeadlineExceeded          DEADLINE_EXCEEDED
    ├── Cancelled                 CANCELLED
    └── Internal                  INTERNAL

Each class names its canonical gRPC status code as a string, so this module imports nothing;
the server turns an error into a `google.rpc.Status` with its details (ErrorInfo always,
BadRequest for field violations, RetryInfo for retry_after) in imageeditor/core/api/rpc_errors.py,
and
the SDK turns a status back into the same class with `from_status` beside it
(imageeditor/sdk/errors.py calls it). `reason` is the stable machine-readable ErrorInfo reason
(AIP-193): UPPER_SNAKE_CASE, never reworded.
"""

from __future__ import annotations

import hashlib

ERROR_DOMAIN = "imageeditor.v1"
# How much of a caller's input an error may repeat: enough to recognise it, never a payload.
ECHO_LIMIT = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as an error may quote it: at most `limit` characters, marked when cut."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def clip_key(text: str, limit: int = 64) -> str:
    """A caller's key (a label key, say) as a field name may quote it: cut like `clip`, with a
    digest of the whole, so two long keys that differ late still name two fields."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{text[: limit - 10]}…{digest}"


class ImageEditorError(Exception):
    """Base of every error the service reports."""

    code = "UNKNOWN"
    default_reason = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class InvalidArgument(ImageEditorError):
    """The request is malformed; `field_violations` maps each bad field to what is wrong."""

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        field_violations: dict[str, str] | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.field_violations = dict(field_violations or {})


class Unauthenticated(ImageEditorError):
    code = "UNAUTHENTICATED"
    default_reason = "API_KEY_INVALID"


class NotFound(ImageEditorError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(ImageEditorError):
    """E.g. a request_id used before for a different request (AIP-155: REQUEST_ID_REUSED)."""

    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(ImageEditorError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class RetryableError(ImageEditorError):
    """An error worth retrying after `retry_after` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = retry_after


class ResourceExhausted(RetryableError):
    """Over a limit; try again after `retry_after` seconds."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RATE_LIMITED"


class Unavailable(RetryableError):
    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(ImageEditorError):
    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class Cancelled(ImageEditorError):
    code = "CANCELLED"
    default_reason = "CANCELLED"


class Internal(ImageEditorError):
    code = "INTERNAL"
    default_reason = "INTERNAL"


ERRORS_BY_CODE: dict[str, type[ImageEditorError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        Internal,
    )
}
