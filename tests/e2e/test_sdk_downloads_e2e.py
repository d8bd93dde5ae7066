"""`download_result` of both SDK clients against a real `imageeditor serve`: the same bytes,
the same errors, and never a partial file."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.sdk import AsyncClient, Client, ImageEditorError, Internal, NotFound
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess

pytestmark = pytest.mark.e2e

Download = Callable[[str, Path], task_pb2.ResultInfo]


@pytest.fixture
def downloads(server: ServerProcess) -> dict[str, Download]:
    """`download_result` of each client, called the same way."""

    def sync(task_id: str, path: Path) -> task_pb2.ResultInfo:
        with Client(server.address, server.api_key) as client:
            return client.download_result(task_id, path)

    def in_a_loop(task_id: str, path: Path) -> task_pb2.ResultInfo:
        async def download() -> task_pb2.ResultInfo:
            async with AsyncClient(server.address, server.api_key) as client:
                return await client.download_result(task_id, path)

        return asyncio.run(download())

    return {"Client": sync, "AsyncClient": in_a_loop}


def finished_task(server: ServerProcess, photo: Path) -> task_pb2.Task:
    with Client(server.address, server.api_key) as client:
        task = client.submit(photo, resize=(300, 300), format="png")
        *_, last = client.watch(task.id)
    assert last.state == task_pb2.TASK_STATE_SUCCEEDED
    return last


def error_of(download: Download, task_id: str, path: Path) -> ImageEditorError:
    with pytest.raises(ImageEditorError) as caught:
        download(task_id, path)
    return caught.value


def test_both_clients_download_the_same_checked_bytes(
    server: ServerProcess, photo: Path, downloads: dict[str, Download], tmp_path: Path
) -> None:
    task = finished_task(server, photo)
    out = tmp_path / "out"
    out.mkdir()

    infos = {name: download(task.id, out / f"{name}.png") for name, download in downloads.items()}

    assert infos["Client"] == infos["AsyncClient"] == task.result
    sync_bytes = (out / "Client.png").read_bytes()
    assert sync_bytes == (out / "AsyncClient.png").read_bytes()
    assert hashlib.sha256(sync_bytes).hexdigest() == task.result.sha256
    assert sorted(p.name for p in out.iterdir()) == ["AsyncClient.png", "Client.png"]


def test_both_clients_leave_nothing_when_the_task_is_unknown(
    server: ServerProcess, downloads: dict[str, Download], tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    errors = {name: error_of(d, missing, tmp_path / f"{name}.png") for name, d in downloads.items()}

    assert {type(e) for e in errors.values()} == {NotFound}
    assert {e.reason for e in errors.values()} == {"TASK_NOT_FOUND"}
    assert not list(tmp_path.glob("*.png*")) and not list(tmp_path.glob(".*.part"))


def test_a_download_cut_short_leaves_the_old_file_as_it_was(
    server: ServerProcess, photo: Path, downloads: dict[str, Download], tmp_path: Path
) -> None:
    task = finished_task(server, photo)
    # The stored result loses its second half: the server streams what is left, and the
    # clients' size and SHA-256 checks fail after the bytes were written.
    assert task.result.uri == ""  # no server path is shown
    stored = server.data_dir / "blobs" / "results" / f"{task.id}.png"
    stored.write_bytes(stored.read_bytes()[: task.result.size_bytes // 2])
    out = tmp_path / "out"
    out.mkdir()
    for name in downloads:
        (out / f"{name}.png").write_bytes(b"the previous result")

    errors = {name: error_of(d, task.id, out / f"{name}.png") for name, d in downloads.items()}

    assert {type(e) for e in errors.values()} == {Internal}
    assert all("bytes, expected" in e.message for e in errors.values())
    for name in downloads:
        assert (out / f"{name}.png").read_bytes() == b"the previous result"
    assert sorted(p.name for p in out.iterdir()) == ["AsyncClient.png", "Client.png"]


def test_both_clients_stream_to_disk_without_holding_the_result(
    server: ServerProcess, downloads: dict[str, Download], tmp_path: Path
) -> None:
    # Noise does not compress: an ~8 MB PNG result, in 256 KiB chunks.
    noise = Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3))
    source = io.BytesIO()
    noise.save(source, "PNG", compress_level=0)
    with Client(server.address, server.api_key) as client:
        task = client.submit(source.getvalue(), format="png")
        *_, done = client.watch(task.id)
    size = done.result.size_bytes
    assert size > 7_000_000

    for name, download in downloads.items():
        tracemalloc.start()
        try:
            download(done.id, tmp_path / f"{name}.png")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (tmp_path / f"{name}.png").stat().st_size == size
        assert peak < size / 4, f"{name} held {peak} bytes of a {size}-byte result"
