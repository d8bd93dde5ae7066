"""The status cache contract: every test runs on the in-process cache and on Redis.

TTLs are checked by what each tier reports is left of an entry (Redis: PTTL), not by
sleeping for an hour.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
import redis

from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.adapters.redis.connection import redis_client
from imageeditor.core.adapters.redis.status_cache import KEY_PREFIX, RedisStatusCache
from imageeditor.core.ports import StatusCache
from imageeditor.core.sealing import Sealer, new_key
from imageeditor.core.spec import ImageFormat, TaskSpec
from imageeditor.core.task import ResultInfo, Stage, Task, TaskState

RUN = uuid.uuid4().hex[:8]  # every key of this run starts with it, for the clean-up


def new_task(version: int = 1, state: TaskState = TaskState.QUEUED) -> Task:
    moment = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    return Task(
        id=f"test-{RUN}-{uuid.uuid4()}",
        user_id="alice",
        spec=TaskSpec(image_url="https://images.example.com/cat.png"),
        state=state,
        version=version,
        created_at=moment,
        updated_at=moment,
        labels={"album": "summer"},
    )


@dataclass
class CacheUnderTest:
    cache: StatusCache
    seconds_left: Callable[[str], float | None]  # what is left of an entry's TTL


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def under_test(request: pytest.FixtureRequest) -> Iterator[CacheUnderTest]:
    if request.param == "embedded":
        memory = InProcessStatusCache()

        def memory_left(task_id: str) -> float | None:
            entry = memory._entries.get(task_id)
            return None if entry is None else entry[0] - time.monotonic()

        yield CacheUnderTest(memory, memory_left)
        return
    client = redis_client(request.getfixturevalue("redis_url"))

    def redis_left(task_id: str) -> float | None:
        milliseconds = client.pttl(KEY_PREFIX + task_id)
        return None if milliseconds < 0 else milliseconds / 1000

    yield CacheUnderTest(RedisStatusCache(client), redis_left)
    _delete_run_keys(client)
    client.close()


def _delete_run_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}test-{RUN}-*", count=1000))
    if keys:
        client.delete(*keys)


def test_a_missing_task_is_a_miss(under_test: CacheUnderTest) -> None:
    assert under_test.cache.get(str(uuid.uuid4())) is None


def test_a_task_comes_back_as_it_was_put(under_test: CacheUnderTest) -> None:
    running = new_task().start().enter_stage(Stage.FETCH)
    done = replace(
        running.succeed(
            ResultInfo(
                width=640,
                height=480,
                format=ImageFormat.WEBP,
                size_bytes=123,
                sha256="ab" * 32,
                uri="s3://bucket/results/x.webp",
                key="results/x.webp",
            )
        ),
        request_id="req-1",
    )
    for task in (running, done):
        under_test.cache.put(task)
        assert under_test.cache.get(task.id) == task


def test_an_older_version_never_replaces_a_newer_one(under_test: CacheUnderTest) -> None:
    task = new_task(version=3, state=TaskState.SUCCEEDED)
    under_test.cache.put(task)
    under_test.cache.put(replace(task, version=2, state=TaskState.RUNNING))
    assert under_test.cache.get(task.id) == task
    newer = replace(task, version=4, progress=1.0)
    under_test.cache.put(newer)
    assert under_test.cache.get(task.id) == newer


def test_concurrent_writers_leave_the_newest_version(under_test: CacheUnderTest) -> None:
    task = new_task()
    versions = list(range(1, 41))
    threads = [
        threading.Thread(
            target=lambda chunk=versions[start::4]: [
                under_test.cache.put(replace(task, version=v)) for v in reversed(chunk)
            ]
        )
        for start in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cached = under_test.cache.get(task.id)
    assert cached is not None and cached.version == 40


def test_invalidation_removes_the_entry(under_test: CacheUnderTest) -> None:
    task = new_task()
    under_test.cache.put(task)
    under_test.cache.invalidate(task.id)
    assert under_test.cache.get(task.id) is None
    assert under_test.seconds_left(task.id) is None
    under_test.cache.invalidate(task.id)  # forgetting twice is fine


@pytest.mark.parametrize(
    ("state", "ttl"),
    [
        (TaskState.QUEUED, 300),
        (TaskState.RUNNING, 300),
        (TaskState.SUCCEEDED, 3600),
        (TaskState.FAILED, 1800),
        (TaskState.CANCELLED, 1800),
    ],
)
def test_entries_live_for_the_ttl_of_their_state(
    under_test: CacheUnderTest, state: TaskState, ttl: float
) -> None:
    task = new_task(version=2, state=state)
    under_test.cache.put(task)
    left = under_test.seconds_left(task.id)
    assert left is not None and ttl - 5 < left <= ttl


def test_each_transition_sets_the_ttl_of_its_new_state(under_test: CacheUnderTest) -> None:
    running = new_task().start()
    under_test.cache.put(running)
    under_test.cache.put(replace(running, state=TaskState.SUCCEEDED, version=running.version + 1))
    left = under_test.seconds_left(running.id)
    assert left is not None and left > 3000


# -- Redis only: the shared tier, the in-process layer, outages ---------------------------------


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis_client(redis_url)
    yield connection
    _delete_run_keys(connection)
    connection.close()


@pytest.mark.redis
def test_the_entry_is_the_json_snapshot_shared_by_every_process(client: redis.Redis) -> None:
    server, worker = RedisStatusCache(client, hot_seconds=0), RedisStatusCache(client)
    task = new_task(version=3, state=TaskState.RUNNING)
    worker.put(task)
    server.put(replace(task, version=2))  # a late reader repopulating after a miss
    assert server.get(task.id) == task
    raw = client.get(KEY_PREFIX + task.id)
    assert raw is not None and json.loads(raw)["version"] == 3


@pytest.mark.redis
def test_an_entry_keeps_what_a_task_reveals_sealed(client: redis.Redis) -> None:
    sealer = Sealer.from_texts([new_key()])
    cache = RedisStatusCache(client, hot_seconds=0, sealer=sealer)
    spec = TaskSpec(
        image_url="https://e.com/a.png?sig=IMG-TOKEN",
        callback_url="https://h.example/x?t=HOOK-TOKEN",
    )
    task = replace(new_task(version=2, state=TaskState.RUNNING), spec=spec)
    cache.put(task)

    raw = client.get(KEY_PREFIX + task.id)
    assert raw is not None and b"IMG-TOKEN" not in raw and b"HOOK-TOKEN" not in raw
    assert cache.get(task.id) == task


@pytest.mark.redis
def test_a_hot_finished_task_is_served_from_memory_for_hot_seconds(
    client: redis.Redis,
) -> None:
    cache = RedisStatusCache(client, hot_seconds=0.3)
    task = new_task(version=5, state=TaskState.SUCCEEDED)
    cache.put(task)
    client.delete(KEY_PREFIX + task.id)  # behind the cache's back
    assert cache.get(task.id) == task
    time.sleep(0.35)
    assert cache.get(task.id) is None
    uncached = RedisStatusCache(client, hot_seconds=0)
    uncached.put(task)
    client.delete(KEY_PREFIX + task.id)
    assert uncached.get(task.id) is None


@pytest.mark.redis
def test_an_unfinished_task_is_never_served_from_memory(client: redis.Redis) -> None:
    # Another process's transition must be visible at once: no in-process copy of a task
    # that can still change.
    server, worker = RedisStatusCache(client, hot_seconds=60), RedisStatusCache(client)
    task = new_task(version=1)
    server.put(task)
    assert server.get(task.id) == task
    running = replace(task, version=2, state=TaskState.RUNNING)
    worker.put(running)
    assert server.get(task.id) == running


@pytest.mark.redis
def test_a_refused_older_write_drops_the_hot_copy(client: redis.Redis) -> None:
    ours, theirs = RedisStatusCache(client, hot_seconds=60), RedisStatusCache(client)
    task = new_task(version=1)
    ours.put(task)
    theirs.put(replace(task, version=2, state=TaskState.RUNNING))
    ours.put(task)  # refused by Redis: our memory must not keep serving version 1
    cached = ours.get(task.id)
    assert cached is not None and cached.version == 2


@pytest.mark.redis
def test_an_unreadable_entry_is_a_miss(client: redis.Redis) -> None:
    task = new_task()
    client.set(KEY_PREFIX + task.id, b"{not json")
    assert RedisStatusCache(client).get(task.id) is None


@pytest.mark.redis
def test_writes_missed_in_an_outage_are_made_up_for_when_redis_answers_again(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    ours, theirs = RedisStatusCache(client, clock=clock), RedisStatusCache(client, hot_seconds=0)
    task = new_task()
    ours.put(task)

    def unreachable(**kwargs: object) -> None:
        raise redis.ConnectionError("partitioned")

    with monkeypatch.context() as patch:  # our link to Redis is cut; Redis keeps its data
        patch.setattr(ours, "_put_script", unreachable)
        ours.put(replace(task, version=2, state=TaskState.RUNNING))
    assert theirs.get(task.id) == task  # the older state, for now
    assert ours.get(task.id) is None  # Redis is left alone during the cooldown...
    clock.now += 6
    assert ours.get(task.id) is None  # ...then the missed write is made up for
    assert theirs.get(task.id) is None


class FakeClock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_redis_outage_is_a_miss_not_an_error() -> None:
    # Port 1 on loopback: nothing listens there, so every call fails at once.
    cache = RedisStatusCache(redis_client("redis://127.0.0.1:1/0"))
    task = new_task()
    cache.put(task)
    assert cache.get(task.id) is None
    cache.invalidate(task.id)
