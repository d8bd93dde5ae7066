"""Callbacks in production mode: sent by the workers of the `callbacks` Celery queue.

A server, a worker for image work (`edits`) and a worker for callbacks, on PostgreSQL, Redis
and a private redis-server broker. The callbacks worker is SIGKILLed while a receiver holds
its request open: the delivery's lease runs out, the reconciler's sweep nudges it again, and
a new callbacks worker delivers the same event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from imageeditor.sdk import Client
from imageeditor.sdk.operations import grayscale_operation
from imageeditor.v1 import task_pb2
from tests.e2e.callback_receiver import Answer, Receiver
from tests.e2e.harness import jpeg_bytes
from tests.e2e.production_harness import Cluster, WorkerProcess, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

DELIVERED = task_pb2.CALLBACK_STATE_DELIVERED


@pytest.fixture
def cluster(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str, receiver: Receiver
) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS=receiver.allowlist_entry,
        IMAGEEDITOR_CALLBACK_TIMEOUT_SECONDS="3",
        IMAGEEDITOR_CALLBACK_RETRY_SCHEDULE="0.5,1,1,2",
    ) as cluster:
        yield cluster


def test_a_callbacks_worker_killed_mid_delivery_still_delivers_the_event(
    cluster: Cluster, receiver: Receiver, tmp_path: Path
) -> None:
    first = WorkerProcess(tmp_path / "callbacks-0.log", cluster.env, queues="callbacks").start()
    cluster.workers.append(first)
    receiver.answer(Answer(204, hold_seconds=30))  # the first request hangs
    with cluster.client() as client:
        task = client.submit(
            jpeg_bytes(64, 48), operations=[grayscale_operation()], callback_url=receiver.url
        )
        (held,) = receiver.wait_for(1, timeout=60)
        first.kill()  # mid-delivery: the request is open, nothing recorded yet

        second = WorkerProcess(tmp_path / "callbacks-1.log", cluster.env, queues="callbacks")
        cluster.workers.append(second.start())
        _, again = receiver.wait_for(2, timeout=60)

        assert [e.id for e in held.events] == [e.id for e in again.events]
        assert [e.task.id for e in again.events] == [task.id]
        shown = delivered(client, task.id)
        assert len(shown.callback.attempts) == 1  # the killed attempt was never recorded
    # Image work never waited for callbacks: the task was done before the first request.
    assert shown.finish_time.ToDatetime(tzinfo=UTC).timestamp() <= held.at


def delivered(client: Client, task_id: str) -> task_pb2.Task:
    deadline = time.monotonic() + 30
    while (task := client.get_status(task_id)).callback.state != DELIVERED:
        assert time.monotonic() < deadline, f"not delivered:\n{task.callback}"
        time.sleep(0.1)
    return task
