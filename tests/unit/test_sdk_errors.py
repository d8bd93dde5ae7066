"""gRPC failures -> the typed errors, for sync-style and aio errors, with and without details."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.rpc import status_pb2

from imageeditor.core.api.rpc_errors import to_status
from imageeditor.core.errors import (
    DeadlineExceeded,
    ImageEditorError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from imageeditor.sdk.errors import (
    SERVER_UNREACHABLE,
    STATUS_DETAILS_KEY,
    error_from_rpc,
    translated_rpc_errors,
)

Wrap = Callable[[ImageEditorError], grpc.RpcError]


class FakeRpcError(grpc.RpcError):
    """What a failed sync call raises: an RpcError that is also a Call."""

    def __init__(
        self, code: grpc.StatusCode, message: str, status: status_pb2.Status | None = None
    ) -> None:
        super().__init__(message)
        self._code, self._message = code, message
        self._trailers = ((STATUS_DETAILS_KEY, status.SerializeToString()),) if status else ()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailers


def sync_error(error: ImageEditorError) -> FakeRpcError:
    status = to_status(error)
    return FakeRpcError(getattr(grpc.StatusCode, error.code), error.message, status)


def aio_error(error: ImageEditorError) -> grpc.aio.AioRpcError:
    trailers = grpc.aio.Metadata((STATUS_DETAILS_KEY, to_status(error).SerializeToString()))
    return grpc.aio.AioRpcError(
        getattr(grpc.StatusCode, error.code), grpc.aio.Metadata(), trailers, error.message
    )


@pytest.mark.parametrize("wrap", [sync_error, aio_error])
def test_field_violations_survive_the_round_trip(
    wrap: Wrap,
) -> None:
    sent = InvalidArgument(
        "the request is invalid",
        field_violations={"output.quality": "must be between 1 and 100"},
        reason="BAD_OUTPUT",
    )

    received = error_from_rpc(wrap(sent))

    assert isinstance(received, InvalidArgument)
    assert received.field_violations == {"output.quality": "must be between 1 and 100"}
    assert (received.message, received.reason) == ("the request is invalid", "BAD_OUTPUT")


@pytest.mark.parametrize("wrap", [sync_error, aio_error])
def test_retry_after_survives_the_round_trip(
    wrap: Wrap,
) -> None:
    sent = ResourceExhausted("slow down", retry_after=2.5, metadata={"limit": "submit"})

    received = error_from_rpc(wrap(sent))

    assert isinstance(received, ResourceExhausted)
    assert received.retry_after == 2.5
    assert received.metadata == {"limit": "submit"}


def test_not_found_keeps_its_message() -> None:
    received = error_from_rpc(sync_error(NotFound("task t-1 not found")))
    assert isinstance(received, NotFound)
    assert str(received) == "task t-1 not found"


def test_without_details_the_code_and_message_decide() -> None:
    refused = error_from_rpc(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    late = error_from_rpc(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"))
    odd = error_from_rpc(FakeRpcError(grpc.StatusCode.DATA_LOSS, "lost"))

    assert isinstance(refused, Unavailable) and refused.reason == SERVER_UNREACHABLE
    assert isinstance(late, DeadlineExceeded) and late.message == "deadline"
    assert type(odd) is ImageEditorError and odd.code == "DATA_LOSS"


def test_details_that_contradict_the_call_are_ignored() -> None:
    status = to_status(NotFound("task t-1 not found"))
    trailers = grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    errors = [
        FakeRpcError(grpc.StatusCode.INTERNAL, "proxy failure", status),
        grpc.aio.AioRpcError(
            grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), trailers, "proxy failure"
        ),
    ]

    for error in errors:
        received = error_from_rpc(error)
        assert received.code == "INTERNAL" and received.message == "proxy failure"


def test_translated_rpc_errors_raises_the_typed_error_from_the_grpc_one() -> None:
    original = sync_error(NotFound("gone"))
    with pytest.raises(NotFound) as caught, translated_rpc_errors():
        raise original
    assert caught.value.__cause__ is original
