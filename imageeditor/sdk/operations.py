"""Edit steps (`Operation` messages) from friendly Python arguments, one builder per operation.

Pass them to `Client.submit(operations=[...])`; they apply in the order given. Mistakes a
client can see on its own raise the same `InvalidArgument` the server would, with field paths
under "operations" (the server's own paths also carry the step's index).
"""

from __future__ import annotations

import math
import string

from imageeditor.core.errors import InvalidArgument
from imageeditor.v1 import operations_pb2

ColorLike = str | tuple[int, int, int] | tuple[int, int, int, int]
"""A colour: "RRGGBB" or "RRGGBBAA" in hex (a leading # is fine), or an (r, g, b[, a]) tuple
of 0-255; without alpha it is opaque."""

FITS = {
    "inside": operations_pb2.RESIZE_FIT_INSIDE,
    "contain": operations_pb2.RESIZE_FIT_CONTAIN,
    "cover": operations_pb2.RESIZE_FIT_COVER,
    "fill": operations_pb2.RESIZE_FIT_FILL,
}
GRAVITIES = {
    "center": operations_pb2.GRAVITY_CENTER,
    "north": operations_pb2.GRAVITY_NORTH,
    "north_east": operations_pb2.GRAVITY_NORTH_EAST,
    "east": operations_pb2.GRAVITY_EAST,
    "south_east": operations_pb2.GRAVITY_SOUTH_EAST,
    "south": operations_pb2.GRAVITY_SOUTH,
    "south_west": operations_pb2.GRAVITY_SOUTH_WEST,
    "west": operations_pb2.GRAVITY_WEST,
    "north_west": operations_pb2.GRAVITY_NORTH_WEST,
}

Operation = operations_pb2.Operation


def resize_operation(
    width: int, height: int, fit: str = "inside", *, allow_upscale: bool = False
) -> Operation:
    """A Resize step into a width x height box (0 for a side keeps the aspect ratio)."""
    if fit not in FITS:
        raise _invalid("operations.resize.fit", f"{fit!r} is not one of {', '.join(FITS)}")
    if width < 0 or height < 0:
        raise _invalid("operations.resize", "width and height must not be negative")
    resize = operations_pb2.Resize(
        width=width, height=height, fit=FITS[fit], allow_upscale=allow_upscale
    )
    return Operation(resize=resize)


def grayscale_operation() -> Operation:
    """A Grayscale step (an alpha channel is kept)."""
    return Operation(grayscale=operations_pb2.Grayscale())


def crop_operation(
    width: int, height: int, *, left: int = 0, top: int = 0, gravity: str | None = None
) -> Operation:
    """A Crop step: the width x height box at (left, top), which must lie within the image; or,
    with `gravity` ("center", "north", "south_east", ...), that size placed by gravity and
    clamped to the image."""
    if width < 1 or height < 1:
        raise _invalid("operations.crop", "width and height must be greater than 0")
    if gravity is None:
        if left < 0 or top < 0:
            raise _invalid("operations.crop.box", "left and top must not be negative")
        box = operations_pb2.Box(left=left, top=top, width=width, height=height)
        return Operation(crop=operations_pb2.Crop(box=box))
    key = gravity.lower().replace("-", "_")
    if key not in GRAVITIES:
        names = ", ".join(GRAVITIES)
        raise _invalid("operations.crop.size.gravity", f"{gravity!r} is not one of {names}")
    size = operations_pb2.GravitySize(width=width, height=height, gravity=GRAVITIES[key])
    return Operation(crop=operations_pb2.Crop(size=size))


def rotate_operation(
    degrees: float, *, expand: bool = False, fill: ColorLike | None = None
) -> Operation:
    """A Rotate step, counter-clockwise. `expand` grows the canvas to hold the whole image;
    `fill` colours the uncovered corners (transparent if None)."""
    if not math.isfinite(degrees):
        raise _invalid("operations.rotate.degrees", "must be a finite number")
    rotate = operations_pb2.Rotate(degrees=degrees, expand=expand)
    if fill is not None:
        rotate.fill.CopyFrom(color_message(fill, "operations.rotate.fill"))
    return Operation(rotate=rotate)


def flip_operation() -> Operation:
    """A Flip step: mirror top to bottom."""
    return Operation(flip=operations_pb2.Flip())


def flop_operation() -> Operation:
    """A Flop step: mirror left to right."""
    return Operation(flop=operations_pb2.Flop())


def blur_operation(radius: float) -> Operation:
    """A Gaussian Blur step of `radius` pixels (greater than 0, at most 250)."""
    if not 0 < radius <= 250:
        raise _invalid("operations.blur.radius", "greater than 0 and at most 250")
    return Operation(blur=operations_pb2.Blur(radius=radius))


def sharpen_operation(radius: float = 2.0, percent: int = 150, threshold: int = 3) -> Operation:
    """An unsharp-mask Sharpen step: radius in pixels, strength in percent (at most 1000),
    threshold the smallest brightness change sharpened (0-255)."""
    if not 0 < radius <= 250:
        raise _invalid("operations.sharpen.radius", "greater than 0 and at most 250")
    if not 0 < percent <= 1000:
        raise _invalid("operations.sharpen.percent", "between 1 and 1000")
    if not 0 <= threshold <= 255:
        raise _invalid("operations.sharpen.threshold", "between 0 and 255")
    sharpen = operations_pb2.Sharpen(radius=radius, percent=percent, threshold=threshold)
    return Operation(sharpen=sharpen)


def adjust_operation(
    *, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0
) -> Operation:
    """An Adjust step. Each factor is in (0, 10]: 1 leaves the image as it is, 2 doubles, and
    values near 0 give black, flat gray and grayscale (0 itself cannot be sent: on the wire it
    means "unset")."""
    adjust = operations_pb2.Adjust()
    for name, factor in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("saturation", saturation),
    ):
        if not 0 < factor <= 10:
            raise _invalid(f"operations.adjust.{name}", "greater than 0 and at most 10")
        setattr(adjust, name, factor)
    return Operation(adjust=adjust)


def remove_background_operation(
    model: str = "", alpha_matting: bool = False, background: ColorLike | None = None
) -> Operation:
    """A RemoveBackground step: `model` is a rembg model name ("" for the server's default),
    `alpha_matting` refines the edge, `background` replaces the transparent background."""
    remove = operations_pb2.RemoveBackground(model=model, alpha_matting=alpha_matting)
    if background is not None:
        remove.background.CopyFrom(
            color_message(background, "operations.remove_background.background")
        )
    return Operation(remove_background=remove)


def color_message(value: ColorLike, field: str = "color") -> operations_pb2.Color:
    """The Color message of a ColorLike; InvalidArgument naming `field` if it is not one."""
    channels: tuple[int, ...]
    if isinstance(value, str):
        text = value.removeprefix("#")
        if len(text) not in (6, 8) or not all(c in string.hexdigits for c in text):
            raise _invalid(field, f"{value!r} is not RRGGBB or RRGGBBAA in hex")
        channels = tuple(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
    else:
        channels = tuple(value)
        if len(channels) not in (3, 4) or not all(0 <= c <= 255 for c in channels):
            raise _invalid(field, f"{value!r} is not (r, g, b) or (r, g, b, a), each 0-255")
    red, green, blue, alpha = (*channels, 255) if len(channels) == 3 else channels
    return operations_pb2.Color(red=red, green=green, blue=blue, alpha=alpha)


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"invalid {field}", field_violations={field: description})
