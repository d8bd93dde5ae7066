from __future__ import annotations

import pytest
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2

from editcore.errors import InvalidArgument
from editcore.settings import Settings
from editcore.spec import Grayscale, ImageFormat, Resize, ResizeFit
from server.validation import validate_batch, validate_submit, validate_task_id

SETTINGS = Settings(max_inline_image_bytes=1000, max_batch_size=3)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def violations(request: pb.SubmitTaskRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate_submit(request, SETTINGS)
    return caught.value.field_violations


def test_a_good_request_becomes_a_new_task() -> None:
    request = pb.SubmitTaskRequest(
        image_data=PNG,
        operations=[
            operations_pb2.Operation(
                resize=operations_pb2.Resize(
                    width=10, fit=operations_pb2.RESIZE_FIT_COVER, allow_upscale=True
                )
            ),
            operations_pb2.Operation(grayscale=operations_pb2.Grayscale()),
        ],
        output=operations_pb2.OutputOptions(format=operations_pb2.IMAGE_FORMAT_WEBP, quality=70),
        style_prompt="  Sepia ",
        request_id="r-1",
        labels={"team": "ads"},
    )
    new = validate_submit(request, SETTINGS)
    assert new.image_data == PNG
    assert new.spec.operations == (Resize(10, 0, ResizeFit.COVER, True), Grayscale())
    assert (new.spec.output.format, new.spec.output.quality) == (ImageFormat.WEBP, 70)
    assert new.spec.style_prompt == "sepia"
    assert (new.request_id, new.labels) == ("r-1", {"team": "ads"})


def test_every_bad_field_is_named_at_once() -> None:
    request = pb.SubmitTaskRequest(
        image_url="ftp://example.com/a.png",
        operations=[operations_pb2.Operation(), operations_pb2.Operation(resize={})],
        output=operations_pb2.OutputOptions(quality=101, lossless=True),
        style_prompt="make it look like a van gogh",
        callback_url="not a url",
        labels={"Bad Key": "x"},
    )
    assert set(violations(request)) == {
        "image_url",
        "operations[0]",
        "operations[1].resize",
        "output.quality",
        "output.lossless",
        "style_prompt",
        "callback_url",
        "labels[Bad Key]",
    }


def test_an_unserved_prompt_lists_what_can_be_served() -> None:
    text = violations(pb.SubmitTaskRequest(image_data=PNG, style_prompt="van gogh"))["style_prompt"]
    assert "sepia" in text and "grayscale" in text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "IMAGE_EMPTY"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "IMAGE_FORMAT_UNSUPPORTED"),
        (b"%!PS-Adobe-3.0 EPSF-3.0", "IMAGE_FORMAT_UNSUPPORTED"),
        (PNG + b"\0" * 2000, "IMAGE_TOO_LARGE"),
    ],
)
def test_bad_inline_images_are_refused_with_a_stable_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_submit(pb.SubmitTaskRequest(image_data=data), SETTINGS)
    assert caught.value.reason == reason
    assert "image_data" in caught.value.field_violations


def test_a_request_without_a_source_is_refused() -> None:
    assert "source" in violations(pb.SubmitTaskRequest())


def test_batch_items_fail_on_their_own_and_the_batch_as_a_whole_is_checked() -> None:
    good = pb.SubmitTaskRequest(image_data=PNG)
    items = validate_batch(
        pb.BatchSubmitRequest(
            requests=[
                good,
                pb.SubmitTaskRequest(),
                pb.SubmitTaskRequest(image_data=PNG, request_id="x"),
            ]
        ),
        SETTINGS,
    )
    assert not isinstance(items[0], InvalidArgument)
    assert (
        isinstance(items[1], InvalidArgument) and "requests[1].source" in items[1].field_violations
    )
    assert isinstance(items[2], InvalidArgument)
    assert "requests[2].request_id" in items[2].field_violations
    with pytest.raises(InvalidArgument) as caught:
        validate_batch(pb.BatchSubmitRequest(requests=[good] * 4), SETTINGS)
    assert "requests" in caught.value.field_violations
    with pytest.raises(InvalidArgument):
        validate_batch(pb.BatchSubmitRequest(), SETTINGS)


def test_task_ids_must_be_uuids() -> None:
    assert validate_task_id("6F9619FF-8B86-D011-B42D-00C04FC964FF") == (
        "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_task_id("../etc/passwd")
    assert "task_id" in caught.value.field_violations
