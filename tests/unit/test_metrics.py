"""The metrics the service exports (imageeditor.core.metrics), counted where they are decided."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from imageeditor.core.errors import ResourceExhausted
from imageeditor.core.lifecycle import count_transition
from imageeditor.core.metrics import serve_metrics
from imageeditor.core.sampling import GaugeSampler
from imageeditor.core.spec import RemoveBackground, TaskSpec
from imageeditor.core.task import Task, TaskError, TaskState, utcnow
from imageeditor.server.quotas import StreamQuota
from imageeditor.server.rpc_metrics import MetricsInterceptor
from tests.e2e.harness import free_port

SERVICE = "test.Echo"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def change_of(name: str, **labels: str) -> Iterator[list[float]]:
    """The change of one sample over the block (the registry is the process's own)."""
    seen: list[float] = []
    before = sample(name, **labels)
    yield seen
    seen.append(sample(name, **labels) - before)


async def unary_ok(request: bytes, context: Any) -> bytes:
    return request


async def unary_refused(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no")
    raise AssertionError("abort returned")


async def unary_crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("boom")


async def stream_three(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


@pytest.fixture
async def echo_server() -> AsyncIterator[str]:
    handlers = {
        "Ok": grpc.unary_unary_rpc_method_handler(unary_ok),
        "Refused": grpc.unary_unary_rpc_method_handler(unary_refused),
        "Crash": grpc.unary_unary_rpc_method_handler(unary_crash),
        "Stream": grpc.unary_stream_rpc_method_handler(stream_three),
    }
    server = grpc.aio.server(interceptors=[MetricsInterceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def call(address: str, method: str, streaming: bool = False) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        path = f"/{SERVICE}/{method}"
        if streaming:
            async for _ in channel.unary_stream(path)(b"x"):
                pass
        else:
            await channel.unary_unary(path)(b"x")


async def test_the_interceptor_counts_each_rpc_by_method_and_code_and_times_it(
    echo_server: str,
) -> None:
    counted = "imageeditor_rpcs_total"
    with (
        change_of(counted, service=SERVICE, method="Ok", code="OK") as ok,
        change_of(counted, service=SERVICE, method="Refused", code="INVALID_ARGUMENT") as refused,
        change_of(counted, service=SERVICE, method="Crash", code="UNKNOWN") as crashed,
        change_of(counted, service=SERVICE, method="Stream", code="OK") as streamed,
        change_of("imageeditor_rpc_duration_seconds_count", service=SERVICE, method="Ok") as timed,
    ):
        await call(echo_server, "Ok")
        await call(echo_server, "Ok")
        for method in ("Refused", "Crash"):
            with pytest.raises(grpc.aio.AioRpcError):
                await call(echo_server, method)
        await call(echo_server, "Stream", streaming=True)
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await call(echo_server, "Invented")
    assert (ok, refused, crashed, streamed, timed) == ([2], [1], [1], [1], [2])
    assert unknown.value.code() is grpc.StatusCode.UNIMPLEMENTED
    # A method the server has no handler for adds no label value.
    assert sample(counted, service=SERVICE, method="Invented", code="UNIMPLEMENTED") == 0


def spec(model: bool = False) -> TaskSpec:
    return TaskSpec(
        image_url="https://example.com/a.png", operations=(RemoveBackground(),) if model else ()
    )


def test_a_final_transition_counts_its_outcome_queue_and_time_since_submit() -> None:
    submitted = utcnow()
    task = Task(id="t", user_id="u", spec=spec(model=True), created_at=submitted)
    failed = task.start(submitted).fail(
        TaskError("INTERNAL", "X", "boom"), submitted + timedelta(seconds=3)
    )
    finished = "imageeditor_tasks_finished_total"
    with (
        change_of(finished, queue="models", outcome="failed") as counted,
        change_of("imageeditor_task_duration_seconds_sum", queue="models", outcome="failed") as t,
        change_of("imageeditor_tasks_requeued_total", queue="edits") as requeued,
    ):
        count_transition(failed)
        count_transition(Task(id="t", user_id="u", spec=spec()).start().requeue())
        count_transition(Task(id="t", user_id="u", spec=spec()))  # QUEUED, never run: nothing
        count_transition(Task(id="t", user_id="u", spec=spec()).start())  # not final: nothing
    assert (counted, t, requeued) == ([1], [3.0], [1])


def test_open_watch_streams_and_refusals_are_counted() -> None:
    quota = StreamQuota(limit=1)
    with change_of("imageeditor_refusals_total", limit="watch_streams") as refused:
        open_before = sample("imageeditor_watch_streams")
        with quota.hold("u"):
            assert sample("imageeditor_watch_streams") == open_before + 1
            with pytest.raises(ResourceExhausted), quota.hold("u"):
                pass
        assert sample("imageeditor_watch_streams") == open_before
    assert refused == [1]


class FixedStores:
    """The two counts the sampler reads, fixed."""

    def count_unfinished(self) -> dict[TaskState, int]:
        return {TaskState.QUEUED: 7, TaskState.RUNNING: 2}

    def count_pending(self) -> int:
        return 5


def test_the_sampler_sets_the_store_and_queue_gauges_and_clears_them_off_the_leader() -> None:
    stores = FixedStores()
    sampler = GaugeSampler(stores, stores, lambda: {"edits": 4, "models": 0})  # type: ignore[arg-type]
    sampler.sample()
    assert sample("imageeditor_tasks", state="queued") == 7
    assert sample("imageeditor_tasks", state="running") == 2
    assert sample("imageeditor_callbacks_pending") == 5
    assert sample("imageeditor_queue_depth", queue="edits") == 4
    sampler.clear()
    assert REGISTRY.get_sample_value("imageeditor_tasks", {"state": "queued"}) is None
    assert REGISTRY.get_sample_value("imageeditor_queue_depth", {"queue": "edits"}) is None


def test_the_endpoint_serves_the_text_format_with_build_info() -> None:
    assert serve_metrics("127.0.0.1", 0, "server") is None  # port 0: off
    endpoint = serve_metrics("127.0.0.1", free_port(), "server")
    assert endpoint is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        endpoint.close()
    assert 'imageeditor_build_info{python="' in text and 'role="server"' in text
    assert "# TYPE imageeditor_rpc_duration_seconds histogram" in text
