"""The edit operations: one pure function (image, op) -> image per operation type.

`OPERATIONS` is the default registry, from spec type to function; the pipeline may pass a
registry of its own to `apply_operations`, extended with operations that hold resources (the
rembg session behind RemoveBackground). Adding an operation means adding its spec type in
imageeditor.core.spec and a function in one of these modules:

    resize    resize (the four fits)
    geometry  crop, rotate, flip, flop
    tone      grayscale, blur, sharpen, adjust

Images arrive in one of the modes decode produces (L, LA, RGB, RGBA) and leave in one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.geometry import check_size, output_size
from imageeditor.core.spec import (
    Adjust,
    Blur,
    Crop,
    Flip,
    Flop,
    Grayscale,
    Operation,
    Resize,
    Rotate,
    Sharpen,
)
from imageeditor.workers.operations.geometry import crop, flip, flop, rotate
from imageeditor.workers.operations.resize import resize
from imageeditor.workers.operations.tone import adjust, blur, grayscale, sharpen

OperationFunction = Callable[[Image.Image, Any], Image.Image]
"""An operation: the image and its spec in, a new image out (the input is never changed)."""

Registry = Mapping[type[Any], OperationFunction]
"""Which function carries out each operation type."""

OPERATIONS: Registry = {
    Resize: resize,
    Grayscale: grayscale,
    Crop: crop,
    Rotate: rotate,
    Flip: flip,
    Flop: flop,
    Blur: blur,
    Sharpen: sharpen,
    Adjust: adjust,
}

# The metadata decode leaves for encode to write on request (workers.metadata).
_CARRIED_INFO = ("exif", "icc_profile")


@dataclass(frozen=True)
class OutputLimits:
    """The largest image an operation may make: pixels, and the longest side."""

    max_pixels: int
    max_side: int


def apply_operations(
    image: Image.Image,
    ops: Iterable[Operation],
    registry: Registry = OPERATIONS,
    *,
    limits: OutputLimits | None = None,
    first_index: int = 0,
) -> Image.Image:
    """`image` with each operation applied in order; OPERATION_UNSUPPORTED for an operation
    type the registry has no function for. With `limits`, each operation's output size is
    computed first (imageeditor.core.geometry) and one over them is refused, OUTPUT_TOO_LARGE,
    before it allocates anything. `first_index` is the first operation's place in the
    task's list, for error fields."""
    carried = {key: image.info[key] for key in _CARRIED_INFO if key in image.info}
    for index, op in enumerate(ops, start=first_index):
        function = registry.get(type(op))
        if function is None:
            raise InvalidArgument(
                f"unsupported operation {type(op).__name__}", reason="OPERATION_UNSUPPORTED"
            )
        if limits is not None:
            check_size(
                output_size(op, image.size),
                max_pixels=limits.max_pixels,
                max_side=limits.max_side,
                where=f"operations[{index}]",
            )
        image = function(image, op)
    # Pillow copies info on most operations, but an image built anew (a model's mask, a
    # canvas) starts without it; the source's metadata belongs to the result all the same.
    for key, value in carried.items():
        image.info.setdefault(key, value)
    return image


__all__ = [
    "OPERATIONS",
    "OperationFunction",
    "OutputLimits",
    "Registry",
    "adjust",
    "apply_operations",
    "blur",
    "crop",
    "flip",
    "flop",
    "grayscale",
    "resize",
    "rotate",
    "sharpen",
]
