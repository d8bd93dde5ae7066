"""Edit operations and output options between protobuf and the domain, in both directions.

The proto's "0 means the default" fields become the domain's explicit values here (a sharpen
radius of 0 is 2.0, an adjust factor of 0 is 1.0); validation has refused anything out of
range before `operation_from_proto` sees it.
"""

from __future__ import annotations

from imageeditor.core.spec import (
    Adjust,
    Blur,
    Color,
    Crop,
    Flip,
    Flop,
    Gravity,
    Grayscale,
    ImageFormat,
    Operation,
    OutputOptions,
    RemoveBackground,
    Resize,
    ResizeFit,
    Rotate,
    Sharpen,
)
from imageeditor.v1 import operations_pb2

FORMATS = {
    operations_pb2.IMAGE_FORMAT_UNSPECIFIED: ImageFormat.PNG,
    operations_pb2.IMAGE_FORMAT_PNG: ImageFormat.PNG,
    operations_pb2.IMAGE_FORMAT_WEBP: ImageFormat.WEBP,
    operations_pb2.IMAGE_FORMAT_JPEG: ImageFormat.JPEG,
    operations_pb2.IMAGE_FORMAT_AVIF: ImageFormat.AVIF,
}
FORMATS_TO_PROTO = {fmt: value for value, fmt in FORMATS.items() if value}
FITS = {
    operations_pb2.RESIZE_FIT_UNSPECIFIED: ResizeFit.INSIDE,
    operations_pb2.RESIZE_FIT_CONTAIN: ResizeFit.CONTAIN,
    operations_pb2.RESIZE_FIT_COVER: ResizeFit.COVER,
    operations_pb2.RESIZE_FIT_FILL: ResizeFit.FILL,
    operations_pb2.RESIZE_FIT_INSIDE: ResizeFit.INSIDE,
}
FITS_TO_PROTO = {fit: value for value, fit in FITS.items() if value}
GRAVITIES = {
    operations_pb2.GRAVITY_UNSPECIFIED: Gravity.CENTER,
    operations_pb2.GRAVITY_CENTER: Gravity.CENTER,
    operations_pb2.GRAVITY_NORTH: Gravity.NORTH,
    operations_pb2.GRAVITY_NORTH_EAST: Gravity.NORTH_EAST,
    operations_pb2.GRAVITY_EAST: Gravity.EAST,
    operations_pb2.GRAVITY_SOUTH_EAST: Gravity.SOUTH_EAST,
    operations_pb2.GRAVITY_SOUTH: Gravity.SOUTH,
    operations_pb2.GRAVITY_SOUTH_WEST: Gravity.SOUTH_WEST,
    operations_pb2.GRAVITY_WEST: Gravity.WEST,
    operations_pb2.GRAVITY_NORTH_WEST: Gravity.NORTH_WEST,
}
GRAVITIES_TO_PROTO = {gravity: value for value, gravity in GRAVITIES.items() if value}

_DEFAULT_SHARPEN = Sharpen()


# -- proto -> domain ----------------------------------------------------------------------------


def operation_from_proto(op: operations_pb2.Operation) -> Operation:
    """The domain operation of a validated Operation message."""
    kind = op.WhichOneof("kind")
    if kind == "resize":
        r = op.resize
        return Resize(r.width, r.height, FITS[r.fit], r.allow_upscale)
    if kind == "grayscale":
        return Grayscale()
    if kind == "crop":
        return _crop_from_proto(op.crop)
    if kind == "rotate":
        fill = color_from_proto(op.rotate.fill) if op.rotate.HasField("fill") else None
        return Rotate(op.rotate.degrees, op.rotate.expand, fill)
    if kind == "flip":
        return Flip()
    if kind == "flop":
        return Flop()
    if kind == "blur":
        return Blur(op.blur.radius)
    if kind == "sharpen":
        s = op.sharpen
        return Sharpen(
            s.radius or _DEFAULT_SHARPEN.radius, s.percent or _DEFAULT_SHARPEN.percent, s.threshold
        )
    if kind == "adjust":
        a = op.adjust
        return Adjust(a.brightness or 1.0, a.contrast or 1.0, a.saturation or 1.0)
    if kind == "remove_background":
        rb = op.remove_background
        background = color_from_proto(rb.background) if rb.HasField("background") else None
        return RemoveBackground(rb.model, rb.alpha_matting, background)
    raise ValueError(f"unknown operation {kind!r}")  # validation refuses these first


def output_from_proto(output: operations_pb2.OutputOptions) -> OutputOptions:
    """The domain OutputOptions of a validated OutputOptions message."""
    return OutputOptions(
        format=FORMATS[output.format],
        quality=output.quality,
        lossless=output.lossless,
        effort=output.effort,
        keep_metadata=output.keep_metadata,
    )


def color_from_proto(color: operations_pb2.Color) -> Color:
    """(red, green, blue, alpha) of a Color message."""
    return (color.red, color.green, color.blue, color.alpha)


def _crop_from_proto(crop: operations_pb2.Crop) -> Crop:
    if crop.WhichOneof("region") == "size":
        size = crop.size
        return Crop(size.width, size.height, gravity=GRAVITIES[size.gravity])
    box = crop.box
    return Crop(box.width, box.height, box.left, box.top)


# -- domain -> proto ----------------------------------------------------------------------------


def operation_to_proto(op: Operation) -> operations_pb2.Operation:
    """The Operation message of a domain operation (an Adjust factor of exactly 0, which the
    proto cannot say, comes back as 1)."""
    if isinstance(op, Resize):
        fit = FITS_TO_PROTO[op.fit]
        resize = operations_pb2.Resize(
            width=op.width, height=op.height, fit=fit, allow_upscale=op.allow_upscale
        )
        return operations_pb2.Operation(resize=resize)
    if isinstance(op, Grayscale):
        return operations_pb2.Operation(grayscale=operations_pb2.Grayscale())
    if isinstance(op, Crop):
        return operations_pb2.Operation(crop=_crop_to_proto(op))
    if isinstance(op, Rotate):
        rotate = operations_pb2.Rotate(degrees=op.degrees, expand=op.expand)
        if op.fill is not None:
            rotate.fill.CopyFrom(color_to_proto(op.fill))
        return operations_pb2.Operation(rotate=rotate)
    if isinstance(op, Flip):
        return operations_pb2.Operation(flip=operations_pb2.Flip())
    if isinstance(op, Flop):
        return operations_pb2.Operation(flop=operations_pb2.Flop())
    if isinstance(op, Blur):
        return operations_pb2.Operation(blur=operations_pb2.Blur(radius=op.radius))
    if isinstance(op, Sharpen):
        sharpen = operations_pb2.Sharpen(
            radius=op.radius, percent=op.percent, threshold=op.threshold
        )
        return operations_pb2.Operation(sharpen=sharpen)
    if isinstance(op, Adjust):
        adjust = operations_pb2.Adjust(
            brightness=op.brightness, contrast=op.contrast, saturation=op.saturation
        )
        return operations_pb2.Operation(adjust=adjust)
    remove = operations_pb2.RemoveBackground(model=op.model, alpha_matting=op.alpha_matting)
    if op.background is not None:
        remove.background.CopyFrom(color_to_proto(op.background))
    return operations_pb2.Operation(remove_background=remove)


def output_to_proto(output: OutputOptions) -> operations_pb2.OutputOptions:
    """The OutputOptions message of domain output options."""
    return operations_pb2.OutputOptions(
        format=FORMATS_TO_PROTO[output.format],
        quality=output.quality,
        lossless=output.lossless,
        effort=output.effort,
        keep_metadata=output.keep_metadata,
    )


def color_to_proto(color: Color) -> operations_pb2.Color:
    """The Color message of an (red, green, blue, alpha) tuple."""
    red, green, blue, alpha = color
    return operations_pb2.Color(red=red, green=green, blue=blue, alpha=alpha)


def _crop_to_proto(op: Crop) -> operations_pb2.Crop:
    if op.gravity is None:
        box = operations_pb2.Box(left=op.left, top=op.top, width=op.width, height=op.height)
        return operations_pb2.Crop(box=box)
    size = operations_pb2.GravitySize(
        width=op.width, height=op.height, gravity=GRAVITIES_TO_PROTO[op.gravity]
    )
    return operations_pb2.Crop(size=size)
