from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from imageeditor.core.api.rpc_errors import from_status, to_status
from imageeditor.core.errors import (
    ERRORS_BY_CODE,
    ImageEditorError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


def test_invalid_argument_carries_field_violations_and_a_stable_reason() -> None:
    error = InvalidArgument("bad", field_violations={"output.quality": "1-100"}, reason="X_Y")
    status = to_status(error)
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(bad_request) for d in status.details)
    assert any(d.Unpack(info) for d in status.details)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("output.quality", "1-100")
    ]
    assert (info.reason, info.domain) == ("X_Y", "imageeditor.v1")
    back = from_status(status)
    assert isinstance(back, InvalidArgument)
    assert back.field_violations == {"output.quality": "1-100"} and back.reason == "X_Y"


@pytest.mark.parametrize("cls", [ResourceExhausted, Unavailable])
def test_retryable_errors_carry_retry_info(cls: type[ResourceExhausted]) -> None:
    status = to_status(cls("slow down", retry_after=1.25))
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details)
    assert retry.retry_delay.ToMilliseconds() == 1250
    back = from_status(status)
    assert type(back) is cls and back.retry_after == pytest.approx(1.25)


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_every_code_maps_back_to_its_class(code: str) -> None:
    cls = ERRORS_BY_CODE[code]
    back = from_status(to_status(cls("message", metadata={"k": "v"})))
    assert type(back) is cls
    assert back.message == "message" and back.metadata == {"k": "v"}


def test_a_status_without_details_still_maps() -> None:
    from google.rpc import status_pb2

    back = from_status(status_pb2.Status(code=code_pb2.NOT_FOUND, message="gone"))
    assert isinstance(back, NotFound) and back.reason == "NOT_FOUND"
    odd = from_status(status_pb2.Status(code=code_pb2.DATA_LOSS, message="?"))
    assert type(odd) is ImageEditorError and odd.code == "DATA_LOSS"
