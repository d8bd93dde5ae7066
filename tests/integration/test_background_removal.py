"""Background removal on a real photo with the real provisioned u2netp model (`make` installs
it): the cut-out itself, session reuse, refusals, and that nothing is ever downloaded."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
from PIL import Image
from skimage import data

from imageeditor.core.errors import FailedPrecondition, InvalidArgument
from imageeditor.core.rembg_models import find_model_file
from imageeditor.core.settings import Settings
from imageeditor.core.spec import RemoveBackground
from imageeditor.workers.background import BackgroundRemover

ROOT = Path(__file__).resolve().parents[2]
# Regions of skimage's astronaut (512x512) and what u2netp makes of them, checked by eye.
FACE = (190, 90, 250, 150)  # left, top, right, bottom
SUIT = (100, 300, 250, 450)
BACKGROUND = [(0, 0, 120, 150), (380, 0, 512, 200)]  # left of the head, right of it
# The top corners are background; the bottom ones are the suit and the flag: the subject
# runs off the bottom edge.
TOP_CORNERS = [(0, 0), (511, 0)]


@pytest.fixture(scope="module")
def settings() -> Settings:
    settings = Settings.from_env()
    if find_model_file(settings.models_dir, settings.rembg_model) is None:
        pytest.fail(
            f"{settings.rembg_model} is not installed in {settings.models_dir}: "
            "run `imageeditor models fetch` (make does)"
        )
    return settings


@pytest.fixture(scope="module")
def remover(settings: Settings) -> BackgroundRemover:
    return BackgroundRemover(settings)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"))


def region(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return array[top:bottom, left:right]


@pytest.mark.parametrize("photo", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_what_was_removed_cannot_be_recovered_from_the_file(
    remover: BackgroundRemover, photo: str, mode: str
) -> None:
    """The cut-out kept the photo's colours under alpha 0 (41-50% of it): anyone could undo
    the removal. Now every fully transparent pixel is 0, and the PNG is smaller for it."""
    image = Image.fromarray(getattr(data, photo)()).convert(mode)
    out = remover.apply(image, RemoveBackground())

    pixels = np.asarray(out)
    transparent = pixels[..., -1] == 0
    assert transparent.mean() > 0.1  # the photo has a background to remove
    assert not pixels[transparent].any()
    partial = (pixels[..., -1] > 0) & (pixels[..., -1] < 255)
    kept = np.asarray(image.convert(out.mode))[..., :-1]
    assert (pixels[..., :-1][partial] == kept[partial]).all()  # straight alpha, as before

    uncleared = image.convert(out.mode)
    uncleared.putalpha(out.getchannel("A"))
    assert len(png(out)) < len(png(uncleared))


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_subject_stays_opaque_and_the_background_turns_transparent(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    out = remover.apply(astronaut, RemoveBackground())
    assert out.mode == "RGBA" and out.size == astronaut.size
    a = alpha(out)
    assert all(a[y, x] < 10 for x, y in TOP_CORNERS)
    for box in BACKGROUND:
        assert region(a, box).max() < 10
    assert region(a, FACE).min() > 200
    assert region(a, SUIT).min() > 200
    # The colours are the photo's own.
    assert out.convert("RGB").getpixel((220, 120)) == astronaut.getpixel((220, 120))


def test_a_background_colour_fills_what_was_removed(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    out = remover.apply(astronaut, RemoveBackground(background=(0, 128, 255, 255)))
    assert out.mode == "RGB"
    pixels = np.asarray(out).astype(int)
    for x, y in TOP_CORNERS:
        assert np.abs(pixels[y, x] - (0, 128, 255)).max() <= 3
    # The mask is 254 there, not 255: a trace of the colour shows through.
    assert np.abs(pixels[120, 220] - astronaut.getpixel((220, 120))).max() <= 3


def test_a_translucent_background_colour_keeps_an_alpha_channel(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    out = remover.apply(astronaut, RemoveBackground(background=(255, 0, 0, 128)))
    assert out.mode == "RGBA"
    red, green, blue, a = out.getpixel((0, 0))
    assert red >= 250 and green <= 5 and blue <= 5 and 120 <= a <= 136


def test_a_gray_photo_gives_a_gray_cut_out(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    out = remover.apply(astronaut.convert("L"), RemoveBackground())
    assert out.mode == "LA"
    assert alpha(out)[0, 0] < 10 and region(alpha(out), FACE).min() > 200


def test_what_was_transparent_stays_transparent(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    source = astronaut.convert("RGBA")
    hole = Image.new("L", source.size, 255)
    hole.paste(0, FACE)
    source.putalpha(hole)
    out = remover.apply(source, RemoveBackground())
    assert region(alpha(out), FACE).max() == 0
    assert region(alpha(out), SUIT).min() > 200


def test_alpha_matting_refines_the_same_cut_out(
    remover: BackgroundRemover, astronaut: Image.Image
) -> None:
    out = remover.apply(astronaut, RemoveBackground(alpha_matting=True))
    assert out.mode == "RGBA" and out.size == astronaut.size
    a = alpha(out)
    assert all(a[y, x] < 10 for x, y in TOP_CORNERS)
    assert region(a, FACE).min() > 200


def test_one_session_per_model_whatever_the_calls_and_threads(
    settings: Settings, astronaut: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    real = onnxruntime.InferenceSession

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        created.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    remover = BackgroundRemover(settings)
    small = astronaut.resize((128, 128))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        start.wait()
        try:
            for _ in range(2):
                remover.apply(small, RemoveBackground())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    remover.warm_up()
    assert errors == []
    assert created == [str(find_model_file(settings.models_dir, settings.rembg_model))]


def test_a_missing_model_is_refused_without_reaching_the_network(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def no_network(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network use in a test of a missing model")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    remover = BackgroundRemover(replace(settings, models_dir=tmp_path))
    image = Image.new("RGB", (32, 32))
    for _ in range(2):  # a refusal is not cached: installing the file later is enough
        with pytest.raises(FailedPrecondition) as caught:
            remover.apply(image, RemoveBackground())
        assert caught.value.reason == "MODEL_NOT_INSTALLED"
        assert "imageeditor models fetch" in caught.value.message
        assert str(tmp_path) in caught.value.message
    assert attempts == []

    installed = find_model_file(settings.models_dir, settings.rembg_model)
    assert installed is not None
    (tmp_path / installed.name).symlink_to(installed)
    assert remover.apply(image, RemoveBackground()).mode == "RGBA"


def test_an_unknown_model_is_refused(remover: BackgroundRemover) -> None:
    for name in ("atlascloud", "sam", "../u2netp", "nonsense"):
        with pytest.raises(InvalidArgument) as caught:
            remover.apply(Image.new("RGB", (8, 8)), RemoveBackground(model=name))
        assert caught.value.reason == "MODEL_UNKNOWN"


def test_another_known_model_is_used_when_its_file_is_present(
    settings: Settings, astronaut: Image.Image, tmp_path: Path
) -> None:
    # silueta is u2net's architecture with u2netp's input: u2netp's file stands in for it,
    # here in rembg's newer models/<name>/<name>.onnx layout.
    installed = find_model_file(settings.models_dir, "u2netp")
    assert installed is not None
    (tmp_path / "models" / "silueta").mkdir(parents=True)
    (tmp_path / "models" / "silueta" / "silueta.onnx").symlink_to(installed)
    remover = BackgroundRemover(replace(settings, models_dir=tmp_path))
    out = remover.apply(astronaut, RemoveBackground(model="silueta"))
    assert region(alpha(out), FACE).min() > 200 and alpha(out)[0, 0] < 10


def run_python(
    code: str, *prefix: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


def test_nothing_is_downloaded_at_run_time(settings: Settings, tmp_path: Path) -> None:
    """A background removal in a network namespace with no interfaces at all, with the model
    in a folder of our own that rembg would not look in by itself (it would download)."""
    unshare = shutil.which("unshare")
    probe = run_python("pass", unshare, "--net") if unshare else None
    if probe is None or probe.returncode != 0:
        reason = "`unshare --net` is unavailable: " + (probe.stderr if probe else "not found")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    code = """
import socket
from PIL import Image
from skimage import data
from imageeditor.core.settings import Settings
from imageeditor.core.spec import RemoveBackground
from imageeditor.workers.background import BackgroundRemover
try:
    socket.create_connection(("192.0.2.1", 443), timeout=2)
    print("network reachable")
except OSError:
    pass
out = BackgroundRemover(Settings.from_env()).apply(
    Image.fromarray(data.astronaut()), RemoveBackground()
)
print(out.mode, out.getchannel("A").getpixel((0, 0)), out.getchannel("A").getpixel((220, 120)))
"""
    installed = find_model_file(settings.models_dir, settings.rembg_model)
    assert installed is not None
    (tmp_path / installed.name).symlink_to(installed)
    env = {k: v for k, v in os.environ.items() if k != "U2NET_HOME"}
    env.update(IMAGEEDITOR_MODELS_DIR=str(tmp_path), HOME=str(tmp_path / "home"))
    result = run_python(code, unshare or "", "--net", env=env)
    assert result.returncode == 0, result.stderr
    assert "network reachable" not in result.stdout
    mode, corner, face = result.stdout.split()
    assert mode == "RGBA" and int(corner) < 10 and int(face) > 200


def test_the_session_path_leaves_numba_alone_until_alpha_matting() -> None:
    code = """
import sys
from PIL import Image
from imageeditor.core.settings import Settings
from imageeditor.core.spec import RemoveBackground
from imageeditor.workers.background import BackgroundRemover
remover = BackgroundRemover(Settings.from_env())
remover.warm_up()
print(sorted({"numba", "pymatting"} & set(sys.modules)))
remover.apply(Image.new("RGB", (64, 64)), RemoveBackground(alpha_matting=True))
import rembg
print(sorted({"numba", "pymatting"} & set(sys.modules)), rembg.remove.__module__)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "['numba', 'pymatting'] rembg.bg"]


def test_building_the_embedded_service_loads_neither_rembg_nor_onnxruntime(
    tmp_path: Path,
) -> None:
    code = f"""
import sys
from pathlib import Path
from imageeditor.core.settings import Settings
from imageeditor.embedded.main import build
build(Settings(data_dir=Path({str(tmp_path)!r})))
print(sorted({{"rembg", "onnxruntime", "numba"}} & set(sys.modules)))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
