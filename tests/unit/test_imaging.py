"""decode and encode: the accepted formats, the limits, the modes and the draft fast path."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import partial
from io import BytesIO

import pytest
from PIL import Image, ImageCms, ImageFile

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.spec import ImageFormat, OutputOptions, Resize, ResizeFit
from imageeditor.workers.imaging import decode, encode
from imageeditor.workers.operations import resize
from imageeditor.workers.operations.resize import decode_size_needed

MAX_PIXELS = 50_000_000


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny (wrong) IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def reason_of(data: bytes, **kwargs: object) -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode(data, max_pixels=kwargs.pop("max_pixels", MAX_PIXELS), **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_each_accepted_format_decodes(fmt: str) -> None:
    image = decode(encoded(Image.new("RGB", (30, 20), (200, 30, 30)), fmt), max_pixels=MAX_PIXELS)
    assert image.size == (30, 20)
    assert image.mode in ("RGB", "L", "RGBA")
    red, green, blue = image.convert("RGB").getpixel((15, 10))  # type: ignore[misc]
    assert red > 150 and green < 80 and blue < 80


def test_multi_frame_images_give_their_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    image = decode(data, max_pixels=MAX_PIXELS)
    assert image.convert("RGB").getpixel((4, 4)) == (255, 0, 0)
    assert getattr(image, "n_frames", 1) == 1


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        b"just some text",
        b"",
    ],
)
def test_other_formats_are_unsupported(data: bytes) -> None:
    assert reason_of(data) == "IMAGE_FORMAT_UNSUPPORTED"


def test_eps_is_refused_before_pillow_sees_it() -> None:
    eps = encoded(Image.new("RGB", (10, 10)), "EPS")  # Pillow writes EPS without Ghostscript
    assert eps.startswith(b"%!PS-Adobe")
    assert reason_of(eps) == "IMAGE_FORMAT_UNSUPPORTED"


def test_bytes_that_only_look_like_a_png_are_corrupt() -> None:
    assert reason_of(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) == "IMAGE_CORRUPT"


# -- limits and damage ------------------------------------------------------------------------


def test_a_header_claiming_a_huge_size_is_refused() -> None:
    assert reason_of(png_header_only(100_000, 100_000)) == "IMAGE_TOO_LARGE"


def test_the_pixel_limit_is_checked_before_any_pixel_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded pixels of an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_load)
    assert reason_of(png_header_only(2000, 1000), max_pixels=1_999_999) == "IMAGE_TOO_LARGE"


def test_pillows_decompression_bomb_warning_is_an_error() -> None:
    # 100 M pixels: under our generous limit, over Pillow's MAX_IMAGE_PIXELS (~89 M), where
    # Pillow only warns.
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000
    data = png_header_only(10_000, 10_000)
    assert reason_of(data, max_pixels=200_000_000) == "IMAGE_TOO_LARGE"


def test_a_truncated_jpeg_is_corrupt() -> None:
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    assert reason_of(data[: len(data) // 2]) == "IMAGE_CORRUPT"


def test_a_png_whose_data_is_shorter_than_its_header_says_is_corrupt() -> None:
    assert reason_of(png_header_only(200, 100)) == "IMAGE_CORRUPT"


# -- orientation and modes --------------------------------------------------------------------


def test_exif_orientation_6_is_applied() -> None:
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste((255, 0, 0), (0, 0, 40, 10))  # top half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    image = decode(encoded(stored, "JPEG", exif=exif.tobytes()), max_pixels=MAX_PIXELS)
    assert image.size == (20, 40)
    red_side: tuple[int, ...] = image.getpixel((15, 20))  # type: ignore[assignment]
    blue_side: tuple[int, ...] = image.getpixel((4, 20))  # type: ignore[assignment]
    assert red_side[0] > 200 and blue_side[2] > 200
    assert 0x0112 not in image.getexif()


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode(
        encoded(Image.new("CMYK", (10, 10), (0, 255, 255, 0)), "JPEG"), max_pixels=MAX_PIXELS
    )
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((5, 5))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize(("value", "expected"), [(65535, 255), (32896, 128), (0, 0)])
def test_16_bit_png_is_scaled_to_8_bit_gray(value: int, expected: int) -> None:
    source = Image.new("I;16", (8, 8), value)
    image = decode(encoded(source, "PNG"), max_pixels=MAX_PIXELS)
    assert image.mode == "L"
    assert image.getpixel((0, 0)) == expected


def test_palette_with_transparency_becomes_rgba() -> None:
    source = Image.new("P", (8, 8), 1)
    source.putpalette([0, 0, 0, 255, 0, 0])
    source.paste(0, (0, 0, 4, 8))
    image = decode(encoded(source, "PNG", transparency=0), max_pixels=MAX_PIXELS)
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert image.getpixel((6, 0)) == (255, 0, 0, 255)


def test_palette_without_transparency_becomes_rgb() -> None:
    source = Image.new("RGB", (8, 8), "green").convert("P")
    assert decode(encoded(source, "PNG"), max_pixels=MAX_PIXELS).mode == "RGB"


@pytest.mark.parametrize(
    ("mode", "expected"), [("LA", "LA"), ("1", "L"), ("L", "L"), ("RGBA", "RGBA")]
)
def test_modes_are_normalised(mode: str, expected: str) -> None:
    source = Image.new(mode, (8, 8))
    assert decode(encoded(source, "PNG"), max_pixels=MAX_PIXELS).mode == expected


def test_decode_carries_only_exif_and_icc_for_encode_to_decide_on() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    source = Image.new("RGB", (8, 8))
    data = encoded(source, "JPEG", exif=exif.tobytes(), comment=b"hello", icc_profile=icc)
    image = decode(data, max_pixels=MAX_PIXELS)
    assert set(image.info) == {"exif", "icc_profile"}
    assert decode(encoded(source, "PNG"), max_pixels=MAX_PIXELS).info == {}


# -- the draft fast path ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return encoded(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB"), "JPEG")


def test_draft_decodes_a_large_jpeg_at_reduced_scale_but_covers_the_box(big_jpeg: bytes) -> None:
    full = decode(big_jpeg, max_pixels=MAX_PIXELS)
    drafted = decode(big_jpeg, max_pixels=MAX_PIXELS, draft=lambda _: (500, 500))
    assert full.size == (4000, 3000)
    assert drafted.size == (1000, 750)  # 1/4 scale: the smallest that stays >= 500x500
    op = Resize(width=500, height=500)
    assert resize(drafted, op).size == resize(full, op).size == (500, 375)


def test_draft_with_one_side_free(big_jpeg: bytes) -> None:
    assert decode(big_jpeg, max_pixels=MAX_PIXELS, draft=lambda _: (0, 700)).size == (1000, 750)


def test_draft_box_is_turned_with_the_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = encoded(Image.new("RGB", (4000, 3000), "gray"), "JPEG", exif=exif.tobytes())
    # Upright the image is 3000x4000. A wide box must not shrink its (upright) width below 2000,
    # which a box applied to the stored, sideways pixels would do.
    wide = decode(stored, max_pixels=MAX_PIXELS, draft=lambda _: (2000, 300))
    assert wide.size == (3000, 4000)
    tall = decode(stored, max_pixels=MAX_PIXELS, draft=lambda _: (300, 2000))
    assert tall.size == (1500, 2000)


def test_draft_is_ignored_for_other_formats() -> None:
    data = encoded(Image.new("RGB", (800, 600)), "PNG")
    assert decode(data, max_pixels=MAX_PIXELS, draft=lambda _: (100, 100)).size == (800, 600)


# -- encode -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ImageFormat))
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_encode_round_trips(fmt: ImageFormat, mode: str) -> None:
    source = Image.new(
        mode, (37, 21), 128 if mode.startswith("L") else (10, 120, 230, 255)[: len(mode)]
    )  # type: ignore[arg-type]
    result = encode(source, OutputOptions(format=fmt))
    assert (result.width, result.height, result.format) == (37, 21, fmt)
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    reopened = Image.open(BytesIO(result.data))
    assert reopened.format == fmt.value.upper()
    assert reopened.size == (37, 21)


def test_jpeg_from_rgba_is_flattened_onto_white() -> None:
    source = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    source.paste((255, 0, 0, 255), (0, 0, 8, 16))
    result = encode(source, OutputOptions(format=ImageFormat.JPEG))
    reopened = Image.open(BytesIO(result.data))
    assert reopened.mode == "RGB"
    assert min(reopened.getpixel((14, 8))) > 240  # type: ignore[arg-type]
    red, green, _ = reopened.getpixel((2, 8))  # type: ignore[misc]
    assert red > 200 and green < 50


def test_quality_and_lossless_are_honoured() -> None:
    source = Image.effect_noise((64, 64), 60).convert("RGB")
    low = encode(source, OutputOptions(format=ImageFormat.JPEG, quality=20))
    high = encode(source, OutputOptions(format=ImageFormat.JPEG, quality=95))
    assert len(low.data) < len(high.data)
    lossless = encode(source, OutputOptions(format=ImageFormat.WEBP, lossless=True))
    assert Image.open(BytesIO(lossless.data)).convert("RGB").tobytes() == source.tobytes()


def test_metadata_is_stripped_by_default_and_kept_on_request() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    source = encoded(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes(), icc_profile=icc)
    image = decode(source, max_pixels=MAX_PIXELS)
    for fmt in ImageFormat:
        stripped = Image.open(BytesIO(encode(image, OutputOptions(format=fmt)).data))
        assert "icc_profile" not in stripped.info or not stripped.info["icc_profile"]
        assert not stripped.getexif()
        kept = Image.open(BytesIO(encode(image, OutputOptions(fmt, keep_metadata=True)).data))
        assert kept.info.get("icc_profile") == icc
        assert kept.getexif()[0x010F] == "Camera maker"
    gray = encode(image.convert("L"), OutputOptions(ImageFormat.PNG, keep_metadata=True))
    assert "icc_profile" not in Image.open(BytesIO(gray.data)).info  # an RGB profile on gray


def test_a_jpeg_is_decoded_no_larger_than_its_first_resize_needs() -> None:
    # A 3:2 photo fitted into a 1024 box ends 1024x683: a quarter-scale decode (1500x1000)
    # covers that, though it would not cover the whole 1024x1024 box.
    photo = encoded(Image.new("RGB", (6000, 4000), "gray"), "JPEG")
    op = Resize(width=1024, height=1024)
    assert decode_size_needed((6000, 4000), op) == (1024, 683)
    drafted = decode(photo, max_pixels=MAX_PIXELS, draft=partial(decode_size_needed, op=op))
    assert drafted.size == (1500, 1000)
    assert resize(drafted, op).size == (1024, 683)


def test_cover_needs_the_scale_of_its_crop_not_of_the_box() -> None:
    op = Resize(width=500, height=500, fit=ResizeFit.COVER)
    # The short side must reach 500: the whole 6000x4000 image at 1/8 scale is 750x500.
    assert decode_size_needed((6000, 4000), op) == (750, 500)
