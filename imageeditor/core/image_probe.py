"""What an image file claims to be, read from its headers alone: the one place for the checks
that must happen before any pixel is decoded.

The server calls `probe` on inline bytes at submit time, so a hostile upload is refused before
it is stored; the worker calls it again (through workers.imaging.decode) on every source,
fetched ones included. Pillow opens lazily: `Image.open` parses headers and never decodes
pixels here, and only the plugin of the format the magic bytes claim may try (EPS, which would
run Ghostscript, and SVG never reach it). Every refusal is an InvalidArgument with a stable
reason: IMAGE_FORMAT_UNSUPPORTED, IMAGE_TOO_COMPLEX (more segments than any encoder writes,
imageeditor.core.image_structure: checked first, at a bounded cost), IMAGE_TOO_LARGE,
IMAGE_TOO_MANY_FRAMES or IMAGE_CORRUPT.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.image_structure import check_structure, gif_frames
from imageeditor.core.sniff import sniff_format

PILLOW_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "avif": "AVIF",  # an output format only: sniff_format does not take AVIF sources
}
"""Pillow's plugin name for each sniffed format (and each output format)."""


@dataclass(frozen=True)
class ImageHeader:
    """What the headers say: the sniffed format ("jpeg", "png", ...), the size in pixels of
    the first frame as stored, the number of frames (counted no further than max_frames + 1),
    and whether an EXIF orientation turns it on its side when decoded."""

    format: str
    width: int
    height: int
    frames: int
    turned: bool = False

    @property
    def upright_size(self) -> tuple[int, int]:
        """The size the decoded image has, its EXIF orientation applied."""
        return (self.height, self.width) if self.turned else (self.width, self.height)


EXIF_ORIENTATION = 0x0112
TURNED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # those that swap width and height


def probe(data: bytes, *, max_pixels: int, max_frames: int) -> ImageHeader:
    """The header of an accepted image, or InvalidArgument if the bytes are not one, are too
    large, have too many frames or cannot even be parsed."""
    name = sniff_format(data)
    if name is None:
        raise image_error(
            "IMAGE_FORMAT_UNSUPPORTED", "not a JPEG, PNG, WEBP, GIF, BMP or TIFF image"
        )
    check_structure(data, name)
    # A GIF's frames are counted before Pillow opens it, at a cost bounded by the count.
    gif_count = gif_frames(data, max_frames + 1) if name == "gif" else None
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
                frames = _count_frames(image, max_frames) if gif_count is None else gif_count
                turned = is_turned(image, decode=False)
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
    return ImageHeader(name, width, height, frames, turned)


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


def is_turned(image: Image.Image, *, decode: bool = True) -> bool:
    """Whether the image's EXIF orientation puts it on its side (decoding swaps its sides).

    A PNG may keep its EXIF after its pixels, where Pillow reaches only by decoding them all;
    `decode=False` (the probe, at the edge) does not, and takes such an image as upright.
    The worker decodes anyway, and checks the output sizes again with what it finds."""
    if not decode and image.format == "PNG" and "exif" not in image.info:
        return False
    try:
        return image.getexif().get(EXIF_ORIENTATION) in TURNED_ORIENTATIONS
    except Exception:  # a damaged EXIF block: decode ignores it the same way
        return False


def _count_frames(image: Image.Image, limit: int) -> int:
    """The frame count, at most limit + 1, at a cost bounded by the limit (GIFs are counted
    apart: Pillow's GIF n_frames walks the whole file and seek() decodes each frame)."""
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
