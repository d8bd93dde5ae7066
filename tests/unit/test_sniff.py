"""sniff_format: the six accepted formats by magic bytes, None for everything else."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from imageeditor.core.sniff import ACCEPTED_FORMATS, sniff_format

BMP_HEADER = b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little") + b"\x00" * 36


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8L", "webp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8X", "webp"),
        (b"GIF87a\x01\x00\x01\x00", "gif"),
        (b"GIF89a\x01\x00\x01\x00", "gif"),
        (BMP_HEADER, "bmp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"II+\x00\x08\x00\x00\x00", "tiff"),
    ],
)
def test_accepted_formats_are_recognised(data: bytes, expected: str) -> None:
    assert sniff_format(data) == expected
    assert expected in ACCEPTED_FORMATS


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",  # too short to be a JPEG
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n",
        b"\xc5\xd0\xd3\xc6\x1e\x00\x00\x00",  # binary EPS (DOS EPS header)
        b"BMW is a car, not a bitmap header at all",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF that is not WEBP
        b"\x00\x00\x00\x18ftypheic",  # HEIC
        b"hello world",
    ],
)
def test_everything_else_is_none(data: bytes) -> None:
    assert sniff_format(data) is None


def test_real_pillow_output_is_recognised() -> None:
    for name, pillow_name in [
        ("jpeg", "JPEG"),
        ("png", "PNG"),
        ("webp", "WEBP"),
        ("gif", "GIF"),
        ("bmp", "BMP"),
        ("tiff", "TIFF"),
    ]:
        buffer = BytesIO()
        Image.new("RGB", (4, 3), "red").save(buffer, pillow_name)
        assert sniff_format(buffer.getvalue()) == name
