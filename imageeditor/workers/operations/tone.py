"""Operations that change pixel values in place: grayscale, blur, sharpen and adjust.

Each keeps the image's size and alpha channel. Blur works on premultiplied alpha, so the
colour of fully transparent pixels (often black) does not bleed into the visible edge;
sharpen and adjust leave the alpha channel exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageEnhance, ImageFilter

from imageeditor.core.spec import Adjust, Blur, Grayscale, Sharpen

_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


def grayscale(image: Image.Image, op: Grayscale) -> Image.Image:
    """`image` in gray (ITU-R 601-2 luma), keeping its alpha channel: L or LA."""
    if image.mode in ("L", "LA"):
        return image
    return image.convert("LA" if "A" in image.getbands() else "L")


def blur(image: Image.Image, op: Blur) -> Image.Image:
    """`image` with a Gaussian blur of op.radius pixels (alpha blurred with it)."""
    blurred = image.convert(_PREMULTIPLIED[image.mode]) if image.mode in _PREMULTIPLIED else image
    blurred = blurred.filter(ImageFilter.GaussianBlur(op.radius))
    return blurred.convert(image.mode) if blurred.mode != image.mode else blurred


def sharpen(image: Image.Image, op: Sharpen) -> Image.Image:
    """`image` through an unsharp mask (radius, percent, threshold as in Pillow)."""
    mask = ImageFilter.UnsharpMask(op.radius, op.percent, op.threshold)
    return _on_colour(image, lambda colour: colour.filter(mask))


def adjust(image: Image.Image, op: Adjust) -> Image.Image:
    """`image` with brightness, contrast and saturation scaled, in that order; a factor of 1
    changes nothing, 0 gives black, flat gray and grayscale respectively."""
    steps = (
        (ImageEnhance.Brightness, op.brightness),
        (ImageEnhance.Contrast, op.contrast),
        (ImageEnhance.Color, op.saturation),
    )

    def enhance(colour: Image.Image) -> Image.Image:
        for enhancer, factor in steps:
            if factor != 1.0:
                colour = enhancer(colour).enhance(factor)
        return colour

    return _on_colour(image, enhance)


def _on_colour(image: Image.Image, change: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """`change` applied to the colour bands only, the alpha channel put back untouched."""
    if "A" not in image.getbands():
        return change(image)
    colour = change(image.convert(image.mode[:-1]))
    colour.putalpha(image.getchannel("A"))
    colour.info = dict(image.info)
    return colour
