"""Which metadata an encoded result carries.

decode leaves two keys in `image.info`: the source's "exif" (orientation already applied and
removed) and its "icc_profile". By default neither reaches the output: EXIF says things about
the person who took the picture (GPS position, camera serial numbers), and the ICC profile is
applied instead of carried, converting the pixels to sRGB, which is what a file without a
profile is taken to be; a Display P3 or Adobe RGB photo thus keeps its colours. With
keep_metadata both are written: the EXIF with its orientation set to 1, since the pixels are
already upright, and the profile when it describes the written mode (RGB or gray).
"""

from __future__ import annotations

import functools
import logging
from io import BytesIO
from typing import Any

from PIL import Image, ImageCms

from imageeditor.core.image_probe import EXIF_ORIENTATION

log = logging.getLogger(__name__)

_UPRIGHT = 1

# The ICC colour space (header bytes 16-20) each output mode can carry.
_ICC_SPACES = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}


def icc_fits(icc: object, mode: str) -> bool:
    """Whether `icc` is a profile for images of `mode` (an RGB profile on a gray image is not)."""
    return isinstance(icc, bytes) and len(icc) >= 20 and icc[16:20] == _ICC_SPACES.get(mode)


def output_metadata(image: Image.Image, keep: bool) -> tuple[Image.Image, dict[str, Any]]:
    """The image to write (converted to sRGB if it loses its profile) and the metadata
    arguments of `Image.save`, always passed explicitly so Pillow cannot fall back to
    image.info."""
    icc = image.info.get("icc_profile")
    fits = icc_fits(icc, image.mode)
    if keep:
        return image, {"icc_profile": icc if fits else None, "exif": _upright_exif(image)}
    if fits and image.mode in ("RGB", "RGBA"):
        assert isinstance(icc, bytes)
        image = _to_srgb(image, icc)
    # A gray profile is dropped as it is: it only sets a tone curve close to sRGB's.
    return image, {"icc_profile": None, "exif": b""}


def _upright_exif(image: Image.Image) -> bytes:
    raw = image.info.get("exif")
    if not isinstance(raw, bytes) or not raw:
        return b""
    exif = Image.Exif()
    try:
        exif.load(raw)
        exif[EXIF_ORIENTATION] = _UPRIGHT
        return exif.tobytes()
    except Exception:  # Pillow raises several types on a damaged EXIF block
        log.warning("dropping an EXIF block Pillow cannot rewrite")
        return b""


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _srgb(), outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        log.warning("dropping an ICC profile littleCMS cannot apply")
        return image
    assert converted is not None  # None only when converting in place
    return converted


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
