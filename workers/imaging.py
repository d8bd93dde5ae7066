"""Bytes to a Pillow image and back: the only place that parses or writes image files.

`decode` lets Pillow open just the format the magic bytes claim, checks the pixel count from
the header before any pixel is decoded, and hands the pipeline an image in one of four modes
(L, LA, RGB, RGBA) with its EXIF orientation applied. `encode` writes PNG, WEBP or JPEG with
the metadata stripped. Every failure to read an image is an InvalidArgument with a stable
reason: IMAGE_FORMAT_UNSUPPORTED, IMAGE_TOO_LARGE or IMAGE_CORRUPT.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageOps

from editcore.errors import InvalidArgument
from editcore.sniff import sniff_format
from editcore.spec import ImageFormat, OutputOptions

PIPELINE_MODES = frozenset({"L", "LA", "RGB", "RGBA"})

_PILLOW_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
}
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112

# The ICC colour space (header bytes 16-20) each output mode can carry.
_ICC_SPACES = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}


@dataclass(frozen=True)
class EncodedImage:
    """An encoded result: its bytes, pixel size, format and SHA-256 (hex)."""

    data: bytes
    width: int
    height: int
    format: ImageFormat
    sha256: str


def decode(
    data: bytes, *, max_pixels: int, draft_box: tuple[int, int] | None = None
) -> Image.Image:
    """The first frame of an accepted image, upright, in one of PIPELINE_MODES.

    `draft_box` is the (width, height) box the first operation will shrink the image into
    (a zero side is unconstrained). A JPEG is then decoded at the smallest 1/2, 1/4 or 1/8
    scale that still covers the box, which is 3x faster on large photos and loses nothing,
    since the resize that follows would throw those pixels away anyway.
    """
    name = sniff_format(data)
    if name is None:
        raise _error("IMAGE_FORMAT_UNSUPPORTED", "not a JPEG, PNG, WEBP, GIF, BMP or TIFF image")
    try:
        # Pillow warns (rather than fails) between MAX_IMAGE_PIXELS and twice that; make it
        # fail. Never lift MAX_IMAGE_PIXELS: it also guards per-frame and per-tile sizes that
        # our header check cannot see. The filter is process-wide state, and threads may
        # interleave entering and leaving it; the worst case is a warning that is logged
        # instead of raised, which _check_pixels still covers while max_pixels stays under
        # Pillow's limit (50 M against ~89 M by default).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data), formats=[_PILLOW_FORMATS[name]]) as opened:
                _check_pixels(opened.size, max_pixels)
                if draft_box and opened.format in ("JPEG", "MPO"):
                    _draft(opened, draft_box)
                # exif_transpose loads the first frame and returns a detached copy.
                image = ImageOps.exif_transpose(opened)
    except InvalidArgument:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _error("IMAGE_TOO_LARGE", str(exc)) from None
    except Exception as exc:
        # Pillow's plugins raise OSError, SyntaxError, ValueError, struct.error, EOFError and
        # more on malformed input; whatever the type, the bytes are not a usable image.
        raise _error("IMAGE_CORRUPT", f"cannot decode the {name} image: {exc}") from None
    return _normalize_mode(image)


def encode(image: Image.Image, output: OutputOptions) -> EncodedImage:
    """`image` written in the requested format, without EXIF, XMP or text metadata.

    The ICC profile is kept when it describes the written mode (RGB or gray): dropping a
    Display P3 or Adobe RGB profile would visibly shift colours, and unlike EXIF (GPS,
    camera serial numbers) it says nothing about the person who took the picture.
    """
    prepared = _prepare_for(image, output.format)
    icc = prepared.info.get("icc_profile")
    params: dict[str, Any] = {
        # Passed explicitly (None when unsuitable) so Pillow cannot fall back to image.info.
        "icc_profile": icc if _icc_fits(icc, prepared.mode) else None,
        "exif": b"",
    }
    if output.format is ImageFormat.PNG:
        # zlib levels 1-3 use its fast strategy. On a 1024x768 RGBA photo-like image here:
        # level 1 57 ms / 487 KB, 3 76 ms / 408 KB, 6 (Pillow's default) 156 ms / 352 KB.
        # 3 buys most of the size for little time; optimize=True would force level 9.
        params.update(compress_level=3, optimize=False, transparency=None)
    elif output.format is ImageFormat.WEBP:
        # method 4 (of 0-6) is libwebp's default speed/size balance; 6 is ~2x slower.
        params.update(quality=output.effective_quality, lossless=output.lossless, method=4)
    else:
        # optimize/progressive cost extra passes over the data for a few percent.
        params.update(
            quality=output.effective_quality, optimize=False, progressive=False, comment=None
        )
    buffer = BytesIO()
    prepared.save(buffer, format=_PILLOW_FORMATS[output.format.value], **params)
    data = buffer.getvalue()
    return EncodedImage(
        data=data,
        width=prepared.width,
        height=prepared.height,
        format=output.format,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _error(reason: str, message: str) -> InvalidArgument:
    # No field violation: the bytes may have come from image_data or from image_url.
    return InvalidArgument(message, reason=reason)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise _error(
            "IMAGE_TOO_LARGE",
            f"the image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}",
        )


def _draft(image: Image.Image, box: tuple[int, int]) -> None:
    width, height = box
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    if orientation in _ROTATED_ORIENTATIONS:
        # The box is in upright coordinates; the JPEG stores the image on its side.
        width, height = height, width
    # Pillow picks the largest scale that keeps both sides >= the box; 1 leaves a side free.
    image.draft(image.mode, (max(1, width), max(1, height)))


def _normalize_mode(image: Image.Image) -> Image.Image:
    mode = image.mode
    try:
        if mode in PIPELINE_MODES and not (mode in ("L", "RGB") and "transparency" in image.info):
            normalized = image
        elif mode.startswith("I") or mode == "F":
            normalized = _to_8bit_gray(image)
        elif mode == "1":
            normalized = image.convert("L")
        elif mode == "L":  # with a transparent colour key
            normalized = image.convert("LA")
        else:
            # P/PA (palette), CMYK, YCbCr, LAB, RGBX, premultiplied RGBa/La, RGB with a key.
            # CMYK is converted naively: its ICC profile, if any, is dropped at encode time.
            has_alpha = image.has_transparency_data or "a" in image.getbands()
            normalized = image.convert("RGBA" if has_alpha else "RGB")
    except ValueError as exc:  # a mode Pillow cannot convert
        raise _error("IMAGE_FORMAT_UNSUPPORTED", f"unsupported image mode {mode}: {exc}") from None
    icc = image.info.get("icc_profile")
    # Keep only the ICC profile: the rest of the source's metadata must not reach the output.
    normalized.info = {"icc_profile": icc} if _icc_fits(icc, normalized.mode) else {}
    return normalized


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float gray to L, scaling the full range rather than
    clipping it (a plain convert would turn most 16-bit images white)."""
    source_is_16bit = image.mode.startswith("I;16")
    if image.mode != "F":
        image = image.convert("I")
    extrema: Any = image.getextrema()
    high = float(extrema[1])
    if source_is_16bit or high > 255:
        scale = 255 / 65535
    elif image.mode == "F" and high <= 1.0:
        scale = 255.0  # float images are usually 0.0-1.0
    else:
        scale = 1.0
    return image.point(lambda value: value * scale).convert("L")


def _prepare_for(image: Image.Image, fmt: ImageFormat) -> Image.Image:
    """`image` in a mode the format can store."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if fmt is ImageFormat.JPEG and image.mode in ("RGBA", "LA"):
        # JPEG has no alpha: flatten onto white, the usual background of a page.
        flat = Image.new(image.mode[:-1], image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        flat.info = dict(image.info)
        return flat
    if fmt is ImageFormat.WEBP and image.mode in ("L", "LA"):
        return image.convert("RGBA" if image.mode == "LA" else "RGB")  # WEBP has no gray mode
    if image.mode not in PIPELINE_MODES:
        return image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return image


def _icc_fits(icc: object, mode: str) -> bool:
    return isinstance(icc, bytes) and len(icc) >= 20 and icc[16:20] == _ICC_SPACES.get(mode)
