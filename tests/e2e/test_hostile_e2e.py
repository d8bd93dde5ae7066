"""Hostile images against a real service: inline bytes are refused at submit; a URL serving
them ends its task FAILED with the reason; and the same server goes on serving good tasks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from google.rpc import error_details_pb2

from imageeditor.sdk import Client, InvalidArgument
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes
from tests.hostile_images import REFUSED_BY_PROBE, gif_of_frames, jpeg_photo, png_of_one_colour

pytestmark = pytest.mark.e2e

FILES = {
    "/bomb.png": png_of_one_colour(20_000, 20_000),
    "/frames.gif": gif_of_frames(5_000),
    "/xxe.svg.jpg": REFUSED_BY_PROBE["svg with an external entity"][0](),
    "/truncated.jpg": jpeg_photo()[:20_000],
    "/good.jpg": jpeg_bytes(320, 240),
}


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")  # a lie for most of them
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def service(make_server: type[ServerProcess], tmp_path: Path, file_server: str) -> ServerProcess:
    # Exactly the loopback file server is allowed, nothing else.
    return make_server(
        tmp_path / "data", free_port(), workers=1, IMAGEEDITOR_ALLOWED_HOSTS=file_server
    ).start()


def reason_of(task: task_pb2.Task) -> str:
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in task.error.details), task.error
    return info.reason


def test_hostile_inline_bytes_are_refused_at_submit(service: ServerProcess) -> None:
    with Client(service.address, service.api_key) as client:
        for name in (
            "decompression bomb 20000x20000",
            "header claims 65535x65535",
            "text",
            "svg with an external entity",
            "eps",
            "gif of 5000 frames",
        ):
            make, reason = REFUSED_BY_PROBE[name]
            with pytest.raises(InvalidArgument) as caught:
                client.submit(make())
            assert caught.value.reason == reason, name
            assert "image_data" in caught.value.field_violations, name
        assert list(client.list_tasks()) == []  # nothing was stored


def test_hostile_urls_fail_their_tasks_and_the_worker_keeps_serving(
    service: ServerProcess, file_server: str
) -> None:
    expected = {
        "/bomb.png": "IMAGE_TOO_LARGE",
        "/frames.gif": "IMAGE_TOO_MANY_FRAMES",
        "/xxe.svg.jpg": "IMAGE_FORMAT_UNSUPPORTED",
        "/truncated.jpg": "IMAGE_CORRUPT",
    }
    with Client(service.address, service.api_key) as client:
        # One worker: each hostile task runs on the same thread before the good one.
        tasks = {
            path: client.submit(f"http://{file_server}{path}", resize=(64, 64))
            for path in [*expected, "/good.jpg"]
        }
        inline_truncated = client.submit(jpeg_photo()[:20_000])  # its headers are intact
        finals = {path: list(client.watch(task.id))[-1] for path, task in tasks.items()}
        truncated_final = list(client.watch(inline_truncated.id))[-1]
        after = client.submit(jpeg_bytes(), resize=(32, 32), format="webp")
        after_final = list(client.watch(after.id))[-1]

    for path, reason in expected.items():
        assert finals[path].state == task_pb2.TASK_STATE_FAILED, path
        assert reason_of(finals[path]) == reason, path
        assert finals[path].error.message
    assert truncated_final.state == task_pb2.TASK_STATE_FAILED
    assert reason_of(truncated_final) == "IMAGE_CORRUPT"
    assert finals["/good.jpg"].state == task_pb2.TASK_STATE_SUCCEEDED
    assert (finals["/good.jpg"].result.width, finals["/good.jpg"].result.height) == (64, 48)
    assert after_final.state == task_pb2.TASK_STATE_SUCCEEDED
    assert service.process is not None and service.process.poll() is None
