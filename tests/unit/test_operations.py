"""The edit operations: every resize fit, zero sides, no-upscale, grayscale, composition."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import Flip, Grayscale, RemoveBackground, Resize, ResizeFit
from imageeditor.core.task import Stage
from imageeditor.workers.operations import OutputLimits, apply_operations, grayscale, resize
from imageeditor.workers.pipeline import EditStep, edit_steps

INSIDE, CONTAIN, COVER, FILL = ResizeFit.INSIDE, ResizeFit.CONTAIN, ResizeFit.COVER, ResizeFit.FILL
LANDSCAPE, PORTRAIT = (400, 200), (200, 400)


OPAQUE = {"L": 90, "LA": (90, 255), "RGB": (40, 90, 160), "RGBA": (40, 90, 160, 255)}


def sized(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, OPAQUE[mode])


@pytest.mark.parametrize(
    ("source", "op", "expected"),
    [
        # Box 100x100, shrinking.
        (LANDSCAPE, Resize(100, 100, INSIDE), (100, 50)),
        (PORTRAIT, Resize(100, 100, INSIDE), (50, 100)),
        (LANDSCAPE, Resize(100, 100, CONTAIN), (100, 100)),
        (PORTRAIT, Resize(100, 100, CONTAIN), (100, 100)),
        (LANDSCAPE, Resize(100, 100, COVER), (100, 100)),
        (PORTRAIT, Resize(100, 100, COVER), (100, 100)),
        (LANDSCAPE, Resize(100, 100, FILL), (100, 100)),
        (PORTRAIT, Resize(100, 100, FILL), (100, 100)),
        # A zero side follows the source's aspect ratio, whatever the fit.
        (LANDSCAPE, Resize(100, 0, INSIDE), (100, 50)),
        (LANDSCAPE, Resize(0, 100, COVER), (200, 100)),
        (PORTRAIT, Resize(0, 100, FILL), (50, 100)),
        (PORTRAIT, Resize(100, 0, CONTAIN), (100, 200)),
        # Without allow_upscale nothing grows: INSIDE stays at scale 1, CONTAIN pads the full
        # box, COVER and FILL shrink the box (keeping its aspect) until the source covers it.
        ((100, 50), Resize(200, 200, INSIDE), (100, 50)),
        ((100, 50), Resize(200, 200, CONTAIN), (200, 200)),
        ((100, 50), Resize(200, 200, COVER), (50, 50)),
        ((100, 50), Resize(200, 200, FILL), (50, 50)),
        ((100, 50), Resize(200, 0, INSIDE), (100, 50)),
        (LANDSCAPE, Resize(300, 300, INSIDE), (300, 150)),
        (LANDSCAPE, Resize(300, 300, COVER), (200, 200)),
        (LANDSCAPE, Resize(800, 100, FILL), (400, 50)),
        # With allow_upscale they do.
        ((100, 50), Resize(200, 200, INSIDE, allow_upscale=True), (200, 100)),
        ((100, 50), Resize(200, 200, COVER, allow_upscale=True), (200, 200)),
        ((100, 50), Resize(200, 200, FILL, allow_upscale=True), (200, 200)),
        ((100, 50), Resize(200, 0, INSIDE, allow_upscale=True), (200, 100)),
        # A box the source already fits is a no-op.
        (LANDSCAPE, Resize(400, 200, COVER), LANDSCAPE),
    ],
)
def test_resize_output_sizes(
    source: tuple[int, int], op: Resize, expected: tuple[int, int]
) -> None:
    assert resize(sized(source), op).size == expected


def test_cover_crops_the_centre() -> None:
    source = Image.new("RGB", LANDSCAPE, "red")
    source.paste((0, 255, 0), (100, 0, 300, 200))  # green middle half, red outer quarters
    result = resize(source, Resize(100, 100, COVER))
    for corner in [(0, 0), (99, 0), (0, 99), (99, 99)]:
        red, green, _ = result.getpixel(corner)  # type: ignore[misc]
        assert green > 200 and red < 60, corner


def test_cover_without_upscale_is_a_plain_crop() -> None:
    source = Image.new("L", (100, 50))
    source.putdata([x for _ in range(50) for x in range(100)])  # each pixel's value is its x
    result = resize(source, Resize(200, 200, COVER))
    assert result.size == (50, 50)
    assert [result.getpixel((x, 0)) for x in (0, 49)] == [25, 74]


def test_contain_pads_opaque_images_white_and_centres_them() -> None:
    result = resize(sized((100, 50)), Resize(200, 200, CONTAIN))
    assert result.getpixel((0, 0)) == (255, 255, 255)
    assert result.getpixel((100, 100)) == (40, 90, 160)
    assert result.getbbox() is not None


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_contain_pads_images_with_alpha_transparent(mode: str) -> None:
    result = resize(sized(LANDSCAPE, mode), Resize(100, 100, CONTAIN))
    assert result.mode == mode
    assert result.getchannel("A").getpixel((50, 5)) == 0
    assert result.getchannel("A").getpixel((50, 50)) == 255


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("fit", list(ResizeFit))
def test_resize_keeps_the_mode(mode: str, fit: ResizeFit) -> None:
    assert resize(sized(LANDSCAPE, mode), Resize(150, 90, fit)).mode == mode


@pytest.mark.parametrize(
    ("mode", "expected"), [("RGB", "L"), ("RGBA", "LA"), ("L", "L"), ("LA", "LA")]
)
def test_grayscale_keeps_alpha(mode: str, expected: str) -> None:
    colour = {"RGB": (200, 0, 0), "RGBA": (200, 0, 0, 77), "L": 60, "LA": (60, 77)}[mode]
    source = Image.new(mode, (4, 4), colour)
    result = grayscale(source, Grayscale())
    assert result.mode == expected
    if "A" in expected:
        assert result.getchannel("A").getpixel((0, 0)) == 77


def test_operations_apply_in_order() -> None:
    fill, widen = Resize(50, 50, FILL), Resize(100, 0, INSIDE, allow_upscale=True)
    image = sized(LANDSCAPE)
    assert apply_operations(image, [fill, widen]).size == (100, 100)
    assert apply_operations(image, [widen, fill]).size == (50, 50)
    assert apply_operations(image, []).size == LANDSCAPE
    assert apply_operations(image, [Grayscale(), fill]).mode == "L"


def test_an_operation_without_a_function_is_refused() -> None:
    @dataclass(frozen=True)
    class Blur:
        radius: float = 1.0

    with pytest.raises(InvalidArgument) as caught:
        apply_operations(sized(LANDSCAPE), [Blur()])  # type: ignore[list-item]
    assert caught.value.reason == "OPERATION_UNSUPPORTED"


def test_each_background_removal_is_a_stage_between_runs_of_other_operations() -> None:
    resize, removal, flip = Resize(width=10, height=10), RemoveBackground(), Flip()
    assert edit_steps([]) == [EditStep(Stage.EDIT, 0, ())]
    assert edit_steps([removal]) == [EditStep(Stage.REMOVE_BACKGROUND, 0, (removal,))]
    assert edit_steps([resize, removal, flip, Grayscale()]) == [
        EditStep(Stage.EDIT, 0, (resize,)),
        EditStep(Stage.REMOVE_BACKGROUND, 1, (removal,)),
        EditStep(Stage.EDIT, 2, (flip, Grayscale())),
    ]


def test_a_refused_operation_is_named_by_its_place_in_the_whole_list() -> None:
    huge = Resize(width=20_000, height=20_000, allow_upscale=True)
    limits = OutputLimits(max_pixels=1_000_000, max_side=10_000)
    with pytest.raises(InvalidArgument) as refused:
        apply_operations(Image.new("RGB", (8, 8)), [huge], limits=limits, first_index=3)
    assert "operations[3]" in str(refused.value.message) + str(refused.value.field_violations)
