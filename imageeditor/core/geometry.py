"""The size every operation gives an image, computed without touching a pixel.

The worker's operations (workers.operations) take their geometry from here, so what the
server predicts at submit and what the worker checks before each step is what the step
makes. `check_output_sizes` walks an operation list from a source size and refuses the first
step whose result would exceed the output caps: the server calls it at submit for inline
images (their header gives the size), and the worker before every operation, for every
source, before the memory is spent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import Crop, Operation, Resize, ResizeFit, Rotate

Size = tuple[int, int]
Region = tuple[float, float, float, float]


def output_size(op: Operation, size: Size) -> Size:
    """The size of the image `op` makes from an image of `size`."""
    if isinstance(op, Resize):
        box = target_box(size, op)
        if op.fit is ResizeFit.CONTAIN:
            return box  # padded to the whole box
        return resize_geometry(size, box, op.fit, op.allow_upscale)[0]
    if isinstance(op, Crop):
        if op.gravity is None:
            return (op.width, op.height)
        return (min(max(op.width, 1), size[0]), min(max(op.height, 1), size[1]))
    if isinstance(op, Rotate):
        return rotated_size(size, op.degrees, op.expand)
    # Flip, flop, grayscale, blur, sharpen, adjust and background removal keep the size.
    return size


def target_box(source: Size, op: Resize) -> Size:
    """op's (width, height) box, a zero side following the source's aspect ratio."""
    width, height = source
    if op.width and op.height:
        return (op.width, op.height)
    if op.width:
        return (op.width, max(1, round(height * op.width / width)))
    if op.height:
        return (max(1, round(width * op.height / height)), op.height)
    return source


def resize_geometry(
    source: Size, box: Size, fit: ResizeFit, allow_upscale: bool
) -> tuple[Size, Region]:
    """The output size of a resize into `box` and the source region it is taken from (see
    workers.operations.resize for the fits)."""
    width, height = source
    scale_x, scale_y = box[0] / width, box[1] / height
    whole = (0.0, 0.0, float(width), float(height))
    if fit in (ResizeFit.INSIDE, ResizeFit.CONTAIN):
        scale = min(scale_x, scale_y)
        if not allow_upscale:
            scale = min(scale, 1.0)
        return (_side(width * scale), _side(height * scale)), whole
    cover = max(scale_x, scale_y)
    if not allow_upscale and cover > 1:
        box, cover = (_side(box[0] / cover), _side(box[1] / cover)), 1.0
    if fit is ResizeFit.FILL:
        return box, whole
    # COVER: the centred region of the source with the box's aspect ratio.
    crop_w, crop_h = min(width, box[0] / cover), min(height, box[1] / cover)
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return box, (left, top, left + crop_w, top + crop_h)


def rotated_size(size: Size, degrees: float, expand: bool) -> Size:
    """The size of an image of `size` turned `degrees` counter-clockwise: the same without
    `expand` (Pillow's canvas), else the bounding box as Pillow's Image.rotate computes it."""
    angle = degrees % 360.0
    width, height = size
    quarters, remainder = divmod(angle, 90.0)
    if remainder == 0:
        turned = int(quarters) % 2 == 1 and (expand or width == height)
        return (height, width) if turned else size
    if not expand:
        return size
    radians = -math.radians(angle)
    cos, sin = round(math.cos(radians), 15), round(math.sin(radians), 15)
    # The corners through Pillow's matrix about the centre (its translation cancels out of
    # the spans, but is kept so the floating point matches Pillow's to the last bit).
    cx, cy = width / 2, height / 2
    tx = cos * -cx + sin * -cy + cx
    ty = -sin * -cx + cos * -cy + cy
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    xs = [cos * x + sin * y + tx for x, y in corners]
    ys = [-sin * x + cos * y + ty for x, y in corners]
    return (
        math.ceil(max(xs)) - math.floor(min(xs)),
        math.ceil(max(ys)) - math.floor(min(ys)),
    )


def check_output_sizes(
    size: Size | None,
    operations: Iterable[Operation],
    *,
    max_pixels: int,
    max_side: int,
    field: str = "operations",
) -> Size | None:
    """The final size of `operations` applied to an image of `size`; InvalidArgument
    (OUTPUT_TOO_LARGE, a violation on `field[i]`) at the first step whose result has more
    than `max_pixels` pixels or a side longer than `max_side`.

    With `size` None (a source not fetched yet), the sizes are known from the first step
    that makes one whatever the source (`fixed_size`) on; the steps before it are left to
    the worker, which checks every step again with the real size."""
    for index, op in enumerate(operations):
        size = output_size(op, size) if size is not None else fixed_size(op)
        if size is not None:
            where = f"{field}[{index}]"
            check_size(size, max_pixels=max_pixels, max_side=max_side, where=where)
    return size


def fixed_size(op: Operation) -> Size | None:
    """The size `op` makes whatever image it is given, or None if that depends on the
    image: a crop box, and a resize to a whole box that pads (CONTAIN) or may enlarge."""
    if isinstance(op, Crop) and op.gravity is None:
        return (op.width, op.height)
    if not (isinstance(op, Resize) and op.width and op.height):
        return None
    pads = op.fit is ResizeFit.CONTAIN
    fills = op.allow_upscale and op.fit in (ResizeFit.COVER, ResizeFit.FILL)
    return (op.width, op.height) if pads or fills else None


def check_size(size: Size, *, max_pixels: int, max_side: int, where: str) -> None:
    """InvalidArgument (OUTPUT_TOO_LARGE, a violation on `where`) if `size` is over a cap."""
    width, height = size
    if width * height > max_pixels or max(width, height) > max_side:
        problem = (
            f"would make the image {width}x{height} ({width * height} pixels); the limits"
            f" are {max_pixels} pixels and {max_side} pixels a side"
        )
        raise InvalidArgument(
            f"{where} {problem}", field_violations={where: problem}, reason="OUTPUT_TOO_LARGE"
        )


def _side(value: float) -> int:
    return max(1, round(value))
