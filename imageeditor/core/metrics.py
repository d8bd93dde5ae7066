"""Prometheus metrics: every metric the service exports, defined in this one module, and the
`/metrics` endpoint that serves them.

Names follow Prometheus's conventions: the `imageeditor_` prefix, `_total` for counters,
`_seconds` for durations, base units; labels take bounded values only (a method, a status
code, a queue, a stage, an outcome), never a task id or a user id.

Where each is counted:

- RPCs: the server's interceptor (imageeditor.server.rpc_metrics), for every method it serves;
- tasks: submitted by the service (imageeditor.core.service), started by the runner, finished and
  requeued where every transition commits (imageeditor.core.lifecycle), stages by the runner;
- queue depth, tasks QUEUED/RUNNING, callbacks pending: sampled by the reconciler leader
  after each pass (imageeditor.core.sampling), not per scrape;
- callbacks: by the sender, per request and per event;
- refusals (rate limits, stream quota, auth throttle), store, broker and Redis errors: where
  each is decided.

A server process keeps its metrics in memory. A Celery worker's pool processes are forks of
one parent, each counting on its own: `serve_worker_metrics` (in the parent, before the pool
forks) turns on prometheus_client's multiprocess mode, in which every process writes its
samples to files of one folder, and the parent serves their sum.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

log = logging.getLogger(__name__)

# Latencies from a cached status read (~1 ms) to a slow image run (minutes).
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

BUILD_INFO = Gauge(
    "imageeditor_build_info",
    "Always 1: the version and mode of this process.",
    ["version", "python", "role"],
    multiprocess_mode="max",
)

RPCS = Counter(
    "imageeditor_rpcs",
    "RPCs answered, by method and status code.",
    ["service", "method", "code"],
)
RPC_DURATION = Histogram(
    "imageeditor_rpc_duration_seconds",
    "Time to answer a unary RPC, or the lifetime of a streaming one.",
    ["service", "method"],
    buckets=FAST_BUCKETS,
)
WATCH_STREAMS = Gauge(
    "imageeditor_watch_streams",
    "WatchTask streams open in this process.",
    multiprocess_mode="livesum",
)

TASKS_SUBMITTED = Counter(
    "imageeditor_tasks_submitted", "Tasks accepted (single submits and batch items).", ["queue"]
)
TASKS_STARTED = Counter("imageeditor_tasks_started", "Runs started (attempts).", ["queue"])
TASKS_FINISHED = Counter(
    "imageeditor_tasks_finished",
    "Tasks that reached a final state, by outcome (succeeded, failed, cancelled).",
    ["queue", "outcome"],
)
TASKS_REQUEUED = Counter(
    "imageeditor_tasks_requeued",
    "Runs that put their task back in the queue (a transient error, a dead worker).",
    ["queue"],
)
TASK_DURATION = Histogram(
    "imageeditor_task_duration_seconds",
    "Time from submit to a final state.",
    ["queue", "outcome"],
    buckets=SLOW_BUCKETS,
)
STAGE_DURATION = Histogram(
    "imageeditor_stage_duration_seconds",
    "Time a run spent in each pipeline stage.",
    ["stage"],
    buckets=(*FAST_BUCKETS, 30.0, 60.0, 120.0),
)

QUEUE_DEPTH = Gauge(
    "imageeditor_queue_depth",
    "Messages waiting in each broker queue (sampled by the reconciler leader).",
    ["queue"],
    multiprocess_mode="max",
)
TASKS_UNFINISHED = Gauge(
    "imageeditor_tasks",
    "Tasks QUEUED and RUNNING in the store (sampled by the reconciler leader).",
    ["state"],
    multiprocess_mode="max",
)
CALLBACKS_PENDING = Gauge(
    "imageeditor_callbacks_pending",
    "Callback events not yet delivered or given up (sampled by the reconciler leader).",
    multiprocess_mode="max",
)

CALLBACK_REQUESTS = Counter(
    "imageeditor_callback_requests",
    "Callback POSTs, by verdict (delivered, retry, rejected, gone, not_allowed).",
    ["verdict"],
)
CALLBACK_DURATION = Histogram(
    "imageeditor_callback_request_duration_seconds",
    "Time of one callback POST, redirects included.",
    buckets=(*FAST_BUCKETS, 15.0, 30.0),
)
CALLBACK_EVENTS = Counter(
    "imageeditor_callback_events",
    "Callback events after an attempt, by state (delivered, failed, pending for a retry).",
    ["state"],
)

REFUSALS = Counter(
    "imageeditor_refusals",
    "Requests refused by a limit (submit, batch, watch_streams, auth_failures).",
    ["limit"],
)
STORE_ERRORS = Counter(
    "imageeditor_store_errors", "Task store calls that failed on an outage.", ["operation"]
)
BROKER_ERRORS = Counter(
    "imageeditor_broker_errors", "Broker calls that failed (publish, revoke).", ["operation"]
)
REDIS_ERRORS = Counter(
    "imageeditor_redis_errors",
    "Redis failures, by the part that did without it (status_cache, rate_limiter, event_bus).",
    ["component"],
)


@contextmanager
def timed(histogram: Any) -> Iterator[None]:
    """Observe the block's duration in `histogram` (a Histogram or one of its children)."""
    started = perf_counter()
    try:
        yield
    finally:
        histogram.observe(perf_counter() - started)


@dataclass
class MetricsEndpoint:
    """A running `/metrics` endpoint; `close` stops it (and removes a worker's folder)."""

    port: int
    close: Callable[[], None]


def set_build_info(role: str) -> None:
    try:
        version = metadata.version("imageeditor")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        version = "unknown"
    BUILD_INFO.labels(version, platform.python_version(), role).set(1)


def serve_metrics(host: str, port: int, role: str) -> MetricsEndpoint | None:
    """Serve this process's metrics on host:port (None when the port is 0: off)."""
    if not port:
        return None
    set_build_info(role)
    return _serve(host, port, REGISTRY, lambda: None)


def serve_worker_metrics(host: str, port: int, role: str) -> MetricsEndpoint | None:
    """In a Celery worker's parent process, before its pool forks: every process of the worker
    writes its samples to a fresh folder (PROMETHEUS_MULTIPROC_DIR, made here unless set), and
    host:port serves them summed. None when the port is 0."""
    if not port:
        return None
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "")
    made = not folder.parts
    if made:
        folder = Path(tempfile.mkdtemp(prefix="imageeditor-metrics-"))
    else:  # samples of an earlier run of this worker would add to ours
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    _enter_multiprocess_mode(folder)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    set_build_info(role)

    def remove_folder() -> None:
        if made:
            shutil.rmtree(folder, ignore_errors=True)

    return _serve(host, port, registry, remove_folder)


def process_exited(pid: int) -> None:
    """A worker pool process is gone: its live gauges stop counting (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _enter_multiprocess_mode(folder: Path) -> None:
    """prometheus_client picks where values live when it is imported, from
    PROMETHEUS_MULTIPROC_DIR; it has been imported already (this module), so the choice is
    made again here. Each labelled metric makes its values when first used, in the pool
    processes, after this; the unlabelled ones made at import stay in memory and unserved (the
    worker sets none of them)."""
    from prometheus_client import values

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def _serve(
    host: str, port: int, registry: CollectorRegistry, cleanup: Callable[[], None]
) -> MetricsEndpoint:
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound)

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)
        cleanup()

    return MetricsEndpoint(port=bound, close=close)
