"""How much structure an image file has, walked at a bounded cost before Pillow parses it.

Pillow's plugins (and the decoders behind them) walk every JPEG marker, PNG chunk, GIF
sub-block and TIFF tag they meet, in Python or C, whatever their number: a 24 MB JPEG of
six million empty comments cost 8 s of header parsing here, and a minute to decode. A real
image has a few dozen segments, or a few thousand chunks of image data; so this module walks
the file's own framing (lengths and offsets, nothing decoded), counts what it passes, and
refuses a file that holds more than any encoder writes, as IMAGE_TOO_COMPLEX, after a walk
whose cost is bounded by the cap rather than by the file.

Damage is not this module's business: a walk that runs off the end of the data stops, and
Pillow reports the damage (IMAGE_CORRUPT).
"""

from __future__ import annotations

import re
import struct

from imageeditor.core.errors import InvalidArgument

# JPEG: markers with a length (everything but SOI, EOI, RSTn and TEM), before and between
# scans. A progressive photo with EXIF, ICC and XMP has about 40; MPO and multi-scan files
# a few hundred.
MAX_JPEG_SEGMENTS = 4_096
# PNG: libpng writes image data in 8 KB chunks, so a 25 MB PNG has ~3,200 of them.
MAX_PNG_CHUNKS = 16_384
# GIF: image data travels in sub-blocks of up to 255 bytes, which encoders fill. A file may
# have this many blocks and sub-blocks, plus one per 128 bytes and eight per frame (a frame
# and its extensions take about six).
GIF_BASE_BUDGET = 8_192
GIF_BYTES_PER_SUB_BLOCK = 128
GIF_BUDGET_PER_FRAME = 8
# TIFF: tags in all the directories walked (a page has a few dozen).
MAX_TIFF_TAGS = 65_536

# A marker that starts a segment, as it stands after a scan's entropy-coded data (where 0xFF
# is followed by 0x00 stuffing or a restart marker D0-D7, never by one of these).
_JPEG_MARKER = re.compile(rb"\xff[\xc0-\xcf\xd9-\xfe]")
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})  # TEM, RSTn, SOI, EOI
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


def too_complex(what: str, limit: int) -> InvalidArgument:
    return InvalidArgument(
        f"the image holds more than {limit} {what}; no encoder writes so many",
        reason="IMAGE_TOO_COMPLEX",
    )


def check_structure(data: bytes, name: str) -> None:
    """IMAGE_TOO_COMPLEX if the `name` image ("jpeg", "png", "tiff") has more segments, chunks
    or tags than any encoder writes. GIFs are walked by `gif_frames`, which counts their
    frames on the way; BMP has no such structure, and WEBP's is walked by libwebp in C."""
    walk = _WALKS.get(name)
    if walk is not None:
        walk(data)


def _jpeg(data: bytes) -> None:
    position, segments = 2, 0
    while position + 4 <= len(data):
        if data[position] != 0xFF:  # damaged: Pillow will say so
            return
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _JPEG_EOI:
            return
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise too_complex("JPEG segments", MAX_JPEG_SEGMENTS)
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == _JPEG_SOS:  # entropy-coded data follows, up to the next marker
            following = _JPEG_MARKER.search(data, position)
            if following is None:
                return
            position = following.start()


def _png(data: bytes) -> None:
    position, chunks = 8, 0
    while position + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise too_complex("PNG chunks", MAX_PNG_CHUNKS)
        length = int.from_bytes(data[position : position + 4], "big")
        if data[position + 4 : position + 8] == b"IEND":
            return
        position += 12 + length


def gif_frames(data: bytes, stop_at: int) -> int:
    """The number of image descriptors in a GIF, counting no further than stop_at;
    IMAGE_TOO_COMPLEX when the blocks and sub-blocks walked exceed the GIF budget.

    Walks the block structure (GIF89a, section 17 on): extensions and image data are chains of
    length-prefixed sub-blocks, skipped without decoding. Damage ends the count where it is.
    Call it before Pillow opens a GIF: Pillow walks every block before the first frame.
    """
    position = 13  # signature (6) + logical screen descriptor (7)
    if len(data) < position:
        return 0
    position += _color_table_size(data[10])
    budget = GIF_BASE_BUDGET + len(data) // GIF_BYTES_PER_SUB_BLOCK
    frames = 0
    while position < len(data) and frames < stop_at:
        introducer = data[position]
        if introducer == 0x2C:  # image descriptor: 9 bytes, a colour table, the LZW code size
            if position + 10 > len(data):
                break
            position += 10 + _color_table_size(data[position + 9]) + 1
            frames += 1
            budget += GIF_BUDGET_PER_FRAME
        elif introducer == 0x21:  # extension: its label, then sub-blocks
            position += 2
        else:  # the trailer (0x3B) or garbage
            break
        # The block, then its sub-blocks: a size byte, that many bytes, until a size of 0.
        budget -= 1
        while position < len(data):
            budget -= 1
            if budget < 0:
                raise too_complex("GIF blocks for its size", GIF_BASE_BUDGET)
            size = data[position]
            position += 1 + size
            if size == 0:
                break
    return frames


def _color_table_size(flags: int) -> int:
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0


def _tiff(data: bytes) -> None:
    """Walk the chain of image file directories, counting tags (classic and BigTIFF); an
    empty directory counts as one, so a chain of empty ones is bounded too."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    # BigTIFF: 8-byte offsets and tag counts, 20-byte entries; classic: 4, 2 and 12.
    offset_format, count_format, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    count_size = struct.calcsize(count_format)
    offset = _unpack(data, order + offset_format, 8 if big else 4)
    tags, seen = 0, set()
    while offset and offset not in seen:
        seen.add(offset)
        count = _unpack(data, order + count_format, offset)
        if count is None:
            return
        tags += max(count, 1)
        if tags > MAX_TIFF_TAGS:
            raise too_complex("TIFF tags", MAX_TIFF_TAGS)
        offset = _unpack(data, order + offset_format, offset + count_size + count * entry_size)


def _unpack(data: bytes, fmt: str, at: int) -> int | None:
    """The number packed at `at`, or None past the end of the data."""
    if at + struct.calcsize(fmt) > len(data):
        return None
    value: int = struct.unpack_from(fmt, data, at)[0]
    return value


_WALKS = {"jpeg": _jpeg, "png": _png, "tiff": _tiff}
