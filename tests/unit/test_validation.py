from __future__ import annotations

import math
from io import BytesIO

import pytest
from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.core.spec import (
    Adjust,
    Blur,
    Crop,
    Flip,
    Flop,
    Gravity,
    Grayscale,
    ImageFormat,
    RemoveBackground,
    Resize,
    ResizeFit,
    Rotate,
    Sharpen,
)
from imageeditor.server.validation import validate_batch, validate_submit, validate_task_id
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2

SETTINGS = Settings(max_inline_image_bytes=1000, max_batch_size=3)


def _png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, "PNG")
    return out.getvalue()


PNG = _png()
Op = operations_pb2.Operation


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


# -- the operations -----------------------------------------------------------------------------


def op_violations(*ops: operations_pb2.Operation) -> dict[str, str]:
    return violations(pb.SubmitTaskRequest(image_data=PNG, operations=list(ops)))


def test_every_operation_converts_to_its_domain_type() -> None:
    request = pb.SubmitTaskRequest(
        image_data=PNG,
        operations=[
            Op(crop={"box": {"left": 1, "top": 2, "width": 3, "height": 4}}),
            Op(crop={"size": {"width": 5, "height": 6, "gravity": operations_pb2.GRAVITY_EAST}}),
            Op(crop={"size": {"width": 5, "height": 6}}),
            Op(rotate={"degrees": -30.5, "expand": True, "fill": {"red": 255, "alpha": 128}}),
            Op(rotate={"degrees": 90}),
            Op(flip={}),
            Op(flop={}),
            Op(blur={"radius": 2.5}),
            Op(sharpen={}),
            Op(sharpen={"radius": 1.5, "percent": 300, "threshold": 0}),
            Op(adjust={"brightness": 0.5}),
            Op(remove_background={}),
            Op(
                remove_background={
                    "model": "u2net",
                    "alpha_matting": True,
                    "background": {"green": 255, "alpha": 255},
                }
            ),
        ],
        output=operations_pb2.OutputOptions(
            format=operations_pb2.IMAGE_FORMAT_PNG, effort=9, keep_metadata=True
        ),
    )
    spec = validate_submit(request, SETTINGS).spec
    assert spec.operations == (
        Crop(3, 4, 1, 2),
        Crop(5, 6, gravity=Gravity.EAST),
        Crop(5, 6, gravity=Gravity.CENTER),
        Rotate(-30.5, True, (255, 0, 0, 128)),
        Rotate(90.0, False, None),
        Flip(),
        Flop(),
        Blur(2.5),
        Sharpen(2.0, 150, 0),
        Sharpen(1.5, 300, 0),
        Adjust(0.5, 1.0, 1.0),
        RemoveBackground(),
        RemoveBackground("u2net", True, (0, 255, 0, 255)),
    )
    assert (spec.output.effort, spec.output.keep_metadata) == (9, True)


@pytest.mark.parametrize(
    ("op", "fields"),
    [
        (Op(crop={}), {"operations[0].crop"}),
        (
            Op(crop={"box": {"left": 5, "top": 5}}),
            {"operations[0].crop.box.width", "operations[0].crop.box.height"},
        ),
        (Op(crop={"size": {"width": 10}}), {"operations[0].crop.size.height"}),
        (
            Op(crop={"size": {"width": 1, "height": 1, "gravity": 99}}),  # type: ignore[dict-item]
            {"operations[0].crop.size.gravity"},
        ),
        (Op(rotate={"degrees": math.inf}), {"operations[0].rotate.degrees"}),
        (Op(rotate={"degrees": math.nan}), {"operations[0].rotate.degrees"}),
        (
            Op(rotate={"degrees": 10, "fill": {"red": 256, "alpha": 1000}}),
            {"operations[0].rotate.fill.red", "operations[0].rotate.fill.alpha"},
        ),
        (Op(blur={}), {"operations[0].blur.radius"}),
        (Op(blur={"radius": -1}), {"operations[0].blur.radius"}),
        (Op(blur={"radius": 250.01}), {"operations[0].blur.radius"}),
        (Op(blur={"radius": math.nan}), {"operations[0].blur.radius"}),
        (Op(sharpen={"percent": 1001}), {"operations[0].sharpen.percent"}),
        (Op(sharpen={"threshold": 256}), {"operations[0].sharpen.threshold"}),
        (Op(sharpen={"radius": -0.5}), {"operations[0].sharpen.radius"}),
        (
            Op(adjust={"brightness": -0.1, "contrast": 10.5, "saturation": math.inf}),
            {
                "operations[0].adjust.brightness",
                "operations[0].adjust.contrast",
                "operations[0].adjust.saturation",
            },
        ),
        (
            Op(remove_background={"model": "bria-rmbg-9000"}),
            {"operations[0].remove_background.model"},
        ),
        (
            Op(remove_background={"background": {"blue": 300}}),
            {"operations[0].remove_background.background.blue"},
        ),
    ],
)
def test_each_bad_operation_field_is_named(op: operations_pb2.Operation, fields: set[str]) -> None:
    assert set(op_violations(op)) == fields


def test_field_paths_count_operations_and_batch_items() -> None:
    ops = [Op(flip={}), Op(flop={}), Op(crop={"box": {"height": 3}})]
    assert set(op_violations(*ops)) == {"operations[2].crop.box.width"}
    bad = pb.SubmitTaskRequest(image_data=PNG, operations=ops)
    (item,) = validate_batch(pb.BatchSubmitRequest(requests=[bad]), SETTINGS)
    assert isinstance(item, InvalidArgument)
    assert set(item.field_violations) == {"requests[0].operations[2].crop.box.width"}


def test_operations_at_their_limits_are_accepted() -> None:
    ops = [
        Op(rotate={"degrees": -1e9, "fill": {"red": 255, "green": 255, "blue": 255, "alpha": 255}}),
        Op(blur={"radius": 250}),
        Op(sharpen={"radius": 250, "percent": 1000, "threshold": 255}),
        Op(adjust={"brightness": 10, "contrast": 0, "saturation": 1e-6}),
        Op(remove_background={"model": "u2netp"}),
    ]
    validate_submit(pb.SubmitTaskRequest(image_data=PNG, operations=ops), SETTINGS)


def test_an_unknown_model_lists_the_known_ones_with_its_own_reason() -> None:
    request = pb.SubmitTaskRequest(
        image_data=PNG, operations=[Op(remove_background={"model": "nope"})]
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_submit(request, SETTINGS)
    assert caught.value.reason == "MODEL_UNKNOWN"
    assert "u2netp" in caught.value.field_violations["operations[0].remove_background.model"]


@pytest.mark.parametrize(
    ("fmt", "effort", "ok"),
    [
        (operations_pb2.IMAGE_FORMAT_UNSPECIFIED, 9, True),  # PNG
        (operations_pb2.IMAGE_FORMAT_PNG, 1, True),
        (operations_pb2.IMAGE_FORMAT_PNG, 10, False),
        (operations_pb2.IMAGE_FORMAT_WEBP, 6, True),
        (operations_pb2.IMAGE_FORMAT_WEBP, 7, False),
        (operations_pb2.IMAGE_FORMAT_JPEG, 1, False),
        (operations_pb2.IMAGE_FORMAT_JPEG, 0, True),
        (operations_pb2.IMAGE_FORMAT_AVIF, 10, True),
        (operations_pb2.IMAGE_FORMAT_AVIF, 11, False),
    ],
)
def test_output_effort_depends_on_the_format(fmt: int, effort: int, ok: bool) -> None:
    output = operations_pb2.OutputOptions(format=fmt, effort=effort)  # type: ignore[arg-type]
    request = pb.SubmitTaskRequest(image_data=PNG, output=output)
    if ok:
        assert validate_submit(request, SETTINGS).spec.output.effort == effort
    else:
        assert set(violations(request)) == {"output.effort"}
