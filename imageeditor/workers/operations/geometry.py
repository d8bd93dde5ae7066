"""Operations that move pixels without changing their values: crop, rotate, flip and flop.

Rotation by a multiple of 90 degrees is a transpose (every pixel kept exactly); any other angle
resamples bicubically, and the corners it uncovers take the fill colour, transparent when none
is given (an opaque image then gains an alpha channel). Without `expand` the canvas keeps its
size, so a rotated image loses what falls outside it (as in Pillow).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import Color, Crop, Flip, Flop, Gravity, Rotate

# Where a gravity puts the crop, in halves of the spare room on each axis (0 left/top,
# 1 centre, 2 right/bottom).
_GRAVITY_HALVES: dict[Gravity, tuple[int, int]] = {
    Gravity.NORTH_WEST: (0, 0),
    Gravity.NORTH: (1, 0),
    Gravity.NORTH_EAST: (2, 0),
    Gravity.WEST: (0, 1),
    Gravity.CENTER: (1, 1),
    Gravity.EAST: (2, 1),
    Gravity.SOUTH_WEST: (0, 2),
    Gravity.SOUTH: (1, 2),
    Gravity.SOUTH_EAST: (2, 2),
}
_QUARTER_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}
_TRANSPARENT: Color = (0, 0, 0, 0)


def crop(image: Image.Image, op: Crop) -> Image.Image:
    """The region op names: its box, which must lie within the image (CROP_OUTSIDE_IMAGE
    otherwise: the request cannot know the image's size, so only the worker can tell), or its
    size, clamped to the image, placed by its gravity."""
    width, height = image.size
    if op.gravity is None:
        right, bottom = op.left + op.width, op.top + op.height
        if op.width < 1 or op.height < 1 or right > width or bottom > height:
            raise InvalidArgument(
                f"the crop box {op.width}x{op.height}+{op.left}+{op.top} does not lie within"
                f" the {width}x{height} image",
                reason="CROP_OUTSIDE_IMAGE",
            )
        return image.crop((op.left, op.top, right, bottom))
    crop_w, crop_h = min(max(op.width, 1), width), min(max(op.height, 1), height)
    across, down = _GRAVITY_HALVES[op.gravity]
    left, top = (width - crop_w) * across // 2, (height - crop_h) * down // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def rotate(image: Image.Image, op: Rotate) -> Image.Image:
    """`image` turned op.degrees counter-clockwise; see the module docstring."""
    degrees = op.degrees % 360.0
    quarters, remainder = divmod(degrees, 90.0)
    if remainder == 0 and quarters == 0:
        return image
    if remainder == 0 and (op.expand or quarters == 2 or image.width == image.height):
        return image.transpose(_QUARTER_TURNS[int(quarters)])  # nothing uncovered, nothing lost
    fill = op.fill or _TRANSPARENT
    image = _mode_for_fill(image, fill)
    fill_value = _fill_value(fill, image.mode)
    if remainder == 0:
        # A quarter turn of a non-square image on its own canvas: transpose, then centre.
        turned = image.transpose(_QUARTER_TURNS[int(quarters)])
        canvas = Image.new(image.mode, image.size, fill_value)
        offset = ((image.width - turned.width) // 2, (image.height - turned.height) // 2)
        canvas.paste(turned, offset)
        canvas.info = dict(image.info)
        return canvas
    return image.rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=op.expand, fillcolor=fill_value
    )


def flip(image: Image.Image, op: Flip) -> Image.Image:
    """`image` mirrored top to bottom."""
    return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def flop(image: Image.Image, op: Flop) -> Image.Image:
    """`image` mirrored left to right."""
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _mode_for_fill(image: Image.Image, fill: Color) -> Image.Image:
    """`image` in a mode that can show `fill`: with alpha if the fill is not opaque, in
    colour if the fill is not gray."""
    red, green, blue, alpha = fill
    has_alpha = image.mode in ("LA", "RGBA") or alpha < 255
    gray = image.mode in ("L", "LA") and red == green == blue
    mode = ("LA" if has_alpha else "L") if gray else ("RGBA" if has_alpha else "RGB")
    return image if image.mode == mode else image.convert(mode)


def _fill_value(fill: Color, mode: str) -> Any:
    red, green, blue, alpha = fill
    return {"L": red, "LA": (red, alpha), "RGB": (red, green, blue), "RGBA": fill}[mode]
