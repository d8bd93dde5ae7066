"""The edit flags of the CLI through a real service: order, geometry and metadata arrive."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as photos

from tests.e2e.harness import ServerProcess

pytestmark = pytest.mark.e2e


def test_cli_edit_steps_apply_in_order_and_keep_metadata(
    server: ServerProcess, tmp_path: Path
) -> None:
    source = Image.fromarray(photos.chelsea())  # 451x300
    source.paste((255, 0, 0), (0, 0, 30, 30))  # a red top-left corner
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    photo, out = tmp_path / "chelsea.jpg", tmp_path / "out.png"
    source.save(photo, "JPEG", quality=95, exif=exif.tobytes())

    # Crop the top-left 200x100, turn it a quarter counter-clockwise (the red corner goes to
    # the bottom left), then mirror it (to the bottom right).
    server.cli(
        "submit", str(photo), "--crop", "200x100+0+0", "--rotate", "90", "--expand", "--flop",
        "--effort", "9", "--keep-metadata", "--format", "png", "-o", str(out), check=True,
    )  # fmt: skip

    result = Image.open(io.BytesIO(out.read_bytes()))
    assert result.size == (100, 200)
    rgb = result.convert("RGB")
    for corner, is_red in (((95, 195), True), ((5, 195), False), ((95, 5), False)):
        red, green, _ = rgb.getpixel(corner)  # type: ignore[misc]
        assert (red > 200 and green < 60) == is_red, corner
    assert result.getexif()[0x010F] == "Camera maker"
