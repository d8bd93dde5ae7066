"""Background removal through a real server process and the CLI, with the model `make`
installed (IMAGEEDITOR_MODELS_DIR, if set, is passed through to the server)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from imageeditor.sdk import (
    Client,
    Stage,
    flip_operation,
    remove_background_operation,
    resize_operation,
)
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def astronaut(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture
def server_without_models(tmp_path: Path) -> Iterator[ServerProcess]:
    empty = tmp_path / "no-models"
    empty.mkdir()
    process = ServerProcess(
        tmp_path / "data", free_port(), IMAGEEDITOR_MODELS_DIR=str(empty)
    ).start()
    yield process
    process.stop()


def wait_for_log(server: ServerProcess, text: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log = server.log.read_text()
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the server log:\n{server.log.read_text()}")


def test_remove_background_yields_a_cut_out_with_a_transparent_background(
    server: ServerProcess, astronaut: Path, tmp_path: Path
) -> None:
    wait_for_log(server, "background removal ready")  # warmed up at start
    out = tmp_path / "out.png"
    result = server.cli(
        "submit",
        str(astronaut),
        "--remove-background",
        "--format",
        "png",
        "--watch",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGBA" and image.size == (512, 512)
        alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) < 10 and alpha.getpixel((511, 0)) < 10
    assert alpha.getpixel((220, 120)) > 200  # the face


def test_background_removal_is_a_stage_of_its_own_between_the_edits(
    server: ServerProcess, astronaut: Path
) -> None:
    with Client(server.address, server.api_key) as client:
        task = client.submit(
            astronaut,
            operations=[
                resize_operation(256, 256),
                remove_background_operation(),
                flip_operation(),
            ],
            format="png",
        )
        updates = list(client.watch(task.id))
        status = server.cli("status", task.id).stdout
    final = updates[-1]
    assert final.state == task_pb2.TASK_STATE_SUCCEEDED
    assert [Stage(t.stage).name for t in final.stage_timings] == [
        "FETCH",
        "VALIDATE",
        "EDIT",
        "REMOVE_BACKGROUND",
        "EDIT",
        "ENCODE",
        "STORE",
    ]
    assert all(t.HasField("duration") for t in final.stage_timings)
    progress = [u.progress for u in updates if u.state == task_pb2.TASK_STATE_RUNNING]
    assert progress == sorted(progress)  # it never goes back, though `edit` comes twice
    assert "remove_background" in status and status.count("edit") == 2


def test_without_the_model_the_task_fails_clearly_and_the_server_carries_on(
    server_without_models: ServerProcess, astronaut: Path, tmp_path: Path
) -> None:
    server = server_without_models
    wait_for_log(server, "background removal is unavailable")
    result = server.cli("submit", str(astronaut), "--remove-background", "--watch")
    assert result.returncode == 1
    assert "FAILED_PRECONDITION" in result.stdout and "imageeditor models fetch" in result.stdout
    task_id = result.stdout.split()[0]
    status = json.loads(server.cli("status", task_id, "--json", check=True).stdout)
    reasons = [detail.get("reason") for detail in status["error"].get("details", [])]
    assert "MODEL_NOT_INSTALLED" in reasons, status["error"]
    out = tmp_path / "resized.png"
    resized = server.cli("submit", str(astronaut), "--resize", "64x64", "--watch", "-o", str(out))
    assert resized.returncode == 0, resized.stderr


def test_the_int8_model_by_name_cuts_out_what_fp32_does(
    server: ServerProcess, astronaut: Path
) -> None:
    cutouts = {}
    with Client(server.address, server.api_key) as client:
        for model in ("u2netp", "u2netp-int8"):
            task = client.submit(
                astronaut, operations=[remove_background_operation(model=model)], format="png"
            )
            assert list(client.watch(task.id))[-1].state == task_pb2.TASK_STATE_SUCCEEDED
            _, data = client.get_result(task.id)
            cutouts[model] = np.asarray(Image.open(io.BytesIO(data)).getchannel("A")) > 127
    fp32, int8 = cutouts["u2netp"], cutouts["u2netp-int8"]
    assert np.logical_and(fp32, int8).sum() / np.logical_or(fp32, int8).sum() >= 0.97
