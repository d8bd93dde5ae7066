"""The built-in `presets` style backend: each name in PRESET_STYLES as a Pillow effect.

Deterministic pure functions (same image in, same pixels out), so results can be cached and
tested byte for byte. Every style keeps the image's size and alpha channel.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageMath, ImageOps

from imageeditor.core.styles import PRESET_STYLES, StyleCapability

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
_VINTAGE_SEPIA_MIX = 0.6  # part sepia, part faded colour
_VINTAGE_CONTRAST = 0.85
_VINTAGE_FADE = 28  # blacks lifted to this level, as on an old print
_VINTAGE_VIGNETTE = 0.4  # how much the corners darken
# A blur, not a median filter: a 5x5 median takes ~10 s on a noisy 12 MP photo.
_CARTOON_SMOOTHING_RADIUS = 1.5
_CARTOON_BITS = 3
_CARTOON_SATURATION = 1.4
_CARTOON_EDGE_THRESHOLD = 32  # edge strength (see _edge_strength) drawn as an outline
_SOBEL_X = (-1, 0, 1, -2, 0, 2, -1, 0, 1)
_SOBEL_Y = (-1, -2, -1, 0, 0, 0, 1, 2, 1)


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


def _vintage(rgb: Image.Image) -> Image.Image:
    """An old print: warm sepia mixed into the colours, soft contrast, faded blacks and
    darkened corners."""
    toned = Image.blend(rgb, _sepia(rgb), _VINTAGE_SEPIA_MIX)
    toned = ImageEnhance.Contrast(toned).enhance(_VINTAGE_CONTRAST)
    scale = (255 - _VINTAGE_FADE) / 255
    faded = toned.point(lambda v: _VINTAGE_FADE + v * scale)
    # radial_gradient is 0 at the centre and 255 at the edge; turn it into a multiplier that
    # is 255 (no change) in the middle and darker towards the corners.
    falloff = Image.radial_gradient("L").point(lambda v: 255 - int(v * v / 255 * _VINTAGE_VIGNETTE))
    vignette = falloff.resize(rgb.size, Image.Resampling.BILINEAR).convert("RGB")
    return ImageChops.multiply(faded, vignette)


def _cartoon(rgb: Image.Image) -> Image.Image:
    """Flat, saturated colour areas with dark outlines where the picture has edges."""
    smooth = rgb.filter(ImageFilter.GaussianBlur(_CARTOON_SMOOTHING_RADIUS))
    flat = ImageEnhance.Color(ImageOps.posterize(smooth, _CARTOON_BITS)).enhance(
        _CARTOON_SATURATION
    )
    outline = _edge_strength(smooth.convert("L")).point(
        lambda v: 255 if v > _CARTOON_EDGE_THRESHOLD else 0
    )
    return Image.composite(Image.new("RGB", rgb.size), flat, outline)


def _edge_strength(gray: Image.Image) -> Image.Image:
    """|dx| + |dy| by Sobel kernels, scaled so a sharp step of n gray levels gives about n."""
    dx, dy = (
        gray.filter(ImageFilter.Kernel((3, 3), kernel, scale=4, offset=128)).point(
            lambda v: abs(v - 128)  # the kernels' signed result, centred on 128 by `offset`
        )
        for kernel in (_SOBEL_X, _SOBEL_Y)
    )
    return ImageChops.add(dx, dy)


_STYLES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "grayscale": lambda rgb: rgb.convert("L"),  # ITU-R 601-2 luma, as the grayscale operation
    "sepia": _sepia,
    "vintage": _vintage,
    "sketch": _sketch,
    "posterize": _posterize,
    "cartoon": _cartoon,
    "vivid": _vivid,
}


class PresetStyles:
    """The `presets` StyleGenerator: named Pillow styles, no network, no model."""

    capability = StyleCapability(backend="presets", presets=PRESET_STYLES)

    def apply(self, image: Image.Image, prompt: str) -> Image.Image:
        """`image` in the named preset style; InvalidArgument(STYLE_UNSUPPORTED) for other
        names (the server refuses them at submit time already)."""
        name = self.capability.check(prompt)
        if not name:
            return image
        effect = _STYLES[name]
        alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
        styled = effect(image.convert("RGB"))
        if alpha is not None:
            styled.putalpha(alpha)  # L becomes LA, RGB becomes RGBA
        styled.info = dict(image.info)
        return styled
