"""Tracing, set up in one place for every process: one trace per job.

`setup_tracing` installs the OpenTelemetry SDK in this process when the standard variables
ask for it, and does nothing otherwise (the default, so tests stay quiet):

- `OTEL_TRACES_EXPORTER`: `none` (default), `otlp` or `console`;
- `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`): `http/protobuf` (default) or
  `grpc`; the exporters read `OTEL_EXPORTER_OTLP_ENDPOINT` and their other variables
  themselves, the batch processor its `OTEL_BSP_*`;
- `OTEL_SERVICE_NAME` overrides the process's own name.

Call it after any fork (a Celery pool process: in `worker_process_init`): exporters hold
threads and connections that must not cross one. The gRPC server adds its interceptor when
tracing is on (imageeditor.server.app); Celery is instrumented on both sides by
`instrument_celery`, so the
`traceparent` header travels in the message; the runner opens a `stage_span` per stage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.task import Stage

TASK_ID = "imageeditor.task_id"
STAGE = "imageeditor.stage"
ATTEMPT = "imageeditor.attempt"
CALLBACK_URL = "url.full"
CALLBACK_EVENTS = "imageeditor.callback.events"

_tracer = trace.get_tracer("imageeditor")
_propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class Tracing:
    """Whether this process traces, and how to flush and stop at exit."""

    enabled: bool
    shutdown: Callable[[], None]


def setup_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> Tracing:
    """Install a tracer provider with a batch exporter, as the `OTEL_*` variables say."""
    env = os.environ if environ is None else environ
    exporter = _exporter(env)
    if exporter is None:
        return Tracing(enabled=False, shutdown=lambda: None)
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return Tracing(enabled=True, shutdown=provider.shutdown)  # shutdown flushes first


def instrument_celery() -> None:
    """Trace Celery's publishing (a producer span, its context in the message headers) and
    task runs (a consumer span, the child of the producer's). Idempotent."""
    # Imported here: embedded mode traces without Celery and need not import it.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().instrument()


@contextmanager
def stage_span(stage: Stage, task_id: str, attempt: int) -> Iterator[None]:
    """A span for one pipeline stage of one run of a task (a no-op when tracing is off)."""
    attributes = {TASK_ID: task_id, STAGE: stage.value, ATTEMPT: attempt}
    with _tracer.start_as_current_span(f"stage {stage.value}", attributes=attributes):
        yield


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span, or "" when nothing is traced: stored with
    work that runs later (a callback), so that work joins this trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def callback_span(traceparents: Sequence[str], url: str, events: int) -> Iterator[dict[str, str]]:
    """A client span for one callback POST, the child of the first event's trace and linked
    to the others'; yields the headers (`traceparent`) that carry it to the receiver."""
    contexts = [_propagator.extract({"traceparent": tp}) for tp in traceparents if tp]
    parent = contexts[0] if contexts else None
    links = [
        trace.Link(span_context)
        for context in contexts[1:]
        if (span_context := trace.get_current_span(context).get_span_context()).is_valid
    ]
    attributes: dict[str, str | int] = {CALLBACK_URL: url, CALLBACK_EVENTS: events}
    with _tracer.start_as_current_span(
        "callback POST",
        context=parent,
        kind=trace.SpanKind.CLIENT,
        links=links,
        attributes=attributes,
    ):
        headers: dict[str, str] = {}
        _propagator.inject(headers)
        yield headers


def _exporter(env: Mapping[str, str]) -> SpanExporter | None:
    kind = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if kind in ("", "none"):
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        raise InvalidArgument(
            f"OTEL_TRACES_EXPORTER={kind!r}: use otlp, console or none", reason="BAD_SETTING"
        )
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()
