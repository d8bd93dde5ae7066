"""The preset styles: every advertised name works, keeps size and alpha, is deterministic and
visibly changes a colour picture."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.styles import PRESET_STYLES
from imageeditor.workers.styles import PresetStyles

STYLES = PresetStyles()


def picture(mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (48, 32), (230, 230, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 30, 24), fill=(180, 40, 40))
    draw.ellipse((26, 4, 44, 22), fill=(30, 120, 200))
    if mode in ("LA", "RGBA"):
        image.putalpha(Image.linear_gradient("L").resize(image.size))
    return image.convert(mode)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per RGB channel value, 0-255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def test_the_issue_names_every_preset() -> None:
    expected = {"grayscale", "sepia", "vintage", "sketch", "posterize", "cartoon", "vivid"}
    assert set(PRESET_STYLES) == expected


@pytest.mark.parametrize("name", PRESET_STYLES)
@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_every_preset_keeps_size_and_alpha_and_is_deterministic(name: str, mode: str) -> None:
    source = picture(mode)
    first, second = STYLES.apply(source, name), STYLES.apply(source.copy(), name)
    assert first.size == source.size
    assert first.mode == second.mode
    assert first.tobytes() == second.tobytes()
    assert first.mode in ("L", "LA", "RGB", "RGBA")
    has_alpha = mode in ("LA", "RGBA")
    assert ("A" in first.getbands()) == has_alpha
    if has_alpha:
        assert first.getchannel("A").tobytes() == source.getchannel("A").tobytes()


@pytest.mark.parametrize("name", PRESET_STYLES)
def test_every_preset_visibly_changes_a_colour_picture(name: str) -> None:
    source = picture()
    assert mean_difference(STYLES.apply(source, name), source) > 8


def test_presets_differ_from_each_other() -> None:
    results = {
        name: STYLES.apply(picture(), name).convert("RGB").tobytes() for name in PRESET_STYLES
    }
    assert len(set(results.values())) == len(PRESET_STYLES)


def test_grayscale_and_sketch_are_gray() -> None:
    assert STYLES.apply(picture("RGBA"), "grayscale").mode == "LA"
    assert STYLES.apply(picture(), "sketch").mode == "L"


def test_sepia_tints_brown() -> None:
    gray = Image.new("RGB", (2, 2), (128, 128, 128))
    red, green, blue = STYLES.apply(gray, "sepia").getpixel((0, 0))  # type: ignore[misc]
    assert red > green > blue


def test_vintage_fades_the_blacks_and_darkens_the_corners() -> None:
    black = STYLES.apply(Image.new("RGB", (64, 64)), "vintage")
    assert min(black.getpixel((32, 32))) > 10  # type: ignore[arg-type]
    white = STYLES.apply(Image.new("RGB", (64, 64), (255, 255, 255)), "vintage")
    centre, corner = white.getpixel((32, 32)), white.getpixel((0, 0))
    assert sum(corner) < sum(centre) - 60  # type: ignore[arg-type]


def test_cartoon_outlines_edges_and_flattens_colours() -> None:
    source = Image.new("RGB", (64, 64), (200, 170, 120))
    ImageDraw.Draw(source).rectangle((16, 16, 47, 47), fill=(40, 90, 160))
    result = STYLES.apply(source, "cartoon")
    assert result.getpixel((16, 32)) == (0, 0, 0)  # the outline
    inside = result.crop((24, 24, 40, 40)).getcolors()
    assert inside is not None and len(inside) == 1  # one flat colour


def test_posterize_leaves_few_levels() -> None:
    result = STYLES.apply(Image.linear_gradient("L").convert("RGB"), "posterize")
    colours = result.getchannel("R").getcolors()
    assert colours is not None
    assert len(colours) <= 8


def test_sketch_turns_flat_areas_white_and_keeps_edges_dark() -> None:
    source = Image.new("RGB", (64, 64), (120, 120, 120))
    ImageDraw.Draw(source).rectangle((20, 20, 44, 44), fill=(20, 20, 20))
    result = STYLES.apply(source, "sketch")
    assert result.getpixel((2, 2)) == 255
    edge = result.getpixel((20, 32))
    assert isinstance(edge, int) and edge < 200


def test_prompt_is_normalised() -> None:
    assert (
        STYLES.apply(picture(), " VIVID ").tobytes() == STYLES.apply(picture(), "vivid").tobytes()
    )


def test_unknown_style_is_refused_with_the_list() -> None:
    with pytest.raises(InvalidArgument) as caught:
        STYLES.apply(picture(), "van gogh")
    assert caught.value.reason == "STYLE_UNSUPPORTED"
    assert "cartoon" in caught.value.field_violations["style_prompt"]
