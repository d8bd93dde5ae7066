"""Outages of the shared services, end to end: PostgreSQL and Redis restart under a running
production server and worker, and both recover without a restart of their own.

These tests stop the machine's own PostgreSQL and Redis (the ones on loopback that the whole
test session shares), so each brings its service back in a `finally` and waits until it
answers again before it returns, whatever it asserted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
import redis
from sqlalchemy import Engine, text

from imageeditor.core.adapters.sql.outage import STORE_UNAVAILABLE
from imageeditor.core.errors import Unavailable
from imageeditor.sdk import Client
from imageeditor.sdk.operations import blur_operation, rotate_operation
from imageeditor.sdk.requests import build_submit_request
from imageeditor.v1 import task_pb2
from tests.e2e.harness import jpeg_bytes
from tests.e2e.production_harness import Cluster, RedisBroker, cluster_env, start_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
SHARED_REDIS_PORT = 6379
# A call during an outage must answer at once, not wait for a connect timeout.
OUTAGE_ANSWER_SECONDS = 3.0


def _postgres_cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if (
        shutil.which("pg_ctlcluster") is None
        or not versions
        or "IMAGEEDITOR_TEST_POSTGRES_URL" in os.environ
    ):
        pytest.skip("needs the machine's own PostgreSQL cluster, restartable by pg_ctlcluster")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _wait_until(ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come back within {timeout}s")
        time.sleep(0.2)


def _postgres_answers(admin: Engine) -> bool:
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def _redis_answers() -> bool:
    client = redis.Redis(port=SHARED_REDIS_PORT, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _start_shared_redis() -> None:
    """Start the shared Redis as the machine's CI setup does: no persistence."""
    command = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1"]
    command += ["--port", str(SHARED_REDIS_PORT), "--save", "", "--appendonly", "no"]
    command += ["--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
    subprocess.run(command, check=True, timeout=30)


@pytest.fixture(scope="module")
def outage_cluster(
    tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    """One server and one worker; the broker is private, so only the shared services fail."""
    root = tmp_path_factory.mktemp("outages")
    broker = RedisBroker().start()
    env = cluster_env(module_postgres_url, redis_url, broker.url, root)
    try:
        running = start_cluster(root, env, servers=1, workers=1)
        yield running
        running.stop()
    finally:
        broker.stop()


def _wait_for_success(client: Client, task_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [client.get_status(task_id).state for task_id in task_ids]
        if all(state == SUCCEEDED for state in states):
            return
        if time.monotonic() > deadline:
            names = sorted(task_pb2.TaskState.Name(state) for state in states)
            raise AssertionError(f"not all tasks succeeded within {timeout}s: {names}")
        time.sleep(0.2)


def test_a_database_restart_answers_unavailable_then_recovers(
    outage_cluster: Cluster, postgres_server: Engine
) -> None:
    postgres = _postgres_cluster()
    image = jpeg_bytes(96, 64)
    with outage_cluster.client() as client:
        before = client.submit(image, resize=(48, 32)).id
        _wait_for_success(client, [before], timeout=30)

    seconds: list[float] = []
    subprocess.run([*postgres, "stop"], check=True, timeout=60)
    try:
        address = outage_cluster.servers[0].address
        # A channel without the SDK's retry policy: each call shows the server's own answer.
        with grpc.insecure_channel(address) as channel:
            raw = Client(address, outage_cluster.api_key, timeout=10, channel=channel)
            calls: list[Callable[[], object]] = [
                lambda: raw.get_status(str(uuid.uuid4())),  # no cache entry: the store's turn
                lambda: raw.submit(image, resize=(48, 32)),
            ]
            for call in calls * 3:
                started = time.monotonic()
                with pytest.raises(Unavailable) as refused:
                    call()
                seconds.append(time.monotonic() - started)
                assert refused.value.reason == STORE_UNAVAILABLE
                assert refused.value.retry_after > 0
    finally:
        subprocess.run([*postgres, "start"], check=True, timeout=60)
        postgres_server.dispose()  # the session's admin engine pooled connections that died
        _wait_until(lambda: _postgres_answers(postgres_server), "PostgreSQL")
    assert max(seconds) < OUTAGE_ANSWER_SECONDS, seconds

    # The same server and worker processes: their pools reconnect by themselves.
    with outage_cluster.client() as client:
        assert client.get_status(before).state == SUCCEEDED
        after = client.submit(image, resize=(48, 32)).id
        _wait_for_success(client, [after], timeout=60)


def test_a_redis_restart_loses_no_task_and_needs_no_restart(outage_cluster: Cluster) -> None:
    image = jpeg_bytes(800, 600)
    operations = [rotate_operation(13), blur_operation(25)]
    seconds: list[float] = []
    with outage_cluster.client() as client:
        batch = client.batch_submit(  # twenty jobs that each run (no two are identical)
            [
                build_submit_request(
                    jpeg_bytes(800, 600, variant=i), operations=operations, format="png", effort=9
                )
                for i in range(1, 21)
            ]
        )
        ids = [result.task.id for result in batch.results]
        subprocess.run(
            ["redis-cli", "-p", str(SHARED_REDIS_PORT), "shutdown", "nosave"], timeout=30
        )
        try:
            _wait_until(lambda: not _redis_answers(), "the Redis shutdown", timeout=10)
            # The store is the truth: status reads and new work go on without the cache,
            # the events and the rate limiter, while the worker carries on with the batch.
            down_until = time.monotonic() + 3
            while time.monotonic() < down_until:
                states = []
                for task_id in ids:
                    started = time.monotonic()
                    states.append(client.get_status(task_id).state)
                    seconds.append(time.monotonic() - started)
                time.sleep(0.2)
            started = time.monotonic()
            ids.append(client.submit(image, operations=operations, format="png", effort=9).id)
            seconds.append(time.monotonic() - started)
        finally:
            if not _redis_answers():
                _start_shared_redis()
            _wait_until(_redis_answers, "Redis")
        assert max(seconds) < OUTAGE_ANSWER_SECONDS, seconds
        assert states.count(SUCCEEDED) < 20, "the batch was still in flight during the outage"

        _wait_for_success(client, ids, timeout=60)
        # Watches after the restart: one on a finished task, one following a new task live
        # (the server's shared event subscription came back on its own).
        assert list(client.watch(ids[0]))[-1].state == SUCCEEDED
        fresh = client.submit(jpeg_bytes(96, 64), resize=(48, 32)).id
        assert list(client.watch(fresh))[-1].state == SUCCEEDED
