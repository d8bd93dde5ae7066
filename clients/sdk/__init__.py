"""The Python SDK of imageeditor: `Client`, `AsyncClient` and the typed errors they raise.

Only grpcio, protobuf, googleapis-common-protos and grpcio-status are needed.
"""

from clients.sdk.aio_client import AsyncClient
from clients.sdk.client import Client
from clients.sdk.credentials import resolve_address, resolve_api_key
from clients.sdk.errors import SERVER_UNREACHABLE, error_from_rpc
from clients.sdk.requests import (
    build_batch_request,
    build_submit_request,
    grayscale_operation,
    resize_operation,
)
from clients.sdk.watching import is_terminal
from editcore.errors import (
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
    "AsyncClient",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "ImageEditorError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "RetryableError",
    "Unauthenticated",
    "Unavailable",
    "build_batch_request",
    "build_submit_request",
    "error_from_rpc",
    "grayscale_operation",
    "is_terminal",
    "resize_operation",
    "resolve_address",
    "resolve_api_key",
]
