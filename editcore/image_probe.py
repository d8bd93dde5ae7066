"""What an image file claims to be, read from its headers alone: the one place for the checks
that must happen before any pixel is decoded.

The server calls `probe` on inline bytes at submit time, so a hostile upload is refused before
it is stored; the worker calls it again (through workers.imaging.decode) on every source,
fetched ones included. Pillow opens lazily: `Image.open` parses headers and never decodes
pixels here, and only the plugin of the format the magic bytes claim may try (EPS, which would
run Ghostscript, and SVG never reach it). Every refusal is an InvalidArgument with a stable
reason: IMAGE_FORMAT_UNSUPPORTED, IMAGE_TOO_LARGE, IMAGE_TOO_MANY_FRAMES or IMAGE_CORRUPT.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from editcore.errors import InvalidArgument
from editcore.sniff import sniff_format

PILLOW_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
}
"""Pillow's plugin name for each sniffed format (and each output format)."""


@dataclass(frozen=True)
class ImageHeader:
    """What the headers say: the sniffed format ("jpeg", "png", ...), the size in pixels of
    the first frame and the number of frames (counted no further than max_frames + 1)."""

    format: str
    width: int
    height: int
    frames: int


def probe(data: bytes, *, max_pixels: int, max_frames: int) -> ImageHeader:
    """The header of an accepted image, or InvalidArgument if the bytes are not one, are too
    large, have too many frames or cannot even be parsed."""
    name = sniff_format(data)
    if name is None:
        raise image_error(
            "IMAGE_FORMAT_UNSUPPORTED", "not a JPEG, PNG, WEBP, GIF, BMP or TIFF image"
        )
    try:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: make the warning fail.
        # The filter is process-wide state that concurrent threads may interleave; the worst
        # case is a warning logged, not raised, which check_pixels still covers while
        # max_pixels stays under Pillow's limit (50 M against ~89 M by default).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data), formats=[PILLOW_FORMATS[name]]) as image:
                width, height = image.size
                check_pixels(width, height, max_pixels)
                frames = _count_frames(image, data, max_frames)
    except InvalidArgument:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise image_error("IMAGE_TOO_LARGE", str(exc)) from None
    except Exception as exc:
        # Pillow's plugins raise OSError, SyntaxError, ValueError, struct.error, EOFError and
        # more on malformed headers; whatever the type, the bytes are not a usable image.
        raise image_error("IMAGE_CORRUPT", f"cannot read the {name} image: {exc}") from None
    if frames > max_frames:
        raise image_error("IMAGE_TOO_MANY_FRAMES", f"the image has more than {max_frames} frames")
    return ImageHeader(name, width, height, frames)


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """IMAGE_TOO_LARGE unless width x height is within max_pixels."""
    if width * height > max_pixels:
        raise image_error(
            "IMAGE_TOO_LARGE",
            f"the image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}",
        )


def image_error(reason: str, message: str) -> InvalidArgument:
    """An image refusal. No field violation: the bytes may have come from image_data or from
    image_url, and only the caller knows which."""
    return InvalidArgument(message, reason=reason)


def _count_frames(image: Image.Image, data: bytes, limit: int) -> int:
    """The frame count, at most limit + 1, at a cost bounded by the limit."""
    if image.format == "GIF":
        # Pillow's GIF n_frames walks the whole file and seek() decodes each frame.
        return count_gif_frames(data, limit + 1)
    if image.format == "TIFF":
        # TIFF n_frames walks every IFD; seeking reads one more IFD's tags, no pixels.
        for index in range(1, limit + 1):
            try:
                image.seek(index)
            except EOFError:
                return index
        return limit + 1
    # The other plugins read the count from a header (APNG acTL, WEBP, MPO).
    return int(getattr(image, "n_frames", 1))


def count_gif_frames(data: bytes, stop_at: int) -> int:
    """The number of image descriptors in a GIF, counting no further than stop_at.

    Walks the block structure (GIF89a, section 17 on): extensions and image data are chains of
    length-prefixed sub-blocks, skipped without decoding. Damage ends the count where it is.
    """
    position = 13  # signature (6) + logical screen descriptor (7)
    if len(data) < position:
        return 0
    position += _color_table_size(data[10])
    frames = 0
    while position < len(data) and frames < stop_at:
        introducer = data[position]
        if introducer == 0x2C:  # image descriptor: 9 bytes, a colour table, the LZW code size
            if position + 10 > len(data):
                break
            position += 10 + _color_table_size(data[position + 9]) + 1
            frames += 1
        elif introducer == 0x21:  # extension: its label, then sub-blocks
            position += 2
        else:  # the trailer (0x3B) or garbage
            break
        position = _skip_sub_blocks(data, position)
    return frames


def _color_table_size(flags: int) -> int:
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, position: int) -> int:
    while position < len(data):
        size = data[position]
        position += 1 + size
        if size == 0:
            break
    return position
