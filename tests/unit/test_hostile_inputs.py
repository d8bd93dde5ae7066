"""Hostile image bytes: each is a clean InvalidArgument with a stable reason, from the header
probe (the server, at submit time) and from decode (the worker), never a crash or a hang."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from imageeditor.v1 import image_editor_service_pb2 as pb
from PIL import EpsImagePlugin, ImageFile

from editcore.errors import InvalidArgument
from editcore.image_probe import ImageHeader, count_gif_frames, probe
from editcore.settings import Settings
from server.validation import validate_submit
from tests.hostile_images import (
    REFUSED_BY_PROBE,
    gif_of_frames,
    jpeg_photo,
    png_of_one_colour,
    tiff_of_pages,
)
from workers.imaging import decode

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
    assert count_gif_frames(many, 1_001) == 1_001
    assert time.perf_counter() - start < 0.1
    assert count_gif_frames(gif_of_frames(7), 1_001) == 7
    assert probe(gif_of_frames(1_000), **LIMITS).frames == 1_000
    assert probe(tiff_of_pages(3), **LIMITS).frames == 3


def test_acceptable_images_probe_to_their_header() -> None:
    assert probe(jpeg_photo(), **LIMITS) == ImageHeader("jpeg", 512, 512, 1)
    assert probe(png_of_one_colour(3000, 2000), **LIMITS) == ImageHeader("png", 3000, 2000, 1)
    image = decode(gif_of_frames(3), **LIMITS)
    assert image.size == (1, 1)
