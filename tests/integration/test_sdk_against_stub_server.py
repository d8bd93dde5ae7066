"""The SDK (and the CLI on top of it) against a real grpc.aio server on a loopback port.

The servicer here is a stub with canned tasks, not the service: it proves what the SDK does
on the wire (auth header, retry policy, watch resumption, paging, typed errors carried in
status details, result checks). The tests against the real server are end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from imageeditor.cli.main import main
from imageeditor.core.api.rpc_errors import to_status
from imageeditor.core.errors import ImageEditorError
from imageeditor.sdk import AsyncClient, Client, Internal, InvalidArgument, NotFound
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc, operations_pb2, task_pb2

API_KEY = "iek_test-key"
RESULT = b"\x89PNG pretend image bytes" * 100
STAGES = [
    (task_pb2.TASK_STATE_QUEUED, task_pb2.STAGE_UNSPECIFIED, 0.0),
    (task_pb2.TASK_STATE_RUNNING, task_pb2.STAGE_FETCH, 0.1),
    (task_pb2.TASK_STATE_RUNNING, task_pb2.STAGE_EDIT, 0.5),
    (task_pb2.TASK_STATE_RUNNING, task_pb2.STAGE_ENCODE, 0.8),
    (task_pb2.TASK_STATE_SUCCEEDED, task_pb2.STAGE_STORE, 1.0),
]


def history(task_id: str) -> list[task_pb2.Task]:
    """Every version of a canned task that goes QUEUED -> RUNNING x3 -> SUCCEEDED."""
    versions = []
    for number, (state, stage, progress) in enumerate(STAGES, start=1):
        task = task_pb2.Task(id=task_id, state=state, stage=stage, progress=progress)
        task.version = number
        if state == task_pb2.TASK_STATE_SUCCEEDED:
            task.result.CopyFrom(result_info())
        versions.append(task)
    return versions


def result_info(sha256: str | None = None) -> task_pb2.ResultInfo:
    return task_pb2.ResultInfo(
        width=64,
        height=48,
        format=operations_pb2.IMAGE_FORMAT_PNG,
        size_bytes=len(RESULT),
        sha256=sha256 or hashlib.sha256(RESULT).hexdigest(),
    )


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: ImageEditorError) -> None:
    await context.abort_with_status(rpc_status.to_status(to_status(error)))


class StubServicer(image_editor_service_pb2_grpc.ImageEditorServiceServicer):
    """Canned answers, and a record of what the SDK sent."""

    def __init__(self) -> None:
        self.authorization: list[str] = []
        self.calls: Counter[str] = Counter()
        self.watch_requests: list[tuple[str, int]] = []
        self.list_requests: list[pb.ListTasksRequest] = []
        self.submitted: list[pb.SubmitTaskRequest] = []
        self.batch_tokens: list[str] = []

    def _arrived(self, name: str, context: Any) -> None:
        self.calls[name] += 1
        self.authorization.append(dict(context.invocation_metadata()).get("authorization", ""))

    async def SubmitTask(self, request: pb.SubmitTaskRequest, context: Any) -> Any:
        self._arrived("SubmitTask", context)
        self.submitted.append(request)
        if request.style_prompt == "unknown-style":
            await abort_with(
                context,
                InvalidArgument(
                    "the request is invalid",
                    field_violations={"style_prompt": "no generator serves 'unknown-style'"},
                ),
            )
        task = history("t-new")[0]
        task.request_id = request.request_id
        return pb.SubmitTaskResponse(task=task)

    async def BatchSubmit(self, request: pb.BatchSubmitRequest, context: Any) -> Any:
        self._arrived("BatchSubmit", context)
        results = [pb.BatchSubmitResult(task=history(f"b-{i}")[0]) for i in range(2)]
        return pb.BatchSubmitResponse(batch_id="batch-1", results=results)

    async def GetStatus(self, request: pb.GetStatusRequest, context: Any) -> Any:
        self._arrived(f"GetStatus:{request.task_id}", context)
        if request.task_id == "missing":
            await abort_with(context, NotFound(f"task {request.task_id} not found"))
        if request.task_id == "flaky" and self.calls["GetStatus:flaky"] == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        if request.task_id == "t-early":
            return pb.GetStatusResponse(task=history("t-early")[1])
        return pb.GetStatusResponse(task=history(request.task_id)[-1])

    async def WatchTask(self, request: pb.WatchTaskRequest, context: Any) -> AsyncIterator[Any]:
        self._arrived("WatchTask", context)
        self.watch_requests.append((request.task_id, request.after_version))
        first = sum(1 for task_id, _ in self.watch_requests if task_id == request.task_id) == 1
        # Replays from after_version itself (one version too many) so the SDK must dedupe.
        start = max(request.after_version - 1, 0)
        for task in history(request.task_id)[start:]:
            yield pb.WatchTaskResponse(task=task)
            if first and task.version == 3:
                if request.task_id == "t-drop":
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped")
                if request.task_id == "t-early":
                    return

    async def WatchBatch(self, request: pb.WatchBatchRequest, context: Any) -> AsyncIterator[Any]:
        """batch-1's two items, b-0 and b-1, step by step; the token is the messages sent so
        far, and the first stream drops after the third message."""
        self._arrived("WatchBatch", context)
        self.batch_tokens.append(request.resume_token)
        steps = [
            (i, task)
            for pair in zip(history("b-0"), history("b-1"), strict=True)
            for i, task in enumerate(pair)
        ]
        sent = int(request.resume_token or 0)
        for number, (index, task) in enumerate(steps[sent:], start=sent + 1):
            done = sum(1 for i, t in steps[:number] if t.state == task_pb2.TASK_STATE_SUCCEEDED)
            progress = pb.BatchProgress(
                total=2,
                succeeded=done,
                running=2 - done,
                fraction_done=done / 2,
                complete=done == 2,
            )
            yield pb.WatchBatchResponse(
                task=task, index=index, progress=progress, resume_token=str(number)
            )
            if number == 3 and not request.resume_token:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped")

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> Any:
        self._arrived("CancelTask", context)
        task = task_pb2.Task(id=request.task_id, state=task_pb2.TASK_STATE_CANCELLED, version=2)
        return pb.CancelTaskResponse(task=task)

    async def ListTasks(self, request: pb.ListTasksRequest, context: Any) -> Any:
        self._arrived("ListTasks", context)
        self.list_requests.append(request)
        if not request.page_token:
            tasks = [history("l-1")[-1], history("l-2")[-1]]
            return pb.ListTasksResponse(tasks=tasks, next_page_token="page-2")
        return pb.ListTasksResponse(tasks=[history("l-3")[-1]])

    async def GetResult(self, request: pb.GetResultRequest, context: Any) -> AsyncIterator[Any]:
        self._arrived("GetResult", context)
        sha = "0" * 64 if request.task_id == "t-corrupt" else None
        yield pb.GetResultResponse(info=result_info(sha), chunk=RESULT[:1000])
        for offset in range(1000, len(RESULT), 1000):
            yield pb.GetResultResponse(chunk=RESULT[offset : offset + 1000])


@pytest.fixture
def stub() -> Iterator[tuple[str, StubServicer]]:
    """A grpc.aio server with a fresh StubServicer on a free loopback port, in its own thread
    and event loop so that the blocking Client can call it too."""
    servicer = StubServicer()
    ready = threading.Event()
    running: dict[str, Any] = {}

    async def serve() -> None:
        # Everything about the server, its stop included, happens on the server's own loop:
        # grpc.aio does not take kindly to being driven from another thread.
        running["loop"], running["stop"] = asyncio.get_running_loop(), asyncio.Event()
        server = grpc.aio.server()
        image_editor_service_pb2_grpc.add_ImageEditorServiceServicer_to_server(servicer, server)
        running["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.set()
        await running["stop"].wait()
        await server.stop(0)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the stub server did not start"
    yield f"127.0.0.1:{running['port']}", servicer
    running["loop"].call_soon_threadsafe(running["stop"].set)
    thread.join(10)


@pytest.fixture
def client(stub: tuple[str, StubServicer]) -> Iterator[Client]:
    with Client(stub[0], api_key=API_KEY, timeout=10) as sdk:
        yield sdk


def test_submit_sends_the_bearer_key_and_an_idempotency_key(
    client: Client, stub: tuple[str, StubServicer]
) -> None:
    task = client.submit(b"image", resize=(64, 0), format="webp", labels={"team": "a"})

    sent = stub[1].submitted[0]
    assert task.state == task_pb2.TASK_STATE_QUEUED
    assert task.request_id == sent.request_id != ""
    assert sent.image_data == b"image"
    assert sent.output.format == operations_pb2.IMAGE_FORMAT_WEBP
    assert sent.labels == {"team": "a"}
    assert stub[1].authorization == [f"Bearer {API_KEY}"]


def test_bad_request_details_come_back_as_invalid_argument(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.submit("https://example.com/a.png", style_prompt="unknown-style")

    assert caught.value.field_violations == {"style_prompt": "no generator serves 'unknown-style'"}
    assert caught.value.message == "the request is invalid"


def test_not_found_keeps_its_type_and_reason(client: Client) -> None:
    with pytest.raises(NotFound, match="task missing not found") as caught:
        client.get_status("missing")
    assert caught.value.reason == "NOT_FOUND"


def test_unary_calls_are_retried_on_unavailable(
    client: Client, stub: tuple[str, StubServicer]
) -> None:
    task = client.get_status("flaky")

    assert task.state == task_pb2.TASK_STATE_SUCCEEDED
    assert stub[1].calls["GetStatus:flaky"] == 2


def test_watch_resumes_a_dropped_stream_and_yields_each_version_once(
    client: Client, stub: tuple[str, StubServicer]
) -> None:
    versions = [task.version for task in client.watch("t-drop")]

    assert versions == [1, 2, 3, 4, 5]
    assert stub[1].watch_requests == [("t-drop", 0), ("t-drop", 3)]


def test_watch_resumes_a_stream_that_ends_before_a_terminal_state(
    client: Client, stub: tuple[str, StubServicer]
) -> None:
    versions = [task.version for task in client.watch("t-early")]

    assert versions == [1, 2, 3, 4, 5]
    assert stub[1].watch_requests == [("t-early", 0), ("t-early", 3)]


def test_watch_batch_resumes_a_dropped_stream_from_its_last_token(
    client: Client, stub: tuple[str, StubServicer]
) -> None:
    updates = list(client.watch_batch("batch-1"))

    assert [u.resume_token for u in updates] == [str(n) for n in range(1, 11)]
    assert stub[1].batch_tokens == ["", "3"]
    assert updates[-1].progress.complete and updates[-1].progress.succeeded == 2
    assert [u.task.version for u in updates if u.index == 1] == [1, 2, 3, 4, 5]


def test_watch_after_the_terminal_version_ends_without_waiting(client: Client) -> None:
    assert list(client.watch("t-done", after_version=5)) == []


def test_list_tasks_follows_page_tokens(client: Client, stub: tuple[str, StubServicer]) -> None:
    ids = [task.id for task in client.list_tasks(states=["succeeded"], page_size=2)]

    assert ids == ["l-1", "l-2", "l-3"]
    first, second = stub[1].list_requests
    assert list(first.states) == [task_pb2.TASK_STATE_SUCCEEDED]
    assert (first.page_size, second.page_token) == (2, "page-2")


def test_results_are_reassembled_and_checked(client: Client, tmp_path: Path) -> None:
    info, data = client.get_result("t-ok")
    assert (info.width, data) == (64, RESULT)

    target = tmp_path / "out.png"
    client.download_result("t-ok", target)
    assert target.read_bytes() == RESULT

    with pytest.raises(Internal, match="SHA-256"):
        client.download_result("t-corrupt", tmp_path / "bad.png")
    assert not list(tmp_path.glob("bad.png*"))


async def test_async_client_speaks_the_same_protocol(stub: tuple[str, StubServicer]) -> None:
    async with AsyncClient(stub[0], api_key=API_KEY, timeout=10) as sdk:
        versions = [task.version async for task in sdk.watch("t-drop")]
        batch = [u.resume_token async for u in sdk.watch_batch("batch-1")]
        listed = [task.id async for task in sdk.list_tasks()]
        cancelled = await sdk.cancel("t-1")
        info, data = await sdk.get_result("t-ok")
        with pytest.raises(NotFound):
            await sdk.get_status("missing")
        with pytest.raises(InvalidArgument) as caught:
            await sdk.submit(b"x", style_prompt="unknown-style")

    assert versions == [1, 2, 3, 4, 5]
    assert batch == [str(n) for n in range(1, 11)]  # resumed after the drop, nothing twice
    assert listed == ["l-1", "l-2", "l-3"]
    assert cancelled.state == task_pb2.TASK_STATE_CANCELLED
    assert data == RESULT and info.size_bytes == len(RESULT)
    assert "style_prompt" in caught.value.field_violations
    assert set(stub[1].authorization) == {f"Bearer {API_KEY}"}


@pytest.fixture
def cli_env(stub: tuple[str, StubServicer], monkeypatch: pytest.MonkeyPatch) -> StubServicer:
    monkeypatch.setenv("IMAGEEDITOR_ADDRESS", stub[0])
    monkeypatch.setenv("IMAGEEDITOR_API_KEY", API_KEY)
    return stub[1]


def test_cli_status_prints_protobuf_json(
    cli_env: StubServicer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "t-ok", "--json"]) == 0

    line = capsys.readouterr().out.strip()
    assert json.loads(line)["state"] == "TASK_STATE_SUCCEEDED"


def test_cli_watch_shows_progress_and_the_final_state(
    cli_env: StubServicer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", "t-drop"]) == 0

    captured = capsys.readouterr()
    assert "t-drop  SUCCEEDED  64x48 png" in captured.out
    assert "RUNNING edit" in captured.err  # the progress line (plain lines: not a TTY)


def test_cli_batch_watch_follows_every_task(
    cli_env: StubServicer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["batch", "https://e.com/a.png", "https://e.com/b.png", "--watch"]) == 0

    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].endswith("2/2 done: 2 succeeded")
    assert captured.out.count("SUCCEEDED") == 2


def test_cli_errors_are_one_line_and_exit_1(
    cli_env: StubServicer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "missing"]) == 1

    assert capsys.readouterr().err == "error: NOT_FOUND: task missing not found\n"
