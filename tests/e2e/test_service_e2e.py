"""The real service end to end: an `imageeditor serve` process driven through the SDK."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from PIL import Image

from imageeditor.core.urls import check_address
from imageeditor.sdk import (
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
from imageeditor.v1 import operations_pb2, task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED


def test_submit_watch_and_fetch_the_result(server: ServerProcess, photo: Path) -> None:
    with Client(server.address, server.api_key) as client:
        task = client.submit(photo, resize=(256, 256), format="png")
        assert task.state == task_pb2.TASK_STATE_QUEUED
        events = list(client.watch(task.id))
        info, data = client.get_result(task.id)

    assert events[-1].state == SUCCEEDED
    versions = [e.version for e in events]
    assert versions == sorted(set(versions))
    assert task_pb2.TASK_STATE_RUNNING in {e.state for e in events}
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (256, 192)  # 800x600 fitted inside 256x256
    assert (info.width, info.height, info.size_bytes) == (256, 192, len(data))
    assert events[-1].result.sha256 == info.sha256
    assert events[-1].processing_time.ToMilliseconds() >= 0


def test_the_same_request_id_returns_the_same_task(server: ServerProcess, photo: Path) -> None:
    other_key = server.cli("keys", "create", "other", check=True).stdout.splitlines()[0]
    with Client(server.address, server.api_key) as client:
        first = client.submit(photo, resize=(64, 64), request_id="order-17")
        again = client.submit(photo, resize=(64, 64), request_id="order-17")
        fresh = client.submit(photo, resize=(64, 64), request_id="order-18")
    with Client(server.address, other_key) as other:
        theirs = other.submit(photo, resize=(64, 64), request_id="order-17")
    assert again.id == first.id
    assert fresh.id != first.id
    assert theirs.id != first.id


def test_another_users_task_is_not_found(server: ServerProcess, photo: Path) -> None:
    other_key = server.cli("keys", "create", "mallory", check=True).stdout.splitlines()[0]
    with Client(server.address, server.api_key) as client:
        task = client.submit(photo)
    with Client(server.address, other_key) as other:
        with pytest.raises(NotFound):
            other.get_status(task.id)
        with pytest.raises(NotFound):
            other.cancel(task.id)
        assert task.id not in {t.id for t in other.list_tasks()}


def test_calls_without_a_valid_key_are_unauthenticated(server: ServerProcess) -> None:
    with Client(server.address, "iek_not-a-real-key") as client, pytest.raises(Unauthenticated):
        client.get_status("00000000-0000-0000-0000-000000000000")


def test_an_invalid_request_names_the_bad_fields(server: ServerProcess) -> None:
    request = pb.SubmitTaskRequest(
        image_data=b"%PDF-1.7 not an image",
        operations=[operations_pb2.Operation(resize=operations_pb2.Resize())],
        output=operations_pb2.OutputOptions(quality=101),
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.SubmitTask(request, metadata=[("authorization", f"Bearer {server.api_key}")])
    call = caught.value
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(call)
    assert status is not None
    fields = set()
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            fields = {v.field for v in bad_request.field_violations}
    assert fields == {"image_data", "operations[0].resize", "output.quality"}

    with Client(server.address, server.api_key) as client, pytest.raises(InvalidArgument) as err:
        client.submit(jpeg_bytes(), resize=(20_000, 10))
    assert "operations[0].resize.width" in err.value.field_violations


def test_a_cancelled_queued_task_never_runs(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data", free_port(), workers=0).start()
    with Client(server.address, server.api_key) as client:
        task = client.submit(jpeg_bytes(), resize=(32, 32))
        cancelled = client.cancel(task.id)
        assert cancelled.state == task_pb2.TASK_STATE_CANCELLED
    server.stop()
    server.start(workers=2)  # a restart resumes unfinished tasks: this one is finished
    with Client(server.address, server.api_key) as client:
        later = client.get_status(task.id)
        with pytest.raises(FailedPrecondition):
            client.get_result(task.id)
    assert later.state == task_pb2.TASK_STATE_CANCELLED
    assert later.attempts == 0
    assert later.error.code == grpc.StatusCode.CANCELLED.value[0]


def test_a_restart_resumes_unfinished_tasks(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data", free_port(), workers=0).start()
    with Client(server.address, server.api_key) as client:
        task = client.submit(jpeg_bytes(), resize=(100, 100), format="webp")
    server.stop()
    server.start(workers=2)
    with Client(server.address, server.api_key) as client:
        final = list(client.watch(task.id))[-1]
    assert final.state == SUCCEEDED
    assert final.result.format == operations_pb2.IMAGE_FORMAT_WEBP


def test_a_watcher_that_reconnects_misses_nothing(server: ServerProcess, photo: Path) -> None:
    with Client(server.address, server.api_key) as client:
        task = client.submit(photo, resize=(128, 128))
        everything = list(client.watch(task.id, after_version=0))
        # A watcher that saw versions up to 2 and lost its stream asks for what followed.
        rest = list(client.watch(task.id, after_version=2))
    all_versions = [t.version for t in everything]
    assert all_versions[-1] == everything[-1].version and everything[-1].state == SUCCEEDED
    assert [t.version for t in rest] == list(range(3, all_versions[-1] + 1))
    assert rest[-1].state == SUCCEEDED


def test_a_stream_broken_midway_resumes_without_gap_or_repeat(
    server: ServerProcess, photo: Path
) -> None:
    metadata = [("authorization", f"Bearer {server.api_key}")]
    with Client(server.address, server.api_key) as client:
        task = client.submit(photo, resize=(300, 300))
    seen: list[int] = []
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        first = stub.WatchTask(
            pb.WatchTaskRequest(task_id=task.id, after_version=0), metadata=metadata
        )
        for message in first:
            seen.append(message.task.version)
            if len(seen) == 2 or message.task.state == SUCCEEDED:
                first.cancel()
                break
        second = stub.WatchTask(
            pb.WatchTaskRequest(task_id=task.id, after_version=seen[-1]), metadata=metadata
        )
        final = None
        for message in second:
            seen.append(message.task.version)
            final = message.task
    assert seen == sorted(set(seen)), seen
    assert final is None or final.state == SUCCEEDED
    assert seen[-1] == seen[0] + len(seen) - 1  # consecutive: no gap


def test_a_url_source_that_is_not_allowed_is_refused_at_submit_or_fails_the_task_cleanly(
    server: ServerProcess,
) -> None:
    # A name that resolves to this machine: only the fetch can tell where it leads.
    name = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, 9, type=socket.SOCK_STREAM)}
    assert not any(check_address(a, 9, name, ()) for a in resolved), resolved
    with Client(server.address, server.api_key) as client:
        with pytest.raises(InvalidArgument) as refused:  # an address in the URL: at once
            client.submit("http://127.0.0.1:9/photo.jpg", resize=(10, 10))
        task = client.submit(f"http://{name}:9/photo.jpg", resize=(10, 10))
        final = list(client.watch(task.id))[-1]
    assert refused.value.reason == "URL_NOT_ALLOWED"
    assert list(refused.value.field_violations) == ["image_url"]
    assert final.state == task_pb2.TASK_STATE_FAILED
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in final.error.details)
    assert info.reason == "URL_NOT_ALLOWED"


def test_health_reflection_and_a_clean_stop(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "imageeditor.v1.ImageEditorService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "imageeditor.v1.ImageEditorService" in names
    assert "grpc.health.v1.Health" in names
    process = server.process
    assert process is not None
    server.stop()  # SIGTERM: drain, stop the workers, exit 0
    assert process.returncode == 0


def test_a_batch_accepts_good_items_and_reports_bad_ones(server: ServerProcess) -> None:
    good = pb.SubmitTaskRequest(image_data=jpeg_bytes(), output={"format": 2})
    bad = pb.SubmitTaskRequest(image_data=b"GIF87a-but-not-really-an-image", style_prompt="oil")
    with Client(server.address, server.api_key) as client:
        response = client.batch_submit([good, bad, good])
        kinds = [r.WhichOneof("outcome") for r in response.results]
        assert kinds == ["task", "error", "task"]
        assert response.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        bad_request = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad_request) for d in response.results[1].error.details)
        assert {v.field for v in bad_request.field_violations} == {
            "requests[1].image_data",
            "requests[1].style_prompt",
        }
        finals = [list(client.watch(r.task.id))[-1] for r in response.results if r.task.id]
        members = list(client.list_tasks(batch_id=response.batch_id))
    assert {t.state for t in finals} == {SUCCEEDED}
    assert all(t.batch_id == response.batch_id for t in finals)
    assert {t.id for t in members} == {t.id for t in finals}


def test_over_the_rate_limit_is_resource_exhausted_with_retry_info(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(
        tmp_path / "data", free_port(), IMAGEEDITOR_BATCH_RATE="0.2", IMAGEEDITOR_BATCH_BURST="1"
    ).start()
    item = pb.SubmitTaskRequest(image_data=jpeg_bytes(64, 64))
    with Client(server.address, server.api_key) as client:
        client.batch_submit([item])
        with pytest.raises(ResourceExhausted) as caught:
            client.batch_submit([item])
        client.submit(jpeg_bytes(64, 64))  # the submit limit is a separate bucket
    assert 0 < caught.value.retry_after <= 5


def test_listing_filters_by_label_and_pages_without_repeats(server: ServerProcess) -> None:
    metadata = [("authorization", f"Bearer {server.api_key}")]
    with Client(server.address, server.api_key) as client:
        tagged = {client.submit(jpeg_bytes(32, 32), labels={"run": "r1"}).id for _ in range(5)}
        client.submit(jpeg_bytes(32, 32), labels={"run": "r2"})
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = stub.ListTasks(
                pb.ListTasksRequest(page_size=2, page_token=token, labels={"run": "r1"}),
                metadata=metadata,
            )
            seen += [t.id for t in page.tasks]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListTasks(
                pb.ListTasksRequest(page_size=2, page_token="forged", labels={"run": "r1"}),
                metadata=metadata,
            )
    assert pages == 3
    assert len(seen) == len(set(seen)) and set(seen) == tagged
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
