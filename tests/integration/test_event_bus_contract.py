"""The event bus contract: every test runs on the in-process bus and on Redis pub/sub.

A Redis subscription is live only once Redis confirms its channel, and says so with a
RESYNC; `ready` waits for it (the in-process bus is live at once). The Redis-only tests at
the end check the one shared connection, reconnection, and that a watcher never hangs on
an event that pub/sub lost.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import pytest
import redis

from imageeditor.core.adapters.memory.event_bus import InProcessEventBus
from imageeditor.core.adapters.redis.connection import redis_client
from imageeditor.core.adapters.redis.event_bus import CHANNEL_PREFIX, RedisEventBus
from imageeditor.core.ports import EventBus, Resync, Subscription
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskState
from imageeditor.server.watch import TaskWatcher

WAIT = 5.0  # seconds: generous, so a loaded machine does not fail a test


def new_task() -> Task:
    return Task(id=f"test-{uuid.uuid4()}", user_id="alice", spec=TaskSpec())


async def next_event(subscription: Subscription, seconds: float = WAIT) -> Task | Resync:
    # A fresh iterator per call: a timed-out one is finished, the queue behind it is not.
    return await asyncio.wait_for(anext(aiter(subscription)), seconds)


async def receive(subscription: Subscription, count: int) -> list[int]:
    """The versions of the next `count` tasks delivered (RESYNCs skipped)."""
    versions: list[int] = []
    while len(versions) < count:
        event = await next_event(subscription)
        if isinstance(event, Task):
            versions.append(event.version)
    return versions


async def nothing_arrives(subscription: Subscription, within: float = 0.3) -> bool:
    try:
        while True:
            if isinstance(await next_event(subscription, within), Task):
                return False
    except TimeoutError:
        return True


@dataclass
class BusUnderTest:
    bus: EventBus
    ready: Callable[[Subscription], Awaitable[None]]


async def _live_at_once(subscription: Subscription) -> None:
    return None


async def _confirmed(subscription: Subscription) -> None:
    assert isinstance(await next_event(subscription), Resync)


@pytest.fixture
def client_name() -> str:
    return f"imageeditor-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bus_url(redis_url: str, client_name: str) -> str:
    """The test Redis, with a client name that finds this test's connections in CLIENT LIST."""
    return f"{redis_url}?client_name={client_name}"


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
async def under_test(request: pytest.FixtureRequest) -> AsyncIterator[BusUnderTest]:
    if request.param == "embedded":
        yield BusUnderTest(InProcessEventBus(), _live_at_once)
        return
    bus = RedisEventBus(request.getfixturevalue("bus_url"))
    yield BusUnderTest(bus, _confirmed)
    await bus.aclose()


def publish_from_a_thread(bus: EventBus, task: Task, versions: range) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: [bus.publish(replace(task, version=v)) for v in versions]
    )
    thread.start()
    return thread


async def test_transitions_arrive_in_order_from_another_thread(under_test: BusUnderTest) -> None:
    task = new_task()
    subscription = under_test.bus.subscribe(task.id)
    await under_test.ready(subscription)
    publish_from_a_thread(under_test.bus, task, range(1, 31)).join()
    assert await receive(subscription, 30) == list(range(1, 31))
    subscription.close()


async def test_every_watcher_of_a_task_gets_every_transition(under_test: BusUnderTest) -> None:
    task = new_task()
    subscriptions = [under_test.bus.subscribe(task.id) for _ in range(3)]
    for subscription in subscriptions:
        await under_test.ready(subscription)
    publish_from_a_thread(under_test.bus, task, range(1, 6)).join()
    for subscription in subscriptions:
        assert await receive(subscription, 5) == [1, 2, 3, 4, 5]
        subscription.close()


async def test_watchers_see_only_their_own_task(under_test: BusUnderTest) -> None:
    mine, other = new_task(), new_task()
    subscription = under_test.bus.subscribe(mine.id)
    await under_test.ready(subscription)
    under_test.bus.publish(other)
    under_test.bus.publish(replace(mine, version=7))
    assert await receive(subscription, 1) == [7]
    assert await nothing_arrives(subscription)
    subscription.close()


async def test_a_closed_subscription_receives_nothing(under_test: BusUnderTest) -> None:
    task = new_task()
    leaving, staying = under_test.bus.subscribe(task.id), under_test.bus.subscribe(task.id)
    await under_test.ready(leaving)
    await under_test.ready(staying)
    leaving.close()
    under_test.bus.publish(task)
    assert await receive(staying, 1) == [1]
    assert await nothing_arrives(leaving)
    staying.close()


class EventLog:
    """Just enough of a TaskStore for TaskWatcher: a task's versions, the last one current."""

    def __init__(self, task: Task) -> None:
        self.versions = [task]

    def append(self, task: Task) -> Task:
        self.versions.append(task)
        return task

    def get_task(self, task_id: str, user_id: str | None = None) -> Task | None:
        return self.versions[-1]

    def list_events(self, task_id: str, after_version: int) -> list[Task]:
        return [task for task in self.versions if task.version > after_version]


async def collect(watch: AsyncIterator[Task]) -> list[int]:
    return [task.version async for task in watch]


async def test_a_watcher_sees_each_version_once_in_order(under_test: BusUnderTest) -> None:
    log = EventLog(new_task())
    watcher = TaskWatcher(log, under_test.bus)  # type: ignore[arg-type]
    watching = asyncio.create_task(collect(watcher.watch("alice", log.versions[0].id, 0)))
    await asyncio.sleep(0.1)
    task = log.versions[0]
    for _ in range(4):
        task = log.append(replace(task, version=task.version + 1))
        under_test.bus.publish(task)
        under_test.bus.publish(task)  # a duplicate delivery is skipped
    under_test.bus.publish(log.append(replace(task, version=6, state=TaskState.SUCCEEDED)))
    assert await asyncio.wait_for(watching, WAIT) == [1, 2, 3, 4, 5, 6]


# -- Redis only ---------------------------------------------------------------------------------


@pytest.fixture
def admin(redis_url: str) -> redis.Redis:
    return redis_client(redis_url)


def pubsub_connections(admin: redis.Redis, client_name: str) -> list[dict[str, str]]:
    return [c for c in admin.client_list(_type="pubsub") if c.get("name") == client_name]


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.redis
async def test_one_connection_serves_every_watcher(
    bus_url: str, admin: redis.Redis, client_name: str
) -> None:
    bus = RedisEventBus(bus_url)
    tasks = [new_task() for _ in range(10)]
    subscriptions = [bus.subscribe(task.id) for task in tasks for _ in range(5)]
    for subscription in subscriptions:
        await _confirmed(subscription)
    assert len(pubsub_connections(admin, client_name)) == 1
    channels = [CHANNEL_PREFIX + task.id for task in tasks]
    assert all(count == 1 for _, count in admin.pubsub_numsub(*channels))
    for subscription in subscriptions[:45]:  # the last task keeps its 5 watchers
        subscription.close()
    await eventually(lambda: [n for _, n in admin.pubsub_numsub(*channels)] == [0] * 9 + [1])
    await bus.aclose()
    await eventually(lambda: pubsub_connections(admin, client_name) == [])


@pytest.mark.redis
async def test_a_new_watcher_is_subscribed_at_once_not_after_the_readers_poll(
    bus_url: str,
) -> None:
    bus = RedisEventBus(bus_url, poll_seconds=30.0)  # the reader waits 30 s for a message
    await _confirmed(bus.subscribe(new_task().id))  # connected, and now waiting
    task = new_task()
    started = time.monotonic()
    watcher = bus.subscribe(task.id)

    await _confirmed(watcher)
    bus.publish(replace(task, version=2))

    assert await receive(watcher, 1) == [2]
    assert time.monotonic() - started < 2.0
    await bus.aclose()


@pytest.mark.redis
async def test_a_publisher_in_another_process_reaches_the_watchers(bus_url: str) -> None:
    bus = RedisEventBus(bus_url)
    task = new_task()
    subscription = bus.subscribe(task.id)
    await _confirmed(subscription)
    code = (
        "import sys; from imageeditor.core.adapters.redis.event_bus import RedisEventBus; "
        "from imageeditor.core.spec import TaskSpec; from imageeditor.core.task import Task; "
        "bus = RedisEventBus(sys.argv[1]); "
        "bus.publish(Task(id=sys.argv[2], user_id='alice', spec=TaskSpec(), version=3)); "
        "bus.close()"
    )
    publisher = await asyncio.create_subprocess_exec(sys.executable, "-c", code, bus_url, task.id)
    assert await publisher.wait() == 0
    assert await receive(subscription, 1) == [3]
    await bus.aclose()


@pytest.mark.redis
async def test_the_bus_reconnects_and_resubscribes_after_its_connection_is_killed(
    bus_url: str, admin: redis.Redis, client_name: str
) -> None:
    bus = RedisEventBus(bus_url)
    task = new_task()
    subscription = bus.subscribe(task.id)
    await _confirmed(subscription)
    (killed,) = pubsub_connections(admin, client_name)
    # Only our connection: CLIENT KILL TYPE pubsub would cut everyone else's on this server.
    admin.client_kill_filter(_id=killed["id"])
    assert isinstance(await next_event(subscription), Resync)  # the loss
    assert isinstance(await next_event(subscription), Resync)  # Redis confirmed the channel again
    (current,) = pubsub_connections(admin, client_name)
    assert current["id"] != killed["id"]
    bus.publish(replace(task, version=2))
    assert await receive(subscription, 1) == [2]
    await bus.aclose()


@pytest.mark.redis
async def test_a_watcher_whose_task_finished_while_disconnected_is_not_stuck(
    bus_url: str, admin: redis.Redis, client_name: str
) -> None:
    bus = RedisEventBus(bus_url)
    log = EventLog(new_task().start())
    watching = aiter(TaskWatcher(log, bus).watch("alice", log.versions[0].id, 0))  # type: ignore[arg-type]
    assert (await anext(watching)).version == 2
    await eventually(lambda: len(pubsub_connections(admin, client_name)) == 1)
    # The worker finishes while the subscription is down: its PUBLISH reaches no one.
    log.append(replace(log.versions[-1], version=3, state=TaskState.SUCCEEDED))
    (connection,) = pubsub_connections(admin, client_name)
    admin.client_kill_filter(_id=connection["id"])
    assert (await asyncio.wait_for(anext(watching), WAIT)).version == 3
    await bus.aclose()


@pytest.mark.redis
async def test_a_watcher_catches_up_when_a_publish_is_lost(bus_url: str) -> None:
    bus = RedisEventBus(bus_url, idle_resync_seconds=0.3)
    log = EventLog(new_task().start())
    watching = aiter(TaskWatcher(log, bus).watch("alice", log.versions[0].id, 0))  # type: ignore[arg-type]
    assert (await anext(watching)).version == 2
    log.append(replace(log.versions[-1], version=3, state=TaskState.SUCCEEDED))  # never published
    assert (await asyncio.wait_for(anext(watching), WAIT)).version == 3
    await bus.aclose()


def test_publishing_without_redis_does_not_raise() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0")
    bus.publish(new_task())
    bus.close()
