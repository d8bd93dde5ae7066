"""Submit-time checks of the edit operations and the output options.

Each problem is a (field path, description, reason) triple, e.g.
("operations[2].crop.box.width", "must be greater than 0", "OPERATION_INVALID"); validation
turns them into BadRequest field violations. What depends on the image itself (a crop box
inside it) can only be checked by the worker, which fails the task with CROP_OUTSIDE_IMAGE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from imageeditor.core.rembg_models import KNOWN_MODELS
from imageeditor.core.settings import Settings
from imageeditor.v1 import operations_pb2

Problem = tuple[str, str, str]

MAX_OPERATIONS = 32
MAX_BLUR_RADIUS = 250.0
MAX_SHARPEN_RADIUS = 250.0
MAX_SHARPEN_PERCENT = 1000
MAX_ADJUST_FACTOR = 10.0
EFFORT_RANGES = {
    operations_pb2.IMAGE_FORMAT_UNSPECIFIED: (1, 9),  # PNG zlib level
    operations_pb2.IMAGE_FORMAT_PNG: (1, 9),
    operations_pb2.IMAGE_FORMAT_WEBP: (1, 6),  # WEBP method
    operations_pb2.IMAGE_FORMAT_AVIF: (1, 10),  # AVIF: encoder speed 10 - effort
}

_OP = "OPERATION_INVALID"
_OUTPUT = "OUTPUT_INVALID"
_CHANNELS = ("red", "green", "blue", "alpha")


def check_operations(
    operations: Sequence[operations_pb2.Operation], settings: Settings
) -> list[Problem]:
    """Every problem of the operation list."""
    problems: list[Problem] = []
    if len(operations) > MAX_OPERATIONS:
        problems.append(("operations", f"at most {MAX_OPERATIONS} operations", _OP))
    for i, op in enumerate(operations):
        where = f"operations[{i}]"
        kind = op.WhichOneof("kind")
        if kind is None:
            problems.append((where, "set one operation (resize, crop, rotate, ...)", _OP))
            continue
        check = _CHECKS.get(kind)
        if check is not None:  # flip, flop and grayscale have nothing to check
            problems += check(f"{where}.{kind}", getattr(op, kind), settings)
    return problems


def check_output(output: operations_pb2.OutputOptions) -> list[Problem]:
    """Every problem of the output options."""
    problems: list[Problem] = []
    if output.format not in operations_pb2.ImageFormat.values():
        problems.append(("output.format", f"unknown format {output.format}", _OUTPUT))
    if output.quality > 100:
        problems.append(("output.quality", "between 1 and 100 (0 for the default)", _OUTPUT))
    if output.lossless and output.format != operations_pb2.IMAGE_FORMAT_WEBP:
        problems.append(("output.lossless", "only WEBP has a lossless mode", _OUTPUT))
    if output.effort:
        limits = EFFORT_RANGES.get(output.format)
        if limits is None:
            text = "only PNG (zlib level 1-9), WEBP (method 1-6) and AVIF (1-10) take an effort"
            problems.append(("output.effort", text, _OUTPUT))
        elif not limits[0] <= output.effort <= limits[1]:
            text = f"between {limits[0]} and {limits[1]} for this format (0 for the default)"
            problems.append(("output.effort", text, _OUTPUT))
    return problems


def _resize(where: str, r: operations_pb2.Resize, settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if not r.width and not r.height:
        problems.append((where, "set width, height or both", _OP))
    limit = settings.max_output_side
    for side in ("width", "height"):
        if getattr(r, side) > limit:
            problems.append((f"{where}.{side}", f"at most {limit} pixels", _OP))
    if r.fit not in operations_pb2.ResizeFit.values():
        problems.append((f"{where}.fit", f"unknown fit {r.fit}", _OP))
    return problems


def _crop(where: str, crop: operations_pb2.Crop, settings: Settings) -> list[Problem]:
    region = crop.WhichOneof("region")
    if region is None:
        return [(where, "set box (left, top, width, height) or size (with a gravity)", _OP)]
    message = crop.box if region == "box" else crop.size
    problems = [
        (f"{where}.{region}.{side}", "must be greater than 0", _OP)
        for side in ("width", "height")
        if getattr(message, side) == 0
    ]
    if region == "size" and crop.size.gravity not in operations_pb2.Gravity.values():
        problems.append((f"{where}.size.gravity", f"unknown gravity {crop.size.gravity}", _OP))
    return problems


def _rotate(where: str, rotate: operations_pb2.Rotate, settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if not math.isfinite(rotate.degrees):
        problems.append((f"{where}.degrees", "must be a finite number", _OP))
    if rotate.HasField("fill"):
        problems += _color(f"{where}.fill", rotate.fill)
    return problems


def _blur(where: str, blur: operations_pb2.Blur, settings: Settings) -> list[Problem]:
    if 0 < blur.radius <= MAX_BLUR_RADIUS:
        return []
    return [(f"{where}.radius", f"greater than 0 and at most {MAX_BLUR_RADIUS:g}", _OP)]


def _sharpen(where: str, sharpen: operations_pb2.Sharpen, settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if not 0 <= sharpen.radius <= MAX_SHARPEN_RADIUS:
        text = f"between 0 and {MAX_SHARPEN_RADIUS:g} (0 for the default, 2)"
        problems.append((f"{where}.radius", text, _OP))
    if sharpen.percent > MAX_SHARPEN_PERCENT:
        text = f"at most {MAX_SHARPEN_PERCENT} (0 for the default, 150)"
        problems.append((f"{where}.percent", text, _OP))
    if sharpen.threshold > 255:
        problems.append((f"{where}.threshold", "between 0 and 255", _OP))
    return problems


def _adjust(where: str, adjust: operations_pb2.Adjust, settings: Settings) -> list[Problem]:
    text = f"between 0 and {MAX_ADJUST_FACTOR:g} (0 leaves it as it is, like 1)"
    return [
        (f"{where}.{factor}", text, _OP)
        for factor in ("brightness", "contrast", "saturation")
        if not 0 <= getattr(adjust, factor) <= MAX_ADJUST_FACTOR
    ]


def _remove_background(
    where: str, remove: operations_pb2.RemoveBackground, settings: Settings
) -> list[Problem]:
    problems: list[Problem] = []
    if remove.model and remove.model not in KNOWN_MODELS:
        text = f"unknown model {remove.model!r}; one of " + ", ".join(KNOWN_MODELS)
        problems.append((f"{where}.model", text, "MODEL_UNKNOWN"))
    if remove.HasField("background"):
        problems += _color(f"{where}.background", remove.background)
    return problems


def _color(where: str, color: operations_pb2.Color) -> list[Problem]:
    return [
        (f"{where}.{channel}", "between 0 and 255", _OP)
        for channel in _CHANNELS
        if getattr(color, channel) > 255
    ]


_CHECKS: dict[str, Callable[[str, Any, Settings], list[Problem]]] = {
    "resize": _resize,
    "crop": _crop,
    "rotate": _rotate,
    "blur": _blur,
    "sharpen": _sharpen,
    "adjust": _adjust,
    "remove_background": _remove_background,
}
