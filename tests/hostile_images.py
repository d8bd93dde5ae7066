"""Hostile image bytes for the tests: bombs, liars, impostors and frame floods.

Each builder makes its bytes directly (block by block where Pillow would be slow or refuse),
so the tests can feed the same inputs to the probe, to decode, to the server's validation and
to a running service. REFUSED_BY_PROBE names the reason each is refused with from its headers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from io import BytesIO

from PIL import Image
from skimage import data as photos


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_one_colour(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of width x height zeros, compressed row by row (never whole
    in memory): 20000x20000 is 400 M pixels in about 60 KB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0, then the packed bits
    rows = [compressor.compress(row * 500) for _ in range(height // 500)]
    idat = b"".join(rows) + compressor.compress(row * (height % 500)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, followed by almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_of_frames(count: int, frame_size: tuple[int, int] = (1, 1)) -> bytes:
    """A 1x1 GIF of `count` frames, written block by block (Pillow would take minutes)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    control = b"\x21\xf9\x04\x00\x00\x00\x00\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame_size, 0)
    pixel = b"\x02\x02\x44\x01\x00"  # LZW: clear, index 0, end
    return screen + (control + descriptor + pixel) * count + b";"


def jpeg_photo() -> bytes:
    out = BytesIO()
    Image.fromarray(photos.astronaut()).save(out, "JPEG", quality=90)
    return out.getvalue()


def eps() -> bytes:
    out = BytesIO()
    Image.new("RGB", (10, 10)).save(out, "EPS")  # Pillow writes EPS without Ghostscript
    return out.getvalue()


def tiff_of_pages(count: int) -> bytes:
    pages = [Image.new("L", (1, 1), i % 256) for i in range(count)]
    out = BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def small(format: str, **options: object) -> bytes:
    """A real 8x8 image in `format`."""
    out = BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, format, **options)
    return out.getvalue()


def jpeg_comment_flood(count: int) -> bytes:
    """A real JPEG with `count` empty comment segments (FF FE 00 02) before its frame."""
    jpeg = small("JPEG")
    return jpeg[:2] + b"\xff\xfe\x00\x02" * count + jpeg[2:]


def jpeg_flood_after_the_scan(count: int) -> bytes:
    """A real JPEG whose scan is followed by `count` empty comments, then the end marker."""
    jpeg = small("JPEG")
    return jpeg[:-2] + b"\xff\xfe\x00\x02" * count + jpeg[-2:]


def png_chunk_flood(count: int) -> bytes:
    """A real PNG with `count` empty private chunks between its header and its data."""
    png = small("PNG")
    return png[:33] + chunk(b"prIv", b"") * count + png[33:]


def gif_sub_block_flood(count: int) -> bytes:
    """A real GIF with a comment extension of `count` 1-byte sub-blocks before its frame."""
    gif = small("GIF")
    frame = gif.index(b"\x2c", 13)
    return gif[:frame] + b"\x21\xfe" + b"\x01x" * count + b"\x00" + gif[frame:]


def gif_extension_flood(count: int) -> bytes:
    """A real GIF with `count` empty comment extensions before its frame."""
    gif = small("GIF")
    frame = gif.index(b"\x2c", 13)
    return gif[:frame] + b"\x21\xfe\x00" * count + gif[frame:]


def tiff_tag_flood(directories: int, tags: int) -> bytes:
    """A little-endian TIFF: a chain of `directories` image file directories of `tags`
    entries each (all of one unknown tag), then a real 1x1 page's directory."""
    page = BytesIO()
    Image.new("L", (1, 1)).save(page, "TIFF")
    real = page.getvalue()
    real_ifd = struct.unpack_from("<I", real, 4)[0]
    body = bytearray(real)
    offset = len(body)
    struct.pack_into("<I", body, 4, offset)  # the chain starts with the flood
    for n in range(directories):
        following = offset + 2 + 12 * tags + 4
        last = n == directories - 1
        body += struct.pack("<H", tags) + struct.pack("<HHII", 65000, 1, 1, 0) * tags
        body += struct.pack("<I", real_ifd if last else following)
        offset = following
    return bytes(body)


XXE_SVG = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&xxe;</text></svg>"""

# name -> (bytes, the reason probe gives). Refused from the headers alone.
REFUSED_BY_PROBE: dict[str, tuple[Callable[[], bytes], str]] = {
    "decompression bomb 20000x20000": (
        lambda: png_of_one_colour(20_000, 20_000),
        "IMAGE_TOO_LARGE",
    ),
    "header claims 65535x65535": (lambda: png_header_claiming(65_535, 65_535), "IMAGE_TOO_LARGE"),
    "text": (lambda: b"Dear customer, this is not a photo.\n", "IMAGE_FORMAT_UNSUPPORTED"),
    "empty": (lambda: b"", "IMAGE_FORMAT_UNSUPPORTED"),
    "svg with an external entity": (lambda: XXE_SVG, "IMAGE_FORMAT_UNSUPPORTED"),
    "eps": (eps, "IMAGE_FORMAT_UNSUPPORTED"),
    "pdf": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "IMAGE_FORMAT_UNSUPPORTED"),
    "gif of 5000 frames": (lambda: gif_of_frames(5_000), "IMAGE_TOO_MANY_FRAMES"),
    "tiff of 1200 pages": (lambda: tiff_of_pages(1_200), "IMAGE_TOO_MANY_FRAMES"),
    "gif frame larger than its screen": (
        lambda: gif_of_frames(1, (60_000, 60_000)),
        "IMAGE_TOO_LARGE",
    ),
    "jpeg cut inside its header": (lambda: jpeg_photo()[:120], "IMAGE_CORRUPT"),
    # Floods of empty structure, refused before Pillow walks it (at 24 MB, seconds each).
    "jpeg of 5000 empty comments": (lambda: jpeg_comment_flood(5_000), "IMAGE_TOO_COMPLEX"),
    "jpeg with 5000 comments after its scan": (
        lambda: jpeg_flood_after_the_scan(5_000),
        "IMAGE_TOO_COMPLEX",
    ),
    "png of 20000 empty chunks": (lambda: png_chunk_flood(20_000), "IMAGE_TOO_COMPLEX"),
    "gif of 20000 one-byte sub-blocks": (
        lambda: gif_sub_block_flood(20_000),
        "IMAGE_TOO_COMPLEX",
    ),
    "gif of 20000 empty extensions": (lambda: gif_extension_flood(20_000), "IMAGE_TOO_COMPLEX"),
    "tiff of 20 directories of 4000 tags": (lambda: tiff_tag_flood(20, 4_000), "IMAGE_TOO_COMPLEX"),
}
