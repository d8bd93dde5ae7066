"""Prometheus scraping a production server and a Celery worker (prefork: the tasks run in a
pool process, the parent serves what every process counted), queried through its HTTP API."""

from __future__ import annotations

import math
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imageeditor.core.errors import InvalidArgument
from imageeditor.sdk import Client
from imageeditor.sdk.operations import grayscale_operation
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes
from tests.e2e.production_harness import Cluster, running_cluster
from tests.e2e.prometheus import Prometheus

pytestmark = [pytest.mark.e2e]

JOBS = 6


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str, redis_url: str) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        IMAGEEDITOR_METRICS_PORT=str(free_port()),
        IMAGEEDITOR_WORKER_METRICS_PORT=str(free_port()),
    ) as cluster:
        yield cluster


def value(result: list[dict[str, Any]]) -> float:
    (only,) = result
    return float(only["value"][1])


@pytest.mark.postgres
@pytest.mark.redis
def test_prometheus_scrapes_the_server_and_the_worker_and_answers_rates_and_quantiles(
    cluster: Cluster, tmp_path: Path
) -> None:
    server_target = f"127.0.0.1:{cluster.env['IMAGEEDITOR_METRICS_PORT']}"
    worker_target = f"127.0.0.1:{cluster.env['IMAGEEDITOR_WORKER_METRICS_PORT']}"
    prometheus = Prometheus(
        tmp_path / "prometheus",
        {"imageeditor-server": [server_target], "imageeditor-worker": [worker_target]},
    ).start()
    try:
        prometheus.wait_for("up == 1", lambda r: len(r) == 2, timeout=30)
        with cluster.client() as client:
            # A first job makes the series; a rate counts what they gain once scraped.
            first = client.submit(jpeg_bytes(64, 48), operations=[grayscale_operation()]).id
            cluster.wait_until_finished([first], timeout=60)
            for made in (
                'imageeditor_rpcs_total{method="SubmitTask"}',
                "imageeditor_stage_duration_seconds_count",
            ):
                prometheus.wait_for(made, lambda r: len(r) >= 1, timeout=30)
            ids = [  # each on an image of its own: an identical job would reuse a result
                client.submit(jpeg_bytes(64, 48, variant=n), operations=[grayscale_operation()]).id
                for n in range(1, JOBS + 1)
            ]
            with pytest.raises(InvalidArgument):
                client.get_status("not-a-task-id")
        cluster.wait_until_finished(ids, timeout=60)

        finished = prometheus.wait_for(
            'sum(imageeditor_tasks_finished_total{job="imageeditor-worker",outcome="succeeded"})',
            lambda r: bool(r) and value(r) == JOBS + 1,
        )
        submits = prometheus.wait_for(
            'sum(rate(imageeditor_rpcs_total{method="SubmitTask",code="OK"}[1m]))',
            lambda r: bool(r) and value(r) > 0,
        )
        refused = prometheus.query(
            'sum(imageeditor_rpcs_total{method="GetStatus",code="INVALID_ARGUMENT"})'
        )
        edit_p90 = prometheus.wait_for(
            "histogram_quantile(0.9, sum by (le) "
            '(rate(imageeditor_stage_duration_seconds_bucket{stage="edit"}[1m])))',
            lambda r: bool(r) and math.isfinite(value(r)),
        )
        latency_p50 = prometheus.query(
            "histogram_quantile(0.5, sum by (le) "
            '(rate(imageeditor_task_duration_seconds_bucket{outcome="succeeded"}[1m])))'
        )
        # Sampled gauges: they settle with the sampler's next pass after the jobs are done.
        settled = lambda r: len(r) == 1 and value(r) == 0  # noqa: E731
        depth = prometheus.wait_for('imageeditor_queue_depth{queue="edits"}', settled)
        queued = prometheus.wait_for('imageeditor_tasks{state="queued"}', settled)
        builds = prometheus.query("imageeditor_build_info")
        rules = prometheus.api("rules")
    finally:
        prometheus.stop()

    print(f"\nPrometheus after {JOBS} jobs:")
    for name, result in [
        ("tasks succeeded (worker)", finished),
        ("SubmitTask OK /s", submits),
        ("edit stage p90 s", edit_p90),
        ("submit→done p50 s", latency_p50),
        ("edits queue depth", depth),
        ("tasks queued", queued),
    ]:
        print(f"  {name}: {value(result):.4g}")
    assert value(submits) > 0
    assert value(refused) == 1
    assert 0 < value(edit_p90) < 10
    assert 0 < value(latency_p50) < 60
    assert (value(depth), value(queued)) == (0, 0)
    assert {b["metric"]["role"] for b in builds} == {"server", "worker"}
    alerts = {r["name"] for g in rules["groups"] for r in g["rules"] if r["type"] == "alerting"}
    assert {"ImageeditorQueueGrowing", "ImageeditorCallbackBacklog"} <= alerts


@pytest.mark.postgres
@pytest.mark.redis
def test_the_worker_endpoint_sums_its_pool_processes(cluster: Cluster) -> None:
    """The samples come from the pool process that ran the tasks, not the parent serving."""
    with cluster.client() as client:
        # Two distinct images: an identical second job would reuse the first one's result.
        ids = [client.submit(jpeg_bytes(32 + i, 32)).id for i in range(2)]
    cluster.wait_until_finished(ids, timeout=60)
    (worker,) = cluster.workers
    (pool,) = worker.pool_processes()
    text = scrape(cluster.env["IMAGEEDITOR_WORKER_METRICS_PORT"])
    assert 'imageeditor_tasks_started_total{queue="edits"} 2.0' in text
    assert pool != worker.pid


def scrape(port: int | str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def test_the_embedded_server_serves_its_workers_metrics_on_its_own_endpoint(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        IMAGEEDITOR_METRICS_PORT=str(port),
        IMAGEEDITOR_RECONCILE_INTERVAL_SECONDS="0.5",
    ).start()
    try:
        with Client(server.address, server.api_key) as client:
            task = client.submit(jpeg_bytes(64, 48), operations=[grayscale_operation()])
            states = [t.state for t in client.watch(task.id)]
        # The finished task is counted before its transition is published; the store's
        # gauges come with the sampler's next pass.
        finished = 'imageeditor_tasks_finished_total{outcome="succeeded",queue="edits"} 1.0'
        sampled = 'imageeditor_tasks{state="running"} 0.0'
        assert finished in scrape(port)
        deadline = time.monotonic() + 10
        while sampled not in (text := scrape(port)):
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
    finally:
        server.stop()
    assert states[-1] == task_pb2.TASK_STATE_SUCCEEDED
    for sample in (
        'imageeditor_rpcs_total{code="OK",method="SubmitTask"',
        'imageeditor_tasks_finished_total{outcome="succeeded",queue="edits"} 1.0',
        'imageeditor_stage_duration_seconds_count{stage="edit"} 1.0',
        "imageeditor_build_info{python=",
        'role="embedded"',
    ):
        assert sample in text
