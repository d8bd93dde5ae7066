"""Recognise the image formats we accept from their first bytes, without Pillow.

The server refuses inline images that are not one of these at submit time, and the worker
only lets Pillow open the format the bytes claim to be. Everything else — SVG, PDF, EPS/PS,
text, HEIC — is None: EPS in particular must never reach Pillow, which would run Ghostscript.
"""

from __future__ import annotations

ACCEPTED_FORMATS: tuple[str, ...] = ("jpeg", "png", "webp", "gif", "bmp", "tiff")

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),  # little-endian TIFF
    (b"MM\x00*", "tiff"),  # big-endian TIFF
    (b"II+\x00", "tiff"),  # little-endian BigTIFF
    (b"MM\x00+", "tiff"),  # big-endian BigTIFF
)

# "BM" alone is too weak a signature (any text may start with it), so a BMP must also carry
# one of the DIB header sizes Pillow can read, at offset 14.
_BMP_DIB_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_WEBP_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X"})


def sniff_format(data: bytes) -> str | None:
    """The format of an image from its magic bytes ("jpeg", "png", ...), or None if it is not
    one of ACCEPTED_FORMATS."""
    for prefix, name in _PREFIXES:
        if data.startswith(prefix):
            return name
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and data[12:16] in _WEBP_CHUNKS:
        return "webp"
    if (
        data[:2] == b"BM"
        and len(data) >= 18
        and int.from_bytes(data[14:18], "little") in _BMP_DIB_HEADER_SIZES
    ):
        return "bmp"
    return None
