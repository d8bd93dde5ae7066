"""The Python SDK of imageeditor: `Client`, `AsyncClient` and the typed errors they raise.

Only grpcio, protobuf, googleapis-common-protos and grpcio-status are needed.
"""

from imageeditor.core.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    ImageEditorError,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    RetryableError,
    Unauthenticated,
    Unavailable,
)
from imageeditor.sdk.aio_client import AsyncClient
from imageeditor.sdk.client import Client
from imageeditor.sdk.credentials import resolve_address, resolve_api_key
from imageeditor.sdk.enums import CallbackState, ImageFormat, Stage, TaskState
from imageeditor.sdk.errors import SERVER_UNREACHABLE, error_from_rpc
from imageeditor.sdk.operations import (
    adjust_operation,
    blur_operation,
    crop_operation,
    flip_operation,
    flop_operation,
    grayscale_operation,
    remove_background_operation,
    resize_operation,
    rotate_operation,
    sharpen_operation,
)
from imageeditor.sdk.requests import build_batch_request, build_submit_request
from imageeditor.sdk.watching import is_terminal
from imageeditor.sdk.webhooks import parse_webhook, verify_webhook

__all__ = [
    "SERVER_UNREACHABLE",
    "AlreadyExists",
    "AsyncClient",
    "CallbackState",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "ImageEditorError",
    "ImageFormat",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "RetryableError",
    "Stage",
    "TaskState",
    "Unauthenticated",
    "Unavailable",
    "adjust_operation",
    "blur_operation",
    "build_batch_request",
    "build_submit_request",
    "crop_operation",
    "error_from_rpc",
    "flip_operation",
    "flop_operation",
    "grayscale_operation",
    "is_terminal",
    "parse_webhook",
    "remove_background_operation",
    "resize_operation",
    "resolve_address",
    "resolve_api_key",
    "rotate_operation",
    "sharpen_operation",
    "verify_webhook",
]
