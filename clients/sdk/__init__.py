"""The Python SDK of imageeditor: `Client`, `AsyncClient` and the typed errors they raise.

Only grpcio, protobuf, googleapis-common-protos and grpcio-status are needed.
"""

from clients.sdk.aio_client import AsyncClient
from clients.sdk.client import Client
from clients.sdk.credentials import resolve_address, resolve_api_key
from clients.sdk.enums import CallbackState, ImageFormat, Stage, TaskState
from clients.sdk.errors import SERVER_UNREACHABLE, error_from_rpc
from clients.sdk.operations import (
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
from clients.sdk.requests import build_batch_request, build_submit_request
from clients.sdk.watching import is_terminal
from clients.sdk.webhooks import parse_webhook, verify_webhook
from editcore.errors import (
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
