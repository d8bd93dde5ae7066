"""The preset styles: every advertised name works, keeps alpha and is deterministic."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from editcore.errors import InvalidArgument
from editcore.styles import PRESET_STYLES, normalize_prompt
from workers.styles import apply_style


def picture(mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (48, 32), (230, 230, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 30, 24), fill=(180, 40, 40))
    draw.ellipse((26, 4, 44, 22), fill=(30, 120, 200))
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(image.size))
    return image.convert(mode)


def test_normalize_prompt() -> None:
    assert normalize_prompt("  Sepia\n") == "sepia"


@pytest.mark.parametrize("name", PRESET_STYLES)
@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_every_preset_keeps_size_and_alpha_and_is_deterministic(name: str, mode: str) -> None:
    source = picture(mode)
    first, second = apply_style(source, name), apply_style(source, name)
    assert first.size == source.size
    assert first.tobytes() == second.tobytes()
    assert first.mode in ("L", "LA", "RGB", "RGBA")
    has_alpha = mode in ("LA", "RGBA")
    assert ("A" in first.getbands()) == has_alpha
    if has_alpha:
        assert first.getchannel("A").tobytes() == source.getchannel("A").tobytes()


@pytest.mark.parametrize("name", [n for n in PRESET_STYLES if n != "grayscale"])
def test_presets_change_a_colour_picture(name: str) -> None:
    source = picture()
    assert apply_style(source, name).convert("RGB").tobytes() != source.tobytes()


def test_grayscale_and_sketch_are_gray() -> None:
    assert apply_style(picture("RGBA"), "grayscale").mode == "LA"
    assert apply_style(picture(), "sketch").mode == "L"


def test_sepia_tints_brown() -> None:
    red, green, blue = apply_style(Image.new("RGB", (2, 2), (128, 128, 128)), "sepia").getpixel(
        (0, 0)
    )  # type: ignore[misc]
    assert red > green > blue


def test_posterize_leaves_few_levels() -> None:
    result = apply_style(Image.linear_gradient("L").convert("RGB"), "posterize")
    colours = result.getchannel("R").getcolors()
    assert colours is not None
    assert len(colours) <= 8


def test_sketch_turns_flat_areas_white_and_keeps_edges_dark() -> None:
    source = Image.new("RGB", (64, 64), (120, 120, 120))
    ImageDraw.Draw(source).rectangle((20, 20, 44, 44), fill=(20, 20, 20))
    result = apply_style(source, "sketch")
    assert result.getpixel((2, 2)) == 255
    edge = result.getpixel((20, 32))
    assert isinstance(edge, int) and edge < 200


def test_prompt_is_normalised() -> None:
    assert apply_style(picture(), " VIVID ").tobytes() == apply_style(picture(), "vivid").tobytes()


def test_unknown_style_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_style(picture(), "van gogh")
    assert caught.value.reason == "STYLE_UNSUPPORTED"
    assert "style_prompt" in caught.value.field_violations
