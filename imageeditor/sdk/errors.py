"""gRPC errors -> the typed errors of imageeditor.core.errors, at the SDK's boundary.

Both clients run every call inside `translated_rpc_errors()`, so callers only ever see
`ImageEditorError` subclasses (with field violations, retry_after, reason) and never a
`grpc.RpcError`. The server puts a `google.rpc.Status` with details in the
`grpc-status-details-bin` trailer; when it is missing the error did not come from our
service (a refused connection, a deadline, a proxy) and is built from the code and message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import cast

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from imageeditor.core.api.rpc_errors import from_status
from imageeditor.core.errors import ImageEditorError, Unavailable

STATUS_DETAILS_KEY = "grpc-status-details-bin"
SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
"""The reason of an Unavailable that carried no details: the service never answered."""


def error_from_rpc(error: grpc.RpcError) -> ImageEditorError:
    """The typed error that a failed sync or aio call reports."""
    code = _code_of(error)
    message = _message_of(error)
    if isinstance(error, grpc.aio.AioRpcError):
        status = _status_from_metadata(error.trailing_metadata())
        if status is not None and status.code != code.value[0]:
            status = None  # As rpc_status.from_call does for sync calls: trust the call.
    else:
        try:
            # Every RpcError the sync stack raises is also a grpc.Call.
            status = rpc_status.from_call(cast(grpc.Call, error))
        except (ValueError, AttributeError, TypeError):
            # Details that contradict the call's own code/message (or an object that is not a
            # call at all): trust the call, which is what the transport actually reported.
            status = None
    if status is not None:
        return from_status(status)
    typed = from_status(status_pb2.Status(code=code.value[0], message=message))
    if isinstance(typed, Unavailable):
        typed.reason = SERVER_UNREACHABLE
    return typed


@contextmanager
def translated_rpc_errors() -> Iterator[None]:
    """Re-raise any `grpc.RpcError` raised inside the block as its typed error."""
    try:
        yield
    except grpc.RpcError as error:
        raise error_from_rpc(error) from error


def _code_of(error: grpc.RpcError) -> grpc.StatusCode:
    try:
        code = error.code()
    except AttributeError:
        return grpc.StatusCode.UNKNOWN
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _message_of(error: grpc.RpcError) -> str:
    try:
        return error.details() or str(error)
    except AttributeError:
        return str(error) or type(error).__name__


def _status_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> status_pb2.Status | None:
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None
