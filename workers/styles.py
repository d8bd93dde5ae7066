"""The built-in `presets` style backend: each name in PRESET_STYLES as a Pillow effect.

Deterministic pure functions (same image in, same pixels out), so results can be cached and
tested byte for byte. Every style keeps the image's alpha channel.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageEnhance, ImageFilter, ImageMath, ImageOps

from editcore.errors import InvalidArgument
from editcore.spec import Grayscale
from editcore.styles import PRESET_STYLES, normalize_prompt
from workers.operations import grayscale

# The classic sepia tone matrix (Microsoft's): rows give the new R, G and B.
_SEPIA_MATRIX = (
    0.393, 0.769, 0.189, 0.0,
    0.349, 0.686, 0.168, 0.0,
    0.272, 0.534, 0.131, 0.0,
)  # fmt: skip
_POSTERIZE_BITS = 3  # 8 levels per channel: clearly posterized, still recognisable
_VIVID_SATURATION = 1.5
_VIVID_CONTRAST = 1.15
_SKETCH_BLUR_RADIUS = 8.0


def _sepia(rgb: Image.Image) -> Image.Image:
    return rgb.convert("RGB", matrix=_SEPIA_MATRIX)


def _posterize(rgb: Image.Image) -> Image.Image:
    return ImageOps.posterize(rgb, _POSTERIZE_BITS)


def _vivid(rgb: Image.Image) -> Image.Image:
    saturated = ImageEnhance.Color(rgb).enhance(_VIVID_SATURATION)
    return ImageEnhance.Contrast(saturated).enhance(_VIVID_CONTRAST)


def _sketch(rgb: Image.Image) -> Image.Image:
    """A pencil sketch: the gray image colour-dodged with its blurred negative, which keeps
    edges dark and turns flat areas white."""
    gray = rgb.convert("L")
    blurred_negative = ImageOps.invert(gray).filter(ImageFilter.GaussianBlur(_SKETCH_BLUR_RADIUS))
    return ImageMath.lambda_eval(  # type: ignore[no-any-return]
        # dodge: base / (1 - blend), on 0-255 integers; max() keeps the divisor nonzero.
        lambda a: a["convert"](a["min"](a["base"] * 255 / a["max"](255 - a["blend"], 1), 255), "L"),
        base=gray,
        blend=blurred_negative,
    )


_STYLES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "grayscale": lambda rgb: grayscale(rgb, Grayscale()),
    "sepia": _sepia,
    "posterize": _posterize,
    "vivid": _vivid,
    "sketch": _sketch,
}


def apply_style(image: Image.Image, prompt: str) -> Image.Image:
    """`image` in the named preset style; InvalidArgument(STYLE_UNSUPPORTED) for other names."""
    name = normalize_prompt(prompt)
    effect = _STYLES.get(name)
    if effect is None:
        message = f"unknown style {name!r}; the presets are: {', '.join(PRESET_STYLES)}"
        raise InvalidArgument(
            message, field_violations={"style_prompt": message}, reason="STYLE_UNSUPPORTED"
        )
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    styled = effect(image.convert("RGB"))
    if alpha is not None:
        styled.putalpha(alpha)  # L becomes LA, RGB becomes RGBA
    styled.info = dict(image.info)
    return styled
