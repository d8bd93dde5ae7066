"""Production mode end to end: `imageeditor serve` and `imageeditor worker` processes on
PostgreSQL, Redis and a Celery broker (a private redis-server; RabbitMQ in the last test).

One cluster serves the module: two servers, two workers (one pool process each), a fresh
PostgreSQL database, Redis database 15 for cache, limits and events, and short reconciler
timings so that recoveries happen within seconds.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select

from imageeditor.core.adapters.sql import tables
from imageeditor.core.task import Stage, Task, TaskState
from imageeditor.sdk import Client
from imageeditor.sdk.operations import blur_operation, rotate_operation, sharpen_operation
from imageeditor.sdk.requests import build_submit_request
from imageeditor.v1 import task_pb2
from tests.e2e.harness import jpeg_bytes
from tests.e2e.production_harness import (
    Cluster,
    RedisBroker,
    cluster_env,
    start_cluster,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
QUEUED = task_pb2.TASK_STATE_QUEUED


@pytest.fixture(scope="module")
def broker() -> Iterator[RedisBroker]:
    process = RedisBroker().start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    module_postgres_url: str,
    redis_url: str,
    broker: RedisBroker,
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("production")
    env = cluster_env(module_postgres_url, redis_url, broker.url, root)
    running = start_cluster(root, env, servers=2, workers=2)
    yield running
    running.stop()


SLOW_VARIANTS = itertools.count(1)


def submit_slow_task(client: Client, width: int = 1600) -> str:
    """A job that keeps a worker busy for a while (~2 s at 1600 px wide: costly steps); each
    on an image of its own, so that none takes another's result."""
    task = client.submit(
        jpeg_bytes(width, width * 3 // 4, variant=next(SLOW_VARIANTS)),
        operations=[rotate_operation(13), blur_operation(25), sharpen_operation()],
        format="png",
        effort=9,
    )
    return task.id


def test_a_hundred_tasks_all_succeed(cluster: Cluster) -> None:
    requests = [  # a hundred jobs that each run (identical ones would reuse one result)
        build_submit_request(jpeg_bytes(96, 64, variant=n), resize=(48, 32), format="png")
        for n in range(100)
    ]
    with cluster.client() as client:
        response = client.batch_submit(requests)
        ids = [result.task.id for result in response.results]
        assert len(set(ids)) == 100 and all(ids)

        cluster.wait_until_finished(ids, timeout=90)
        listed = list(client.list_tasks(batch_id=response.batch_id, page_size=100))

    assert len(listed) == 100
    assert {task.state for task in listed} == {SUCCEEDED}
    assert all(len(cluster.result_files(task_id)) == 1 for task_id in ids)


def test_what_a_task_reveals_is_sealed_in_the_database_the_cache_and_the_broker(
    cluster: Cluster, module_postgres_url: str, redis_url: str, broker: RedisBroker
) -> None:
    token = "HOOK-TOKEN-7e1f"
    hook = f"https://hooks.example.com/in?token={token}"  # no callbacks worker: never sent
    with cluster.client() as client:
        task = client.submit(jpeg_bytes(96, 64), resize=(48, 32), callback_url=hook)
        *_, done = client.watch(task.id)
        assert done.spec.callback_url == hook  # callers see it as they sent it
        busy = client.submit(jpeg_bytes(2000, 2000), operations=[blur_operation(50)])
        queued = client.submit(jpeg_bytes(96, 64), callback_url=hook)  # waits in the broker

    engine = create_engine(module_postgres_url)
    try:
        with engine.connect() as connection:
            dump = "\n".join(
                str(row)
                for table in tables.metadata.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()
    assert hook not in dump and token not in dump and "enc1." in dump
    for url in (redis_url, broker.url):
        client_ = redis.Redis.from_url(url)
        try:
            stored = b"".join(
                repr(client_.dump(key)).encode() for key in client_.scan_iter(count=1000)
            )
        finally:
            client_.close()
        assert token.encode() not in stored, url
    cluster.wait_until_finished([busy.id, queued.id], timeout=60)


def test_a_watch_on_another_server_sees_every_transition_in_order(cluster: Cluster) -> None:
    streams: dict[str, list[task_pb2.Task]] = {}

    def watch_on_second_server(task_id: str) -> None:
        with cluster.client(server=1) as watcher:
            streams[task_id] = list(watcher.watch(task_id))

    watchers = []
    with cluster.client(server=0) as client:
        for _ in range(2):
            task_id = submit_slow_task(client, 800)
            watchers.append(threading.Thread(target=watch_on_second_server, args=(task_id,)))
            watchers[-1].start()
    for thread in watchers:
        thread.join(60)
    ids = list(streams)
    assert len(ids) == 2

    for task_id in ids:
        seen = streams[task_id]
        log = cluster.store.list_events(task_id, seen[0].version - 1)
        # Every transition from the first one the watch reported, once each, in order.
        assert [t.version for t in seen] == [t.version for t in log]
        assert [t.version for t in seen] == list(range(seen[0].version, seen[-1].version + 1))
        assert seen[-1].state == SUCCEEDED
        assert log[-1].state is TaskState.SUCCEEDED
        assert len(seen) >= 4, "the watch began before the work did: it saw the stages live"


def test_one_stream_for_a_batch_on_another_server_misses_no_transition(cluster: Cluster) -> None:
    image = jpeg_bytes(800, 600)
    requests = [
        build_submit_request(image, operations=[rotate_operation(7)], format="png")
        for _ in range(6)
    ]
    with cluster.client(server=0) as client:
        batch = client.batch_submit(requests)
    with cluster.client(server=1) as watcher:
        updates = list(watcher.watch_batch(batch.batch_id))
    assert updates[-1].progress.complete and updates[-1].progress.succeeded == 6
    by_item: dict[str, list[int]] = {}
    for update in updates:
        by_item.setdefault(update.task.id, []).append(update.task.version)
        p = update.progress
        assert p.queued + p.running + p.succeeded + p.failed + p.cancelled == 6
    assert set(by_item) == {r.task.id for r in batch.results}
    for task_id, versions in by_item.items():
        log = cluster.store.list_events(task_id, versions[0] - 1)
        assert versions == [t.version for t in log]  # every transition from the first, once
        assert log[-1].state is TaskState.SUCCEEDED


def test_identical_jobs_run_once_and_a_later_one_is_answered_at_once(cluster: Cluster) -> None:
    image = jpeg_bytes(900, 700)  # an image of this test's own: nothing else made its key
    with cluster.client(server=0) as client:
        batch = client.batch_submit([image] * 5, operations=[rotate_operation(3)], format="png")
    ids = [r.task.id for r in batch.results]
    cluster.wait_until_finished(ids, timeout=60)
    with cluster.client(server=1) as client:
        ends = [client.get_status(task_id) for task_id in ids]
        later = client.submit(image, operations=[rotate_operation(3)], format="png")
        _, first_bytes = client.get_result(ids[0])
        _, later_bytes = client.get_result(later.id)
    assert {t.state for t in ends} == {SUCCEEDED}
    assert [t.attempts for t in ends] == [1, 0, 0, 0, 0]  # one run across the cluster
    assert {t.reused_from for t in ends[1:]} == {ids[0]}
    assert later.state == SUCCEEDED and later.reused_from in ids
    assert later_bytes == first_bytes


def test_killed_workers_lose_no_task_and_run_none_twice(cluster: Cluster) -> None:
    with cluster.client() as client:
        ids = [submit_slow_task(client, 1600 + n) for n in range(4)]
    running = _wait_for_running(cluster, ids, count=len(cluster.workers))
    first, second = cluster.workers[0], cluster.workers[1]
    # The machine of the first worker vanishes; the pool process of the second dies (an OOM
    # kill): the first task waits out its lease, the second is redelivered at once.
    first.kill()
    for pid in second.pool_processes():
        os.kill(pid, signal.SIGKILL)
    cluster.add_worker().start()  # capacity back, as an autoscaler would do

    finals = cluster.wait_until_finished(ids, timeout=90)

    assert {t.state for t in finals} == {TaskState.SUCCEEDED}, [t.error for t in finals]
    for task in finals:
        events = cluster.store.list_events(task.id, 0)
        assert [e.state for e in events].count(TaskState.SUCCEEDED) == 1
        assert sum(e.state.terminal for e in events) == 1
        assert len(cluster.result_files(task.id)) == 1
        assert task.attempts >= 1
    retried = {t.id for t in finals if t.attempts >= 2}
    assert retried >= set(running), "both runs that were killed ran again"


def _wait_for_running(cluster: Cluster, ids: Sequence[str], count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = [cluster.store.get_task(task_id) for task_id in ids]
        running = [t.id for t in tasks if t is not None and t.state is TaskState.RUNNING]
        if len(running) >= count:
            return running
        time.sleep(0.05)
    raise AssertionError(f"{count} tasks never ran at the same time")


def test_a_cancel_kills_the_pool_process_running_a_long_operation(cluster: Cluster) -> None:
    """CancelTask revokes the Celery task (its id is the task's id) and its pool process is
    killed inside the operation; the server settles the task CANCELLED."""
    blurs = [blur_operation(250.0)] * 12  # a minute of work on 4000 x 4000
    with cluster.client() as client:
        task = client.submit(jpeg_bytes(4000, 4000), operations=blurs)
        running = _wait_for_stage(cluster, task.id, Stage.EDIT)
        pools = {pid for worker in cluster.workers for pid in worker.pool_processes()}

        asked = time.monotonic()
        answer = client.cancel(task.id)
        *_, final = client.watch(task.id)
        settled_after = time.monotonic() - asked

    assert answer.cancel_requested and running.attempts == 1
    assert final.state == task_pb2.TASK_STATE_CANCELLED
    assert settled_after < 10, settled_after  # the grace (2 s), not the minute of blurs
    after = {pid for worker in cluster.workers for pid in worker.pool_processes()}
    assert pools - after, "the pool process running the task was killed"
    assert sum(e.state.terminal for e in cluster.store.list_events(task.id, 0)) == 1


def _wait_for_stage(cluster: Cluster, task_id: str, stage: Stage) -> Task:
    deadline = time.monotonic() + 30
    task = None
    while time.monotonic() < deadline:
        task = cluster.store.get_task(task_id)
        if task is not None and task.stage is stage:
            return task
        time.sleep(0.05)
    seen = f"{task.state} {task.stage} v{task.version}" if task else "nothing"
    raise AssertionError(f"task {task_id} never reached {stage} (last seen: {seen})")


def test_with_the_broker_down_tasks_are_accepted_and_run_once_it_is_back(
    cluster: Cluster, broker: RedisBroker
) -> None:
    broker.stop()  # no persistence: whatever it held is gone too
    try:
        ids, seconds = [], []
        with cluster.client() as client:
            for n in range(5):
                started = time.monotonic()
                task = client.submit(jpeg_bytes(96, 64, variant=100 + n), resize=(48, 32))
                seconds.append(time.monotonic() - started)
                ids.append(task.id)
                assert task.state == QUEUED
        time.sleep(1)
        assert {cluster.store.get_task(i).state for i in ids} == {TaskState.QUEUED}  # type: ignore[union-attr]
    finally:
        broker.start()

    assert max(seconds) < 5, seconds  # the first pays the publish retries, the rest skip them
    finals = cluster.wait_until_finished(ids, timeout=60)
    assert {t.state for t in finals} == {TaskState.SUCCEEDED}


def test_one_users_backlog_does_not_hold_another_users_job(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str
) -> None:
    """At most two of a user's tasks in the broker at once: another user's job waits
    behind two of the first user's, not behind all eight."""
    broker = RedisBroker().start()  # its own: the module's workers must not take its tasks
    env = cluster_env(
        fresh_postgres_url, redis_url, broker.url, tmp_path, IMAGEEDITOR_MAX_DISPATCHED_PER_USER="2"
    )
    cluster = start_cluster(tmp_path, env, servers=1, workers=1)
    try:
        bob_key = cluster.servers[0].cli("keys", "create", "bob", check=True).stdout.split()[0]
        slow = [blur_operation(250.0)]
        images = [jpeg_bytes(3000, 3000, variant=n) for n in range(8)]  # no two identical
        with cluster.client() as alice, Client(cluster.servers[0].address, bob_key) as bob:
            backlog = [alice.submit(image, operations=slow).id for image in images]
            _wait_for_stage(cluster, backlog[0], Stage.EDIT)
            bobs = bob.submit(jpeg_bytes(64, 48), resize=(32, 32)).id
            finals = cluster.wait_until_finished([*backlog, bobs], timeout=120)
    finally:
        cluster.stop()
        broker.stop()

    assert {t.state for t in finals} == {TaskState.SUCCEEDED}
    order = sorted(finals, key=lambda t: t.finished_at or t.updated_at)
    assert [t.id for t in order].index(bobs) <= 2, [t.user_id for t in order]


def test_rabbitmq_as_the_broker(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str, rabbitmq_url: str
) -> None:
    env = cluster_env(fresh_postgres_url, redis_url, rabbitmq_url, tmp_path)
    cluster = start_cluster(tmp_path, env, servers=1, workers=1)
    try:
        with cluster.client() as client:
            slow = submit_slow_task(client)
            quick = [client.submit(jpeg_bytes(96, 64), resize=(48, 32)).id for _ in range(5)]
            _wait_for_running(cluster, [slow], count=1)
            # RabbitMQ redelivers the message of a run whose process died, flagged as such.
            for pid in cluster.workers[0].pool_processes():
                os.kill(pid, signal.SIGKILL)
            finals = cluster.wait_until_finished([slow, *quick], timeout=60)
    finally:
        cluster.stop()

    assert {t.state for t in finals} == {TaskState.SUCCEEDED}
    assert finals[0].attempts == 2
    assert sum(e.state.terminal for e in cluster.store.list_events(slow, 0)) == 1
