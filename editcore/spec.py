"""What a task is asked to do: its source, edit operations and output options.

Plain frozen data, independent of protobuf and of Pillow, so the store, the server and the
worker all speak it. `to_dict`/`from_dict` give the JSON form kept in the store and carried in
dispatch messages.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class ImageFormat(enum.StrEnum):
    """An output image format."""

    PNG = "png"
    WEBP = "webp"
    JPEG = "jpeg"


class ResizeFit(enum.StrEnum):
    """How a resize fits the image into its box (the proto documents each mode)."""

    CONTAIN = "contain"
    COVER = "cover"
    FILL = "fill"
    INSIDE = "inside"


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


Operation = Resize | Grayscale

_OPERATION_TYPES: dict[str, type[Resize] | type[Grayscale]] = {
    "resize": Resize,
    "grayscale": Grayscale,
}

DEFAULT_QUALITY = 85


@dataclass(frozen=True)
class OutputOptions:
    """How the result is encoded. quality 0 means DEFAULT_QUALITY."""

    format: ImageFormat = ImageFormat.PNG
    quality: int = 0
    lossless: bool = False

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
        data = asdict(self)
        data["operations"] = [asdict(op) for op in self.operations]
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
            ),
            callback_url=data.get("callback_url", ""),
        )


def _operation_from_dict(data: dict[str, Any]) -> Operation:
    fields = {k: v for k, v in data.items() if k != "kind"}
    op_type = _OPERATION_TYPES[data["kind"]]
    if op_type is Resize:
        fields["fit"] = ResizeFit(fields.get("fit", ResizeFit.INSIDE))
    return op_type(**fields)
