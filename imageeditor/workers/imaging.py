"""Bytes to a Pillow image and back: the only place that parses or writes image files.

`decode` runs the header checks of imageeditor.core.image_probe (format by the magic bytes, pixel
and
frame caps) before any pixel is decoded, then hands the pipeline the first frame in one of four
modes (L, LA, RGB, RGBA) with its EXIF orientation applied, carrying only "exif" and
"icc_profile" in `image.info`. `encode` writes PNG, WEBP or JPEG with the effort asked for and,
unless keep_metadata, no metadata (workers.metadata). Every failure to read an image is an
InvalidArgument with a stable reason: IMAGE_FORMAT_UNSUPPORTED, IMAGE_TOO_LARGE,
IMAGE_TOO_MANY_FRAMES or IMAGE_CORRUPT.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageOps

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.image_probe import PILLOW_FORMATS, image_error, is_turned, probe
from imageeditor.core.settings import Settings
from imageeditor.core.spec import ImageFormat, OutputOptions
from imageeditor.workers.metadata import icc_fits, output_metadata

PIPELINE_MODES = frozenset({"L", "LA", "RGB", "RGBA"})

# Encoder effort when the request leaves it at 0. PNG: zlib levels 1-3 use its fast strategy;
# on a 1024x768 RGBA photo-like image here level 1 took 57 ms / 487 KB, 3 76 ms / 408 KB and
# 6 (Pillow's default) 156 ms / 352 KB, so 3 buys most of the size for little time. WEBP at
# 1024x768 q85 on scikit-image's photos: method 2 23-31 ms, methods 3 and 4 (libwebp's
# default) 56-62 ms for files 3-4% smaller; the encode is most of a resize job, so 2.
DEFAULT_PNG_LEVEL = 3
DEFAULT_WEBP_METHOD = 2
# AVIF: libavif's encoder speed runs 0 (slowest, smallest) to 10; effort N is speed 10 - N.
AVIF_MAX_SPEED = 10
DEFAULT_AVIF_EFFORT = 2
# One APP1 segment: 65,535 bytes less its length field (Pillow's MAX_BYTES_IN_MARKER).
MAX_JPEG_EXIF_BYTES = 65_533


Box = tuple[int, int]


@dataclass(frozen=True)
class EncodedImage:
    """An encoded result: its bytes, pixel size, format and SHA-256 (hex)."""

    data: bytes
    width: int
    height: int
    format: ImageFormat
    sha256: str


def decode(
    data: bytes,
    *,
    max_pixels: int,
    max_frames: int = Settings.max_frames,
    draft: Callable[[Box], Box] | None = None,
) -> Image.Image:
    """The first frame of an accepted image, upright, in one of PIPELINE_MODES; `max_pixels`
    and `max_frames` cap what the header may claim (imageeditor.core.image_probe).

    `draft` maps the upright source size to the smallest (width, height) the first operation
    needs (a zero side is unconstrained). A JPEG is then decoded at the smallest 1/2, 1/4 or
    1/8 scale that still covers it, which is 3-4x faster on large photos and loses nothing,
    since the resize that follows would throw those pixels away anyway.
    """
    header = probe(data, max_pixels=max_pixels, max_frames=max_frames)
    try:
        # As in probe: Pillow's bomb warning is an error (decoding may check sizes again).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # No `with`: closing would detach the pixels, and a BytesIO holds no descriptor.
            image = Image.open(BytesIO(data), formats=[PILLOW_FORMATS[header.format]])
            if draft and image.format in ("JPEG", "MPO"):
                _draft(image, draft)
            # Loads the first frame and turns it upright in place (the default would copy the
            # whole image even when there is nothing to turn); the orientation tag is dropped.
            ImageOps.exif_transpose(image, in_place=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise image_error("IMAGE_TOO_LARGE", str(exc)) from None
    except Exception as exc:
        # Pillow's plugins raise OSError, SyntaxError, ValueError, struct.error, EOFError and
        # more on malformed data (a truncated JPEG, a PNG shorter than its header says).
        raise image_error(
            "IMAGE_CORRUPT", f"cannot decode the {header.format} image: {exc}"
        ) from None
    return _normalize_mode(image)


def encode(image: Image.Image, output: OutputOptions) -> EncodedImage:
    """`image` written in the requested format: at the requested effort (PNG zlib level,
    WEBP method; 0 for DEFAULT_PNG_LEVEL / DEFAULT_WEBP_METHOD), and with the source's EXIF
    and ICC profile only if output.keep_metadata (see workers.metadata)."""
    prepared, params = output_metadata(_prepare_for(image, output.format), output.keep_metadata)
    if output.format is ImageFormat.PNG:
        # optimize=True would force level 9 whatever the effort.
        level = output.effort or DEFAULT_PNG_LEVEL
        params.update(compress_level=level, optimize=False, transparency=None)
    elif output.format is ImageFormat.WEBP:
        method = output.effort or DEFAULT_WEBP_METHOD
        params.update(quality=output.effective_quality, lossless=output.lossless, method=method)
    elif output.format is ImageFormat.AVIF:
        effort = output.effort or DEFAULT_AVIF_EFFORT
        params.update(quality=output.effective_quality, speed=AVIF_MAX_SPEED - effort)
    else:
        _check_jpeg_exif(params["exif"])
        # optimize/progressive cost extra passes over the data for a few percent.
        params.update(
            quality=output.effective_quality, optimize=False, progressive=False, comment=None
        )
    buffer = BytesIO()
    prepared.save(buffer, format=PILLOW_FORMATS[output.format.value], **params)
    data = buffer.getvalue()
    return EncodedImage(
        data=data,
        width=prepared.width,
        height=prepared.height,
        format=output.format,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _check_jpeg_exif(exif: bytes) -> None:
    """A JPEG carries EXIF in one APP1 segment: METADATA_TOO_LARGE (the task fails; only the
    worker sees the source's metadata) rather than Pillow's ValueError when it cannot."""
    if len(exif) > MAX_JPEG_EXIF_BYTES:
        raise InvalidArgument(
            f"keep_metadata: the image's EXIF block is {len(exif)} bytes and a JPEG holds at"
            f" most {MAX_JPEG_EXIF_BYTES}; choose PNG or WEBP, or drop keep_metadata",
            reason="METADATA_TOO_LARGE",
        )


def _draft(image: Image.Image, needed: Callable[[Box], Box]) -> None:
    # Sizes are upright; a JPEG with a turning EXIF orientation stores the image on its side.
    turned = is_turned(image)
    stored_w, stored_h = image.size
    width, height = needed((stored_h, stored_w) if turned else (stored_w, stored_h))
    if turned:
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
        raise image_error(
            "IMAGE_FORMAT_UNSUPPORTED", f"unsupported image mode {mode}: {exc}"
        ) from None
    # Only EXIF and a fitting ICC profile go on: encode decides whether they are written, and
    # nothing else of the source's metadata (comments, XMP, text chunks) may reach the output.
    exif, icc = image.info.get("exif"), image.info.get("icc_profile")
    normalized.info = {}
    if exif:
        normalized.info["exif"] = exif
    if icc_fits(icc, normalized.mode):
        normalized.info["icc_profile"] = icc
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
    if fmt in (ImageFormat.WEBP, ImageFormat.AVIF) and image.mode in ("L", "LA"):
        return image.convert("RGBA" if image.mode == "LA" else "RGB")  # no gray mode
    if image.mode not in PIPELINE_MODES:
        return image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return image
