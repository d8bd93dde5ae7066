"""One trace per job: the SDK call, the server, the broker hop and every worker stage.

The processes export with OTLP/HTTP to a small receiver in this test; the client span is
made here, by the gRPC client instrumentation, and kept in memory.
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.task import Stage, TaskState
from imageeditor.core.telemetry import ATTEMPT, STAGE, TASK_ID
from imageeditor.sdk import Client
from imageeditor.sdk.channel import channel_options
from tests.e2e.callback_receiver import Receiver
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes
from tests.e2e.production_harness import CLUSTER_KEY, WorkerProcess, running_cluster

pytestmark = [pytest.mark.e2e]

SUBMIT = "/imageeditor.v1.ImageEditorService/SubmitTask"
CALLBACK_POST = "callback POST"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, object]


class OtlpReceiver:
    """POST /v1/traces with an ExportTraceServiceRequest: the spans of every process."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    found.append(
                        ReceivedSpan(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes,
                        )
                    )
        with self._lock:
            self.spans += found

    def wait_for(
        self, trace_id: str, done: Callable[[list[ReceivedSpan]], bool], timeout: float = 30
    ) -> list[ReceivedSpan]:
        """The spans of `trace_id` once `done` says they are all in."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = [s for s in self.spans if s.trace_id == trace_id]
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted(f"{s.service}:{s.name}" for s in spans)
                raise AssertionError(f"spans of trace {trace_id} still missing; have {names}")
            time.sleep(0.1)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.close()


def otel_env(collector: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def submit_traced(address: str, api_key: str, callback_url: str = "") -> tuple[str, ReadableSpan]:
    """SubmitTask through an instrumented channel: the task id and the client span."""
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    raw = grpc.insecure_channel(address, options=channel_options())
    channel = intercept_channel(raw, client_interceptor(tracer_provider=provider))
    try:
        with Client(address, api_key, channel=channel) as client:
            image = jpeg_bytes(96, 64, variant=7)  # its own image: the worker must run it
            task = client.submit(image, resize=(48, 32), format="png", callback_url=callback_url)
            task_id = task.id
    finally:
        raw.close()
        provider.shutdown()
    (span,) = [s for s in exported.get_finished_spans() if s.name == SUBMIT]
    return task_id, span


def recorded_stages(store: SqlTaskStore, task_id: str) -> set[str]:
    """The stages the task went through, as its transitions recorded them."""
    deadline = time.monotonic() + 60
    while (task := store.get_task(task_id)) is None or not task.state.terminal:
        assert time.monotonic() < deadline, "the task did not finish"
        time.sleep(0.1)
    assert task.state is TaskState.SUCCEEDED, task.error
    return {e.stage.value for e in store.list_events(task_id, 0) if e.stage is not Stage.NONE}


def stage_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if STAGE in s.attributes]


def check_stages(spans: list[ReceivedSpan], task_id: str, stages: set[str]) -> None:
    staged = stage_spans(spans)
    assert {s.attributes[STAGE] for s in staged} == stages
    assert all(s.attributes[TASK_ID] == task_id for s in staged)
    assert all(s.attributes[ATTEMPT] == 1 for s in staged)


@pytest.mark.postgres
@pytest.mark.redis
def test_one_trace_spans_the_sdk_call_the_server_the_broker_and_every_stage(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str, collector: OtlpReceiver
) -> None:
    with running_cluster(tmp_path, fresh_postgres_url, redis_url, **otel_env(collector)) as cluster:
        task_id, client_span = submit_traced(cluster.servers[0].address, cluster.api_key)
        stages = recorded_stages(cluster.store, task_id)

    trace_id = format(client_span.context.trace_id, "032x")
    spans = collector.wait_for(trace_id, lambda got: len(stage_spans(got)) >= len(stages))
    by_name = {s.name: s for s in spans}
    server = by_name[SUBMIT]
    publish = by_name["apply_async/imageeditor.run_task"]
    run = by_name["run/imageeditor.run_task"]

    assert server.service == "imageeditor-server" and run.service == "imageeditor-worker"
    assert server.parent_id == format(client_span.context.span_id, "016x")
    assert publish.parent_id == server.span_id and publish.service == "imageeditor-server"
    assert run.parent_id == publish.span_id
    check_stages(spans, task_id, stages)
    assert all(s.parent_id == run.span_id for s in stage_spans(spans))


def test_embedded_mode_carries_the_trace_into_its_worker_threads_and_the_callback(
    tmp_path: Path, collector: OtlpReceiver, receiver: Receiver
) -> None:
    allowed = {"IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS": receiver.allowlist_entry}
    server = ServerProcess(tmp_path, free_port(), **otel_env(collector), **allowed).start()
    try:
        task_id, client_span = submit_traced(server.address, server.api_key, receiver.url)
        store = server.task_store()
        try:
            stages = recorded_stages(store, task_id)
        finally:
            store.close()
        (callback,) = receiver.wait_for(1)
    finally:
        server.stop()

    trace_id = format(client_span.context.trace_id, "032x")
    spans = collector.wait_for(
        trace_id,
        lambda got: (
            len(stage_spans(got)) >= len(stages) and any(s.name == CALLBACK_POST for s in got)
        ),
    )
    (server_span,) = [s for s in spans if s.name == SUBMIT]
    assert server_span.parent_id == format(client_span.context.span_id, "016x")
    check_stages(spans, task_id, stages)
    assert all(s.parent_id == server_span.span_id for s in stage_spans(spans))
    # The delivery joins the job's trace, and the receiver can continue it.
    (post,) = [s for s in spans if s.name == CALLBACK_POST]
    assert post.attributes["url.full"] == receiver.url
    _, sent_trace, sent_span, _ = callback.headers["traceparent"].split("-")
    assert (sent_trace, sent_span) == (trace_id, post.span_id)


def json_records(paths: list[Path]) -> list[dict[str, object]]:
    """Every JSON log record in the files (Celery's start-up banner is not a record)."""
    records = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
    return records


@pytest.mark.postgres
@pytest.mark.redis
def test_json_logs_join_traces_and_tasks_and_never_show_a_secret(
    tmp_path: Path,
    fresh_postgres_url: str,
    redis_url: str,
    collector: OtlpReceiver,
    receiver: Receiver,
) -> None:
    token = "cb-token-" + secrets.token_hex(8)
    with running_cluster(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        IMAGEEDITOR_LOG_FORMAT="json",
        IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS=receiver.allowlist_entry,
        **otel_env(collector),
    ) as cluster:
        callbacks = WorkerProcess(tmp_path / "callbacks.log", cluster.env, "callbacks")
        cluster.workers.append(callbacks.start())
        task_id, client_span = submit_traced(
            cluster.servers[0].address, cluster.api_key, f"{receiver.url}?token={token}"
        )
        recorded_stages(cluster.store, task_id)
        receiver.wait_for(1, timeout=60)

    logs = sorted(tmp_path.rglob("*.log"))
    whole = "\n".join(path.read_text() for path in logs)
    for secret in (cluster.api_key, cluster.webhook_secret, token, CLUSTER_KEY):
        assert secret not in whole
    records = json_records(logs)
    assert {"time", "level", "logger", "message", "trace_id", "span_id", "task_id"} <= set(
        records[0]
    )
    trace_id = format(client_span.context.trace_id, "032x")
    about_task = [r for r in records if r["task_id"] == task_id]
    loggers = {str(r["logger"]) for r in about_task if r["trace_id"] == trace_id}
    # The worker's run and the callback sender's delivery, both in the job's trace.
    assert (
        "imageeditor.workers.runner" in loggers and "imageeditor.workers.callback_sender" in loggers
    )
