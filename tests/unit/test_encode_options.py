"""encode's effort and keep_metadata on real photos: what reaches the output file."""

from __future__ import annotations

import functools
import struct
import time
from io import BytesIO

import pytest
from PIL import Image, ImageCms
from skimage import data as photos

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import Flop, ImageFormat, OutputOptions
from imageeditor.workers.imaging import DEFAULT_PNG_LEVEL, decode, encode
from imageeditor.workers.operations import apply_operations

MAX_PIXELS = 50_000_000
ORIENTATION, MAKE, DATE_TIME_ORIGINAL = 0x0112, 0x010F, 0x9003
EXIF_IFD = 0x8769


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(photos.astronaut())


@functools.cache
def srgb_icc() -> bytes:
    # Made once: a new profile carries the time it was made, so two calls can differ.
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_primaries_icc() -> bytes:
    """An RGB profile whose red and blue primaries are swapped: "red" in it is sRGB blue."""
    icc = bytearray(srgb_icc())
    (count,) = struct.unpack(">I", icc[128:132])
    entries = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    icc[red + 4 : red + 12], icc[blue + 4 : blue + 12] = (
        icc[blue + 4 : blue + 12],
        icc[red + 4 : red + 12],
    )
    return bytes(icc)


def reopen(data: bytes) -> Image.Image:
    return Image.open(BytesIO(data))


def fastest_of_three(image: Image.Image, output: OutputOptions) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(3):
        start = time.perf_counter()
        size = len(encode(image, output).data)
        times.append(time.perf_counter() - start)
    return min(times), size


# -- effort -----------------------------------------------------------------------------------


def test_png_effort_trades_time_for_size(astronaut: Image.Image) -> None:
    fast_time, fast_size = fastest_of_three(astronaut, OutputOptions(ImageFormat.PNG, effort=1))
    slow_time, slow_size = fastest_of_three(astronaut, OutputOptions(ImageFormat.PNG, effort=9))
    assert slow_size < fast_size * 0.97
    assert slow_time > fast_time
    default = encode(astronaut, OutputOptions(ImageFormat.PNG)).data
    assert (
        default == encode(astronaut, OutputOptions(ImageFormat.PNG, effort=DEFAULT_PNG_LEVEL)).data
    )
    assert reopen(default).tobytes() == astronaut.tobytes()  # every level is lossless


def test_webp_effort_changes_the_encoding(astronaut: Image.Image) -> None:
    fast = encode(astronaut, OutputOptions(ImageFormat.WEBP, effort=1)).data
    slow = encode(astronaut, OutputOptions(ImageFormat.WEBP, effort=6)).data
    assert fast != slow
    assert len(slow) < len(fast)


# -- metadata ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera_jpeg(astronaut: Image.Image) -> bytes:
    """The astronaut as a camera would store it: on its side with orientation 6, EXIF in IFD0
    and in the Exif IFD, and an sRGB profile."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "Hasselblad"
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = "1984:02:07 12:00:00"
    stored = astronaut.crop((0, 0, 512, 300)).transpose(Image.Transpose.ROTATE_90)  # 300x512
    out = BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=srgb_icc())
    return out.getvalue()


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_keep_metadata_writes_exif_upright_and_the_icc_profile(
    camera_jpeg: bytes, fmt: ImageFormat
) -> None:
    image = apply_operations(decode(camera_jpeg, max_pixels=MAX_PIXELS), [Flop()])
    assert image.size == (512, 300)  # orientation 6 applied
    result = reopen(encode(image, OutputOptions(fmt, keep_metadata=True)).data)
    exif = result.getexif()
    assert exif[MAKE] == "Hasselblad"
    # The pixels are upright already: a viewer must not turn them (AVIF drops the default tag).
    assert exif.get(ORIENTATION, 1) == 1
    assert exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] == "1984:02:07 12:00:00"
    assert result.info["icc_profile"] == srgb_icc()
    assert result.size == (512, 300)


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_metadata_is_stripped_without_keep_metadata(camera_jpeg: bytes, fmt: ImageFormat) -> None:
    result = reopen(encode(decode(camera_jpeg, max_pixels=MAX_PIXELS), OutputOptions(fmt)).data)
    assert not result.getexif()
    assert not result.info.get("icc_profile")
    assert result.size == (512, 300)


def test_a_stripped_profile_is_applied_to_the_pixels_first() -> None:
    source = BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(
        source, "PNG", icc_profile=swapped_primaries_icc()
    )
    image = decode(source.getvalue(), max_pixels=MAX_PIXELS)
    stripped = reopen(encode(image, OutputOptions(ImageFormat.PNG)).data)
    red, _, blue = stripped.getpixel((8, 8))  # type: ignore[misc]
    assert blue > 150 and red < 80  # shown as the profile meant it: blue in sRGB
    kept = reopen(encode(image, OutputOptions(ImageFormat.PNG, keep_metadata=True)).data)
    assert kept.getpixel((8, 8)) == (200, 30, 30)  # the profile travels with untouched pixels
    assert kept.info["icc_profile"] == swapped_primaries_icc()


def test_a_profile_littlecms_cannot_read_is_dropped_without_failing() -> None:
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    image.info["icc_profile"] = b"\0" * 16 + b"RGB " + b"\0" * 100  # fits RGB, but is garbage
    result = reopen(encode(image, OutputOptions(ImageFormat.PNG)).data)
    assert result.getpixel((0, 0)) == (1, 2, 3) and not result.info.get("icc_profile")


def test_an_exif_block_too_large_for_a_jpeg_fails_with_a_stable_reason() -> None:
    """200 KB of EXIF (a PNG or WEBP may carry it) cannot go into a JPEG's one APP1 segment:
    a clean METADATA_TOO_LARGE, not Pillow's ValueError (INTERNAL); PNG and WEBP keep it."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 200_000  # ImageDescription
    source = BytesIO()
    Image.new("RGB", (16, 16)).save(source, "PNG", exif=exif.tobytes())
    image = decode(source.getvalue(), max_pixels=MAX_PIXELS)

    with pytest.raises(InvalidArgument) as refused:
        encode(image, OutputOptions(ImageFormat.JPEG, keep_metadata=True))
    assert refused.value.reason == "METADATA_TOO_LARGE"
    assert encode(image, OutputOptions(ImageFormat.JPEG)).width == 16  # dropped on request
    for fmt in (ImageFormat.PNG, ImageFormat.WEBP):
        kept = reopen(encode(image, OutputOptions(fmt, keep_metadata=True)).data)
        assert len(kept.getexif()[0x010E]) == 200_000
