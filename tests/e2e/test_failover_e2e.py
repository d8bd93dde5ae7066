"""Redis failover under load: the service on redis+sentinel:// (status cache, rate limits,
events and the Celery broker), a primary killed mid-run. Sentinel promotes the replica; the
server keeps accepting, the worker keeps finishing, status reads and watches go on, and no
accepted task is lost (a dispatch lost with the old primary is published again by the
reconciler)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageeditor.core.task import TaskState
from imageeditor.sdk import Client
from imageeditor.sdk.operations import grayscale_operation
from imageeditor.v1 import task_pb2
from tests.e2e.harness import jpeg_bytes
from tests.e2e.production_harness import Cluster, cluster_env, start_cluster
from tests.e2e.sentinel import SentinelSetup

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path / "redis").start()
    yield setup
    setup.stop()


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str, sentinels: SentinelSetup) -> Iterator[Cluster]:
    # One URL for all of Redis: cache, limits, events, and the broker (kombu's Sentinel
    # transport, from the same URL).
    env = cluster_env(fresh_postgres_url, sentinels.url, "", tmp_path)
    started = start_cluster(tmp_path, env, servers=1, workers=1)
    try:
        yield started
    finally:
        started.stop()


class Submitter(threading.Thread):
    """Submits a small job every `pause` seconds until stopped, and reads the status of the
    one before; records what was accepted (with when) and every call that failed."""

    def __init__(self, client: Client, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.pause = pause
        self.accepted: list[tuple[float, str]] = []
        self.refused: list[tuple[float, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        image = jpeg_bytes(48, 32)
        while not self.halt.is_set():
            try:
                task = self.client.submit(image, operations=[grayscale_operation()])
                if self.accepted:
                    self.client.get_status(self.accepted[-1][1])
                self.accepted.append((time.monotonic(), task.id))
            except Exception as error:
                self.refused.append((time.monotonic(), repr(error)))
            time.sleep(self.pause)


def test_a_primary_killed_mid_run_loses_no_task(cluster: Cluster, sentinels: SentinelSetup) -> None:
    first_primary = sentinels.primary()
    with cluster.client() as client, cluster.client() as watcher:
        before = [client.submit(jpeg_bytes(48, 32)).id for _ in range(3)]
        cluster.wait_until_finished(before, timeout=60)

        submitter = Submitter(client)
        submitter.start()
        time.sleep(2)
        killed_at = time.monotonic()
        sentinels.kill_primary()
        # A watch opened while Redis has no primary follows its task to the end.
        outage_task = client.submit(jpeg_bytes(48, 32))
        watched_states: list[int] = []
        watching = threading.Thread(
            target=lambda: watched_states.extend(t.state for t in watcher.watch(outage_task.id)),
            daemon=True,
        )
        watching.start()
        while sentinels.primary() == first_primary:
            assert time.monotonic() - killed_at < 30, "Sentinel promoted no replica"
            time.sleep(0.05)
        promoted_at = time.monotonic()
        time.sleep(5)  # keep submitting on the new primary
        submitter.halt.set()
        submitter.join(30)

        watching.join(60)
        # And one opened after it.
        watched = client.submit(jpeg_bytes(48, 32), operations=[grayscale_operation()])
        states = [t.state for t in watcher.watch(watched.id)]
        ids = [task_id for _, task_id in submitter.accepted] + [outage_task.id]
        finished = cluster.wait_until_finished(ids, timeout=120)
        statuses = [client.get_status(task_id) for task_id in ids[-5:]]

    during = [t for at, t in submitter.accepted if killed_at <= at <= promoted_at]
    slowest = max(
        (t.finished_at - t.created_at).total_seconds()
        for t in finished
        if t.id in during and t.finished_at is not None
    )
    print(
        f"\nfailover: promotion {promoted_at - killed_at:.2f} s after the kill; "
        f"{len(submitter.accepted)} tasks accepted ({len(during)} between kill and promotion), "
        f"{len(submitter.refused)} calls failed; all {len(finished)} finished, "
        f"{sum(t.state is TaskState.SUCCEEDED for t in finished)} succeeded; the slowest task "
        f"accepted during the failover finished {slowest:.1f} s after its submit"
    )
    assert sentinels.primary() == sentinels.replica_port
    assert not submitter.refused, submitter.refused[:3]
    assert all(t.state is TaskState.SUCCEEDED for t in finished)
    assert len(during) > 0  # the service accepted work while Redis had no primary
    assert states[-1] == watched_states[-1] == task_pb2.TASK_STATE_SUCCEEDED
    assert all(status.id in ids for status in statuses)
