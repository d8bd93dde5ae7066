"""The gRPC edge under hostile requests, on a real grpc.aio server in this process: the
embedded service (no worker threads), driven by grpc.aio clients on the same event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from imageeditor.core.settings import Settings
from imageeditor.embedded.main import build, ensure_dev_key
from imageeditor.server import validation
from imageeditor.server.app import start_server
from imageeditor.server.offload import INLINE_BYTES
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
from tests.e2e.harness import jpeg_bytes

SUBMIT = "/imageeditor.v1.ImageEditorService/SubmitTask"


@dataclass
class Edge:
    address: str
    api_key: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    settings = Settings(
        data_dir=tmp_path,
        listen_address="127.0.0.1:0",
        embedded_workers=0,  # tasks stay QUEUED: watches stay open
        edge_cpu_threads=2,
        max_watch_streams_per_user=3,
        auth_failure_burst=5,
        batch_burst=5,
    )
    async for running in serving(settings):
        yield running


@pytest.fixture
async def roomy_edge(tmp_path: Path) -> AsyncIterator[Edge]:
    """An edge whose quotas let one user hold thousands of streams."""
    settings = Settings(
        data_dir=tmp_path,
        listen_address="127.0.0.1:0",
        embedded_workers=0,
        max_watch_streams_per_user=100_000,
    )
    async for running in serving(settings):
        yield running


async def serving(settings: Settings) -> AsyncIterator[Edge]:
    app = build(settings)
    ensure_dev_key(app.adapters.api_keys, app.adapters.webhook_secrets, settings)
    running = await start_server(app.servicer, settings)
    yield Edge(f"127.0.0.1:{running.port}", settings.dev_key_path.read_text().strip())
    await running.stop(0)
    app.adapters.close()


def details(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo reason and the BadRequest field violations of a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    reason, fields = "", {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = {v.field: v.description for v in bad.field_violations}
    return reason, fields


@dataclass
class Slowed:
    """Wraps a function: records the thread it runs on and takes `seconds` longer."""

    function: Callable[..., Any]
    seconds: float
    started: threading.Event
    threads: list[str]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        time.sleep(self.seconds)  # stands for CPU-bound parsing of a hostile image
        return self.function(*args, **kwargs)


async def test_a_slow_submit_never_holds_the_health_check(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Slowed(validation.probe, 1.5, threading.Event(), [])
    monkeypatch.setattr(validation, "probe", probe)
    image = jpeg_bytes(800, 600)
    assert len(image) > INLINE_BYTES  # smaller ones are probed on the loop: see below
    async with (
        grpc.aio.insecure_channel(edge.address) as submitter,
        grpc.aio.insecure_channel(edge.address) as checker,
    ):
        submit = pb_grpc.ImageEditorServiceStub(submitter).SubmitTask
        call = asyncio.ensure_future(
            submit(pb.SubmitTaskRequest(image_data=image), metadata=edge.metadata())
        )
        assert await asyncio.to_thread(probe.started.wait, 10)  # validating now

        health = await health_pb2_grpc.HealthStub(checker).Check(
            health_pb2.HealthCheckRequest(), timeout=1.0
        )

        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert not call.done()  # answered while the submit was still being validated
        response = await call
    assert response.task.id
    assert probe.threads[0].startswith("edge-cpu")


async def test_a_small_submit_is_validated_on_the_loop_without_a_hop(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Slowed(validation.probe, 0.0, threading.Event(), [])
    monkeypatch.setattr(validation, "probe", probe)
    async with grpc.aio.insecure_channel(edge.address) as channel:
        submit = pb_grpc.ImageEditorServiceStub(channel).SubmitTask
        request = pb.SubmitTaskRequest(image_data=jpeg_bytes(64, 48))
        response = await submit(request, metadata=edge.metadata())

    assert response.task.id
    assert probe.threads == [threading.main_thread().name]  # the edge's loop runs there


async def test_undecodable_request_bytes_are_an_invalid_argument_logged_once(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with grpc.aio.insecure_channel(edge.address) as channel:
        raw = channel.unary_unary(SUBMIT)  # bytes in, bytes out
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await raw(b"\xff\xff\xff\xff not a protobuf", metadata=edge.metadata())
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert details(caught.value)[0] == "REQUEST_UNDECODABLE"

    lines = [r for r in caplog.records if "do not parse" in r.getMessage()]
    assert len(lines) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_huge_input_is_refused_as_itself_not_as_an_oversized_trailer(edge: Edge) -> None:
    """A 20 MB style_prompt came back whole in the error; the client's 8 KB metadata limit
    then turned INVALID_ARGUMENT into RESOURCE_EXHAUSTED and the real error was lost."""
    async with grpc.aio.insecure_channel(
        edge.address, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        submit = pb_grpc.ImageEditorServiceStub(channel).SubmitTask
        request = pb.SubmitTaskRequest(
            image_url="https://e.com/a.png", style_prompt="Q" * 20_000_000
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await submit(request, metadata=edge.metadata())

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    reason, fields = details(caught.value)
    assert reason == "STYLE_UNSUPPORTED" and "style_prompt" in fields


async def test_thousands_of_watches_opened_at_once_all_get_their_first_message(
    roomy_edge: Edge,
) -> None:
    # gRPC core cancels calls beyond its pending-request limits (1,000, hard 3,000) while
    # the loop takes each up; the server raises them (IMAGEEDITOR_MAX_PENDING_CALLS).
    streams = 4000
    async with grpc.aio.insecure_channel(roomy_edge.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        request = pb.SubmitTaskRequest(image_data=jpeg_bytes(64, 48))
        task = (await stub.SubmitTask(request, metadata=roomy_edge.metadata())).task

        async def first_message() -> str:
            watch = stub.WatchTask(
                pb.WatchTaskRequest(task_id=task.id), metadata=roomy_edge.metadata(), timeout=60
            )
            try:
                async for message in watch:
                    return message.task.id
            except grpc.aio.AioRpcError as error:
                return error.code().name
            finally:
                watch.cancel()
            return "ended"

        answers = await asyncio.gather(*(first_message() for _ in range(streams)))

    assert {answer: answers.count(answer) for answer in set(answers)} == {task.id: streams}


async def test_a_user_may_hold_only_so_many_watch_streams(edge: Edge) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        submit, watch = stub.SubmitTask, stub.WatchTask
        task = (
            await submit(
                pb.SubmitTaskRequest(image_url="https://e.com/a.png"), metadata=edge.metadata()
            )
        ).task
        request = pb.WatchTaskRequest(task_id=task.id)
        streams = [watch(request, metadata=edge.metadata()) for _ in range(3)]
        for stream in streams:  # each open, with its first message read
            assert (await stream.read()).task.id == task.id

        extra = watch(request, metadata=edge.metadata())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await extra.read()
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(caught.value)[0] == "TOO_MANY_STREAMS"

        streams[0].cancel()
        for _ in range(50):  # the server sees the cancellation shortly
            again = watch(request, metadata=edge.metadata())
            try:
                assert (await again.read()).task.id == task.id
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the closed stream's place was never freed")
        for stream in [*streams[1:], again]:
            stream.cancel()


async def test_a_peer_guessing_keys_is_throttled(edge: Edge) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        status = pb_grpc.ImageEditorServiceStub(channel).GetStatus
        request = pb.GetStatusRequest(task_id="00000000-0000-4000-8000-000000000000")
        codes = []
        for n in range(8):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await status(request, metadata=(("authorization", f"Bearer iek_guess{n}"),))
            codes.append(caught.value.code())
    assert codes[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
    assert codes[5:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3


async def test_a_request_id_reused_for_another_request_is_already_exists(edge: Edge) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        submit = pb_grpc.ImageEditorServiceStub(channel).SubmitTask
        first = pb.SubmitTaskRequest(image_data=jpeg_bytes(64, 48), request_id="order-1")
        created = await submit(first, metadata=edge.metadata())
        assert (await submit(first, metadata=edge.metadata())).task.id == created.task.id

        other = pb.SubmitTaskRequest(image_data=jpeg_bytes(32, 24), request_id="order-1")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await submit(other, metadata=edge.metadata())
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert details(caught.value)[0] == "REQUEST_ID_REUSED"


async def test_a_retried_batch_always_answers(edge: Edge) -> None:
    """Retried with the same request_id and more valid items, a batch never answered."""
    async with grpc.aio.insecure_channel(edge.address) as channel:
        batch = pb_grpc.ImageEditorServiceStub(channel).BatchSubmit
        good = pb.SubmitTaskRequest(image_url="https://e.com/a.png")
        first = pb.BatchSubmitRequest(requests=[pb.SubmitTaskRequest(), good], request_id="b-1")
        answered = await batch(first, metadata=edge.metadata(), timeout=10)
        again = await batch(first, metadata=edge.metadata(), timeout=10)
        assert again == answered
        assert answered.results[0].HasField("error") and answered.results[1].HasField("task")

        more = pb.BatchSubmitRequest(requests=[good, good], request_id="b-1")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batch(more, metadata=edge.metadata(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
