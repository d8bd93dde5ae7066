"""Every edit operation on real photos (scikit-image's astronaut, coffee and chelsea), checked
pixel by pixel: sizes, where pixels go, and what happens to their colours and alpha."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import (
    Adjust,
    Blur,
    Crop,
    Flip,
    Flop,
    Gravity,
    Grayscale,
    RemoveBackground,
    Resize,
    Rotate,
    Sharpen,
)
from imageeditor.workers.operations import OPERATIONS, apply_operations, crop, rotate

RED = (255, 0, 0)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(photos.astronaut())  # 512x512


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return Image.fromarray(photos.coffee())  # 600x400


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return Image.fromarray(photos.chelsea())  # 451x300


def pixels(image: Image.Image) -> np.ndarray[Any, Any]:
    return np.asarray(image)


def with_alpha(image: Image.Image, alpha: int = 200) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


def edge_energy(image: Image.Image) -> float:
    """Mean absolute difference between horizontal neighbours: high for sharp images."""
    gray = pixels(image.convert("L")).astype(np.int32)
    return float(np.abs(np.diff(gray, axis=1)).mean())


# -- crop -------------------------------------------------------------------------------------


def test_a_crop_box_cuts_exactly_those_pixels(chelsea: Image.Image) -> None:
    result = crop(chelsea, Crop(100, 50, left=10, top=20))
    assert result.size == (100, 50)
    assert np.array_equal(pixels(result), pixels(chelsea)[20:70, 10:110])


@pytest.mark.parametrize(
    "op",
    [Crop(100, 50, left=400, top=0), Crop(10, 10, left=0, top=295), Crop(452, 1), Crop(0, 10)],
)
def test_a_crop_box_outside_the_image_fails_cleanly(chelsea: Image.Image, op: Crop) -> None:
    with pytest.raises(InvalidArgument) as caught:
        crop(chelsea, op)
    assert caught.value.reason == "CROP_OUTSIDE_IMAGE"
    assert "451x300" in caught.value.message


@pytest.mark.parametrize(
    ("gravity", "left", "top"),
    [
        (Gravity.NORTH_WEST, 0, 0),
        (Gravity.NORTH, 250, 0),
        (Gravity.NORTH_EAST, 500, 0),
        (Gravity.WEST, 0, 160),
        (Gravity.CENTER, 250, 160),
        (Gravity.EAST, 500, 160),
        (Gravity.SOUTH_WEST, 0, 320),
        (Gravity.SOUTH, 250, 320),
        (Gravity.SOUTH_EAST, 500, 320),
    ],
)
def test_gravity_places_the_crop(
    coffee: Image.Image, gravity: Gravity, left: int, top: int
) -> None:
    result = crop(coffee, Crop(100, 80, gravity=gravity))
    assert result.size == (100, 80)
    assert np.array_equal(pixels(result), pixels(coffee)[top : top + 80, left : left + 100])


def test_a_gravity_size_larger_than_the_image_is_clamped(coffee: Image.Image) -> None:
    assert crop(coffee, Crop(5000, 100, gravity=Gravity.SOUTH)).size == (600, 100)
    assert np.array_equal(
        pixels(crop(coffee, Crop(9999, 9999, gravity=Gravity.EAST))), pixels(coffee)
    )


# -- rotate, flip, flop -----------------------------------------------------------------------


@pytest.mark.parametrize(("degrees", "turns"), [(90, 1), (180, 2), (270, 3), (-90, 3), (450, 1)])
def test_quarter_turns_are_lossless_transposes(
    coffee: Image.Image, degrees: float, turns: int
) -> None:
    result = rotate(coffee, Rotate(degrees, expand=True))
    assert result.mode == "RGB"
    # np.rot90 turns counter-clockwise, as Rotate does.
    assert np.array_equal(pixels(result), np.rot90(pixels(coffee), turns))


def test_rotate_90_swaps_the_sides_and_moves_a_marked_pixel(coffee: Image.Image) -> None:
    marked = coffee.copy()
    marked.putpixel((10, 5), RED)
    result = rotate(marked, Rotate(90, expand=True))
    assert result.size == (400, 600)
    # Counter-clockwise: the top edge becomes the left edge, (x, y) -> (y, width - 1 - x).
    assert result.getpixel((5, 600 - 1 - 10)) == RED


def test_rotate_0_and_360_change_nothing(astronaut: Image.Image) -> None:
    for degrees in (0, 360, -720):
        assert np.array_equal(pixels(rotate(astronaut, Rotate(degrees))), pixels(astronaut))


def test_a_quarter_turn_without_expand_keeps_the_canvas(coffee: Image.Image) -> None:
    result = rotate(coffee, Rotate(90))
    assert result.size == (600, 400) and result.mode == "RGBA"
    alpha = pixels(result.getchannel("A"))
    assert alpha[:, :100].max() == 0 and alpha[:, 500:].max() == 0  # uncovered: transparent
    turned = np.rot90(pixels(coffee))[100:500]  # the middle 400 rows of the 400x600 turn
    assert np.array_equal(pixels(result)[:, 100:500, :3], turned)


def test_any_angle_with_expand_grows_and_fills_the_corners(astronaut: Image.Image) -> None:
    result = rotate(astronaut, Rotate(45, expand=True))
    assert result.mode == "RGBA"
    diagonal = 512 * 2**0.5
    assert abs(result.width - diagonal) <= 2 and abs(result.height - diagonal) <= 2
    assert result.getpixel((0, 0))[3] == 0  # type: ignore[index]
    centre = result.getpixel((result.width // 2, result.height // 2))
    source = astronaut.getpixel((256, 256))
    assert centre[3] == 255  # type: ignore[index]
    assert max(abs(a - b) for a, b in zip(centre[:3], source, strict=True)) < 40  # type: ignore[index, arg-type]


def test_an_opaque_fill_keeps_an_opaque_image_opaque(astronaut: Image.Image) -> None:
    result = rotate(astronaut, Rotate(30, fill=(255, 0, 0, 255)))
    assert result.mode == "RGB" and result.size == (512, 512)
    assert result.getpixel((0, 0)) == RED
    gray = rotate(astronaut.convert("L"), Rotate(30, fill=(9, 9, 9, 255)))
    assert gray.mode == "L" and gray.getpixel((0, 0)) == 9
    tinted = rotate(astronaut.convert("L"), Rotate(30, fill=(0, 0, 255, 255)))
    assert tinted.mode == "RGB" and tinted.getpixel((0, 0)) == (0, 0, 255)


def test_flop_mirrors_left_to_right_and_flip_top_to_bottom(astronaut: Image.Image) -> None:
    marked = astronaut.copy()
    marked.paste(RED, (0, 0, 20, 20))  # a red top-left corner
    flopped = apply_operations(marked, [Flop()])
    flipped = apply_operations(marked, [Flip()])
    assert flopped.getpixel((511, 0)) == RED and flopped.getpixel((0, 0)) != RED
    assert flipped.getpixel((0, 511)) == RED and flipped.getpixel((0, 0)) != RED
    assert np.array_equal(pixels(flopped), np.fliplr(pixels(marked)))
    assert np.array_equal(pixels(flipped), np.flipud(pixels(marked)))


# -- tone -------------------------------------------------------------------------------------


def test_grayscale_gives_equal_channels_and_keeps_alpha(astronaut: Image.Image) -> None:
    gray = apply_operations(astronaut, [Grayscale()])
    assert gray.mode == "L" and gray.size == astronaut.size
    rgb = pixels(gray.convert("RGB"))
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    red, green, blue = (pixels(astronaut)[..., i].astype(float) for i in range(3))
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    assert np.abs(pixels(gray) - luma).max() <= 1
    with_a = apply_operations(with_alpha(astronaut, 77), [Grayscale()])
    assert with_a.mode == "LA" and set(pixels(with_a.getchannel("A")).flat) == {77}


def test_blur_softens_more_with_a_larger_radius(chelsea: Image.Image) -> None:
    light, heavy = (apply_operations(chelsea, [Blur(r)]) for r in (1, 8))
    assert light.size == heavy.size == chelsea.size
    assert edge_energy(heavy) < edge_energy(light) < edge_energy(chelsea)
    # A blur moves colour around but keeps the average.
    assert np.abs(pixels(heavy).mean(axis=(0, 1)) - pixels(chelsea).mean(axis=(0, 1))).max() < 2


def test_blur_does_not_darken_the_edge_of_a_cut_out() -> None:
    cut_out = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    cut_out.paste((255, 255, 255, 255), (50, 0, 100, 100))  # white subject, transparent black
    blurred = apply_operations(cut_out, [Blur(5)])
    red, _, _, alpha = blurred.getpixel((48, 50))  # type: ignore[misc]
    assert 0 < alpha < 255  # the edge became soft...
    assert red > 240  # ...and stayed white, not gray


def test_sharpen_raises_edge_contrast_and_keeps_alpha(coffee: Image.Image) -> None:
    sharpened = apply_operations(coffee, [Sharpen(2.0, 300, 0)])
    assert sharpened.size == coffee.size and sharpened.mode == "RGB"
    assert edge_energy(sharpened) > edge_energy(coffee) * 1.2
    rgba = apply_operations(with_alpha(coffee, 90), [Sharpen()])
    assert rgba.mode == "RGBA" and set(pixels(rgba.getchannel("A")).flat) == {90}


def test_adjust_factors(astronaut: Image.Image) -> None:
    assert pixels(apply_operations(astronaut, [Adjust(brightness=0)])).max() == 0
    brighter = apply_operations(astronaut, [Adjust(brightness=1.5)])
    assert pixels(brighter).mean() > pixels(astronaut).mean() * 1.3
    flat = pixels(apply_operations(astronaut, [Adjust(contrast=0)]))
    assert len(np.unique(flat.reshape(-1, 3), axis=0)) == 1  # one gray
    gray = pixels(apply_operations(astronaut, [Adjust(saturation=0)]))
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert np.array_equal(pixels(apply_operations(astronaut, [Adjust()])), pixels(astronaut))


def test_adjust_keeps_alpha(astronaut: Image.Image) -> None:
    result = apply_operations(with_alpha(astronaut, 33), [Adjust(0.0, 2.0, 0.0)])
    assert result.mode == "RGBA"
    assert set(pixels(result.getchannel("A")).flat) == {33}
    assert pixels(result)[..., :3].max() == 0


# -- the registry -----------------------------------------------------------------------------


def test_a_pipeline_of_every_operation_keeps_metadata(chelsea: Image.Image) -> None:
    source = chelsea.copy()
    source.info = {"exif": b"Exif\x00\x00fake", "icc_profile": b"profile"}
    result = apply_operations(
        source,
        [
            Resize(300, 300),
            Crop(200, 150, gravity=Gravity.CENTER),
            Rotate(10, expand=True),
            Flip(),
            Flop(),
            Blur(1),
            Sharpen(),
            Adjust(1.1, 1.1, 1.1),
            Grayscale(),
        ],
    )
    assert result.mode == "LA"
    assert result.info["exif"] == b"Exif\x00\x00fake"
    assert result.info["icc_profile"] == b"profile"


def test_a_registry_can_be_passed_in(astronaut: Image.Image) -> None:
    def fake_cut_out(image: Image.Image, op: RemoveBackground) -> Image.Image:
        return with_alpha(image, 0)

    with pytest.raises(InvalidArgument) as caught:
        apply_operations(astronaut, [RemoveBackground()])
    assert caught.value.reason == "OPERATION_UNSUPPORTED"
    registry = {**OPERATIONS, RemoveBackground: fake_cut_out}
    result = apply_operations(astronaut, [Flop(), RemoveBackground()], registry)
    assert result.mode == "RGBA" and result.getchannel("A").getextrema() == (0, 0)
