"""Hostile image bytes: each is a clean InvalidArgument with a stable reason, from the header
probe (the server, at submit time) and from decode (the worker), never a crash or a hang."""

from __future__ import annotations

import os
import time
from io import BytesIO
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image, ImageCms, ImageFile

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.image_probe import ImageHeader, probe
from imageeditor.core.image_structure import check_structure, gif_frames
from imageeditor.core.settings import Settings
from imageeditor.server.validation import validate_submit
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.workers.imaging import decode
from tests.hostile_images import (
    REFUSED_BY_PROBE,
    chunk,
    gif_of_frames,
    gif_sub_block_flood,
    jpeg_comment_flood,
    jpeg_photo,
    png_chunk_flood,
    png_of_one_colour,
    tiff_of_pages,
)

SETTINGS = Settings()
LIMITS = {"max_pixels": SETTINGS.max_image_pixels, "max_frames": SETTINGS.max_frames}


@pytest.fixture(autouse=True)
def no_ghostscript(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was about to run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)


@pytest.mark.parametrize("name", list(REFUSED_BY_PROBE))
def test_probe_refuses_hostile_bytes_from_their_headers(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, reason = REFUSED_BY_PROBE[name]
    data = make()

    def must_not_load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("probe decoded pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_load)
    start = time.perf_counter()
    with pytest.raises(InvalidArgument) as caught:
        probe(data, **LIMITS)
    assert caught.value.reason == reason
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name", list(REFUSED_BY_PROBE))
def test_decode_refuses_them_the_same_way(name: str) -> None:
    make, reason = REFUSED_BY_PROBE[name]
    with pytest.raises(InvalidArgument) as caught:
        decode(make(), **LIMITS)
    assert caught.value.reason == reason


@pytest.mark.parametrize("name", list(REFUSED_BY_PROBE))
def test_the_server_refuses_them_inline_at_submit(name: str) -> None:
    make, reason = REFUSED_BY_PROBE[name]
    data = make()
    with pytest.raises(InvalidArgument) as caught:
        validate_submit(pb.SubmitTaskRequest(image_data=data), SETTINGS)
    assert caught.value.reason == ("IMAGE_EMPTY" if not data else reason)
    assert "image_data" in caught.value.field_violations


def test_a_bomb_is_refused_by_pillows_own_check_even_under_a_generous_cap() -> None:
    with pytest.raises(InvalidArgument) as caught:
        probe(png_of_one_colour(20_000, 20_000), max_pixels=10**12, max_frames=10)
    assert caught.value.reason == "IMAGE_TOO_LARGE"


def test_a_text_file_named_jpg_is_judged_by_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_text("<html>not a photo</html>")
    with pytest.raises(InvalidArgument) as caught:
        decode(path.read_bytes(), **LIMITS)
    assert caught.value.reason == "IMAGE_FORMAT_UNSUPPORTED"


def test_a_truncated_jpeg_passes_the_probe_and_fails_decoding_cleanly() -> None:
    data = jpeg_photo()
    truncated = data[: len(data) // 2]
    assert probe(truncated, **LIMITS) == ImageHeader("jpeg", 512, 512, 1)
    with pytest.raises(InvalidArgument) as caught:
        decode(truncated, **LIMITS)
    assert caught.value.reason == "IMAGE_CORRUPT"


def test_frames_are_counted_only_up_to_the_limit() -> None:
    many = gif_of_frames(500_000)  # 11 MB: Pillow's own n_frames walks it for over a second
    start = time.perf_counter()
    assert gif_frames(many, 1_001) == 1_001
    assert time.perf_counter() - start < 0.1
    assert gif_frames(gif_of_frames(7), 1_001) == 7
    assert probe(gif_of_frames(1_000), **LIMITS).frames == 1_000
    assert probe(tiff_of_pages(3), **LIMITS).frames == 3


def test_acceptable_images_probe_to_their_header() -> None:
    assert probe(jpeg_photo(), **LIMITS) == ImageHeader("jpeg", 512, 512, 1)
    assert probe(png_of_one_colour(3000, 2000), **LIMITS) == ImageHeader("png", 3000, 2000, 1)
    image = decode(gif_of_frames(3), **LIMITS)
    assert image.size == (1, 1)


def png_in_small_chunks(width: int, height: int, chunk_size: int) -> bytes:
    """A real RGB PNG of noise whose image data is split into IDAT chunks of chunk_size."""
    out = BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    png = out.getvalue()
    # Pillow writes one IDAT run; rebuild it as libpng would, in small chunks.
    start = png.index(b"IDAT") - 4
    data = b""
    position = start
    while png[position + 4 : position + 8] == b"IDAT":
        length = int.from_bytes(png[position : position + 4], "big")
        data += png[position + 8 : position + 8 + length]
        position += 12 + length
    pieces = [chunk(b"IDAT", data[i : i + chunk_size]) for i in range(0, len(data), chunk_size)]
    return png[:start] + b"".join(pieces) + png[position:]


def test_what_encoders_write_is_not_too_complex() -> None:
    """Real files near the structure caps: a progressive JPEG with EXIF and an ICC profile,
    a 4 MB PNG in libpng's 8 KB chunks (and 1 KB ones), a GIF of 1,000 frames, a TIFF of
    500 pages."""
    photo = Image.open(BytesIO(jpeg_photo()))
    exif = Image.Exif()
    exif[0x010F] = "camera"  # Make
    progressive = BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.save(progressive, "JPEG", progressive=True, exif=exif, icc_profile=icc)
    check_structure(progressive.getvalue(), "jpeg")
    assert probe(progressive.getvalue(), **LIMITS).width == 512

    for chunk_size in (8192, 1024):
        png = png_in_small_chunks(1200, 1200, chunk_size)
        assert probe(png, **LIMITS) == ImageHeader("png", 1200, 1200, 1)
    assert probe(gif_of_frames(1_000), **LIMITS).frames == 1_000
    assert probe(tiff_of_pages(500), **LIMITS).frames == 500


def test_a_flood_is_refused_at_a_cost_bounded_by_the_cap() -> None:
    """24 MB of empty structure took Pillow 7-8 s to parse; the walk stops at the cap."""
    floods = {
        "jpeg": jpeg_comment_flood(6_000_000),
        "png": png_chunk_flood(2_000_000),
        "gif": gif_sub_block_flood(12_000_000),
    }
    for name, data in floods.items():
        assert len(data) > 20_000_000
        with pytest.raises(InvalidArgument) as caught:
            probe(data, **LIMITS)
        assert caught.value.reason == "IMAGE_TOO_COMPLEX", name
