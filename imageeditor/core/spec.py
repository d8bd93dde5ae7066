"""What a task is asked to do: its source, edit operations and output options.

Plain frozen data, independent of protobuf and of Pillow, so the store, the server and the
worker all speak it. `to_dict`/`from_dict` give the JSON form kept in the store and carried in
dispatch messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any


class ImageFormat(enum.StrEnum):
    """An output image format."""

    PNG = "png"
    WEBP = "webp"
    JPEG = "jpeg"
    AVIF = "avif"


class ResizeFit(enum.StrEnum):
    """How a resize fits the image into its box (the proto documents each mode)."""

    CONTAIN = "contain"
    COVER = "cover"
    FILL = "fill"
    INSIDE = "inside"


class Gravity(enum.StrEnum):
    """Where a crop of a given size sits."""

    CENTER = "center"
    NORTH = "north"
    NORTH_EAST = "north_east"
    EAST = "east"
    SOUTH_EAST = "south_east"
    SOUTH = "south"
    SOUTH_WEST = "south_west"
    WEST = "west"
    NORTH_WEST = "north_west"


Color = tuple[int, int, int, int]
"""RGBA, each 0-255."""


@dataclass(frozen=True)
class Resize:
    """Resize into a width x height box; a zero side follows the aspect ratio."""

    width: int = 0
    height: int = 0
    fit: ResizeFit = ResizeFit.INSIDE
    allow_upscale: bool = False
    kind: str = field(default="resize", init=False)


@dataclass(frozen=True)
class Grayscale:
    """Convert to grayscale, keeping any alpha channel."""

    kind: str = field(default="grayscale", init=False)


@dataclass(frozen=True)
class Crop:
    """Cut out `width` x `height` at (left, top), or, with `gravity` set, placed by gravity."""

    width: int
    height: int
    left: int = 0
    top: int = 0
    gravity: Gravity | None = None
    kind: str = field(default="crop", init=False)


@dataclass(frozen=True)
class Rotate:
    """Rotate counter-clockwise; `fill` colours the uncovered corners (None: transparent)."""

    degrees: float
    expand: bool = False
    fill: Color | None = None
    kind: str = field(default="rotate", init=False)


@dataclass(frozen=True)
class Flip:
    """Mirror top to bottom."""

    kind: str = field(default="flip", init=False)


@dataclass(frozen=True)
class Flop:
    """Mirror left to right."""

    kind: str = field(default="flop", init=False)


@dataclass(frozen=True)
class Blur:
    """Gaussian blur of `radius` pixels."""

    radius: float
    kind: str = field(default="blur", init=False)


@dataclass(frozen=True)
class Sharpen:
    """Unsharp mask."""

    radius: float = 2.0
    percent: int = 150
    threshold: int = 3
    kind: str = field(default="sharpen", init=False)


@dataclass(frozen=True)
class Adjust:
    """Brightness, contrast and saturation factors; 1.0 leaves the image as it is."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    kind: str = field(default="adjust", init=False)


@dataclass(frozen=True)
class RemoveBackground:
    """Cut the subject out with a rembg model ("" for the configured default)."""

    model: str = ""
    alpha_matting: bool = False
    background: Color | None = None
    kind: str = field(default="remove_background", init=False)


Operation = (
    Resize | Grayscale | Crop | Rotate | Flip | Flop | Blur | Sharpen | Adjust | RemoveBackground
)

_OPERATION_TYPES: dict[str, type[Operation]] = {
    cls.kind: cls
    for cls in (
        Resize,
        Grayscale,
        Crop,
        Rotate,
        Flip,
        Flop,
        Blur,
        Sharpen,
        Adjust,
        RemoveBackground,
    )
}

DEFAULT_QUALITY = 85


@dataclass(frozen=True)
class OutputOptions:
    """How the result is encoded. quality 0 means DEFAULT_QUALITY."""

    format: ImageFormat = ImageFormat.PNG
    quality: int = 0
    lossless: bool = False
    effort: int = 0  # PNG zlib level / WEBP method; 0: the encoder's chosen default
    keep_metadata: bool = False

    @property
    def effective_quality(self) -> int:
        return self.quality or DEFAULT_QUALITY


@dataclass(frozen=True)
class TaskSpec:
    """A job's instructions. Exactly one of image_url and input_key is set.

    input_key names the inline source bytes in the blob store (image bytes never go into the
    database); input_size is their length.
    """

    image_url: str = ""
    input_key: str = ""
    input_size: int = 0
    operations: tuple[Operation, ...] = ()
    style_prompt: str = ""
    output: OutputOptions = OutputOptions()
    callback_url: str = ""

    def to_dict(self) -> dict[str, Any]:
        # Field by field, not asdict(), which deep-copies every value on the way: a snapshot
        # is made for every row, message, cache entry and event (bench/service.py).
        data = _fields_of(self)
        data["operations"] = [_fields_of(op) for op in self.operations]
        data["output"] = _fields_of(self.output)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        operations = tuple(_operation_from_dict(op) for op in data.get("operations", ()))
        output = data.get("output") or {}
        return cls(
            image_url=data.get("image_url", ""),
            input_key=data.get("input_key", ""),
            input_size=int(data.get("input_size", 0)),
            operations=operations,
            style_prompt=data.get("style_prompt", ""),
            output=OutputOptions(
                format=ImageFormat(output.get("format", ImageFormat.PNG)),
                quality=int(output.get("quality", 0)),
                lossless=bool(output.get("lossless", False)),
                effort=int(output.get("effort", 0)),
                keep_metadata=bool(output.get("keep_metadata", False)),
            ),
            callback_url=data.get("callback_url", ""),
        )


def _fields_of(value: Any) -> dict[str, Any]:
    """A flat dataclass of immutable values as a dict (what asdict gives, without copying)."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _operation_from_dict(data: dict[str, Any]) -> Operation:
    """Rebuild an operation from its JSON form (enums as values, colours as lists)."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    op_type = _OPERATION_TYPES[data["kind"]]
    if "fit" in fields:
        fields["fit"] = ResizeFit(fields["fit"])
    if fields.get("gravity") is not None:
        fields["gravity"] = Gravity(fields["gravity"])
    for name in ("fill", "background"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    return op_type(**fields)
