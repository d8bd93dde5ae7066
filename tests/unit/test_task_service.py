"""The service layer's use cases, one behaviour a test, on fakes and in-process adapters.

`TaskService` is built here by hand: the embedded SQLite task and callback stores (a copy of
one migrated database per test), an in-process status cache and rate limiter with a clock
the test moves, and fakes that record what was dispatched, published and stored as blobs.
No server, no worker, no thread: each test says what a use case does, and fails when it
stops doing it.
"""

from __future__ import annotations

import contextvars
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest

from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter
from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.callbacks import DeliveryState, EventType, batch_key, task_key
from imageeditor.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.ports import Subscription, TaskQuery
from imageeditor.core.service import MAX_PAGE_SIZE, NewTask, TaskService
from imageeditor.core.settings import Settings
from imageeditor.core.spec import ImageFormat, TaskSpec
from imageeditor.core.task import ResultInfo, Task, TaskError, TaskState

SPEC = TaskSpec(image_url="https://images.example.com/cat.png")
IMAGE = b"\x89PNG inline bytes"


# -- fakes -------------------------------------------------------------------------------------


class FakeBlobStore:
    """Blobs in a dict."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> str:
        self.blobs[key] = data
        return f"fake://{key}"

    def get(self, key: str) -> bytes:
        if key not in self.blobs:
            raise NotFound(f"blob {key} not found", reason="BLOB_NOT_FOUND")
        return self.blobs[key]

    def open_chunks(self, key: str, chunk_size: int) -> Iterator[bytes]:
        data = self.get(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)


class RecordingDispatcher:
    """Records each dispatch, and whether the task was already committed when it came."""

    def __init__(self, store: SqlTaskStore) -> None:
        self._store = store
        self.dispatched: list[Task] = []
        self.committed_first: list[bool] = []
        self.interrupted: list[str] = []
        self.on_dispatch: Callable[[], None] = lambda: None

    def dispatch(self, task: Task) -> None:
        self.committed_first.append(self._store.get_task(task.id) == task)
        self.dispatched.append(task)
        self.on_dispatch()

    def interrupt(self, task_id: str) -> None:
        self.interrupted.append(task_id)


class Later:
    """Holds what the service schedules, to be run when the test says."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, action: Callable[[], None]) -> None:
        self.scheduled.append((delay, action))

    def run_all(self) -> None:
        for _, action in self.scheduled:
            action()
        self.scheduled.clear()


class RecordingEventBus:
    def __init__(self) -> None:
        self.published: list[Task] = []

    def publish(self, task: Task) -> None:
        self.published.append(task)

    def subscribe(self, task_id: str) -> Subscription:
        raise AssertionError("the service layer never subscribes")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Parts:
    service: TaskService
    store: SqlTaskStore
    deliveries: SqlCallbackStore
    blobs: FakeBlobStore
    dispatcher: RecordingDispatcher
    events: RecordingEventBus
    cache: InProcessStatusCache
    lifecycle: Lifecycle
    clock: Clock
    later: Later
    settings: Settings = field(default_factory=Settings)

    def submit(self, user: str = "alice", **fields: object) -> Task:
        return self.service.submit(user, NewTask(**{"spec": SPEC, **fields}))  # type: ignore[arg-type]

    def finish(self, task: Task, state: TaskState) -> Task:
        """Run the task to `state` the way a worker would, through the lifecycle."""
        running = self.lifecycle.update(task.id, lambda t: t.start())
        if state is TaskState.SUCCEEDED:
            key = f"results/{task.id}.png"
            self.blobs.put(key, b"result bytes " * 10)
            result = ResultInfo(8, 8, ImageFormat.PNG, 130, "00" * 32, f"fake://{key}", key)
            return self.lifecycle.update(task.id, lambda t: t.succeed(result))
        if state is TaskState.FAILED:
            error = TaskError("INVALID_ARGUMENT", "IMAGE_UNREADABLE", "not an image")
            return self.lifecycle.update(task.id, lambda t: t.fail(error))
        assert state is TaskState.RUNNING
        return running


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "imageeditor.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def build_parts(db: Path, settings: Settings) -> Parts:
    engine = create_engine_for(f"sqlite:///{db}")
    store = SqlTaskStore(engine)
    deliveries = SqlCallbackStore(engine)
    blobs = FakeBlobStore()
    dispatcher = RecordingDispatcher(store)
    events = RecordingEventBus()
    cache = InProcessStatusCache()
    lifecycle = Lifecycle(store, cache, events)
    clock = Clock()
    later = Later()
    service = TaskService(
        store=store,
        blobs=blobs,
        dispatcher=dispatcher,
        lifecycle=lifecycle,
        cache=cache,
        limiter=InProcessRateLimiter(clock=clock),
        settings=settings,
        deliveries=deliveries,
        later=later,
    )
    return Parts(
        service,
        store,
        deliveries,
        blobs,
        dispatcher,
        events,
        cache,
        lifecycle,
        clock,
        later,
        settings,
    )


@pytest.fixture
def parts(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Parts]:
    db = tmp_path / "imageeditor.db"
    shutil.copy(migrated_sqlite, db)
    # Limits high enough to stay out of the way, except in the tests about them.
    built = build_parts(db, Settings(submit_rate=1000, submit_burst=1000, batch_burst=100))
    yield built
    built.store.close()


@pytest.fixture
def limited(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Parts]:
    """A service with the seed system's tight limits: 2 submits a second (burst 3), one
    batch a second (burst 1)."""
    db = tmp_path / "imageeditor.db"
    shutil.copy(migrated_sqlite, db)
    settings = Settings(submit_rate=2, submit_burst=3, batch_rate=1, batch_burst=1)
    built = build_parts(db, settings)
    yield built
    built.store.close()


# -- submit --------------------------------------------------------------------------------------


def test_submit_commits_the_task_queued_before_dispatching_it(parts: Parts) -> None:
    task = parts.submit(labels={"team": "a"}, request_id="r-1")

    assert task.state is TaskState.QUEUED and task.version == 1 and task.user_id == "alice"
    assert parts.store.get_task(task.id) == task
    assert parts.dispatcher.dispatched == [task]
    assert parts.dispatcher.committed_first == [True]


def test_submit_neither_publishes_nor_caches_the_new_task(parts: Parts) -> None:
    task = parts.submit()

    assert parts.events.published == []  # its id was not answered yet: no one watches it
    assert parts.cache.get(task.id) is None  # the first read caches it
    assert parts.service.get("alice", task.id) == task
    assert parts.cache.get(task.id) == task


def test_an_inline_image_is_stored_as_a_blob_and_named_by_the_spec(parts: Parts) -> None:
    task = parts.submit(spec=TaskSpec(), image_data=IMAGE)

    assert task.spec.input_key == f"inputs/{task.id}"
    assert task.spec.input_size == len(IMAGE)
    assert parts.blobs.blobs == {f"inputs/{task.id}": IMAGE}


def test_the_same_request_id_returns_the_first_task_and_dispatches_nothing_more(
    parts: Parts,
) -> None:
    first = parts.submit(request_id="once")
    again = parts.submit(request_id="once")

    assert again == first
    assert parts.dispatcher.dispatched == [first]
    assert [t.id for t in parts.store.list_tasks(TaskQuery("alice"), 10)] == [first.id]


def test_a_duplicate_request_drops_the_inline_image_it_uploaded(parts: Parts) -> None:
    first = parts.submit(spec=TaskSpec(), image_data=IMAGE, request_id="once")
    again = parts.submit(spec=TaskSpec(), image_data=b"other bytes", request_id="once")

    assert again.id == first.id
    assert parts.blobs.blobs == {first.spec.input_key: IMAGE}


def test_a_group_of_submits_answers_each_with_its_own_outcome(limited: Parts) -> None:
    first = limited.submit("bob", request_id="earlier", request_digest="d1")
    group = [
        ("alice", NewTask(SPEC, request_id="a", request_digest="da")),
        ("bob", NewTask(SPEC, request_id="earlier", request_digest="d1")),  # a retry
        ("bob", NewTask(SPEC, request_id="earlier", request_digest="other")),  # a reuse
        *[("carol", NewTask(SPEC)) for _ in range(4)],  # burst 3: the fourth is refused
    ]

    outcomes = limited.service.submit_many(group)

    alice, retry, reuse, *carols = outcomes
    assert isinstance(alice, Task) and alice.user_id == "alice" and alice.request_id == "a"
    assert retry == first
    assert isinstance(reuse, AlreadyExists) and reuse.reason == "REQUEST_ID_REUSED"
    assert [type(o).__name__ for o in carols] == ["Task"] * 3 + ["ResourceExhausted"]
    new = [alice, *carols[:3]]
    assert all(limited.store.get_task(t.id) == t for t in new if isinstance(t, Task))
    assert limited.dispatcher.dispatched == [first, *new]
    assert limited.dispatcher.committed_first == [True] * 5


def test_a_group_dispatches_each_task_in_its_submitters_context(parts: Parts) -> None:
    seen: list[str] = []
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
    parts.dispatcher.on_dispatch = lambda: seen.append(marker.get())
    contexts = []
    for name in ("one", "two"):
        marker.set(name)
        contexts.append(contextvars.copy_context())
    marker.set("the committer's")

    parts.service.submit_many([("alice", NewTask(SPEC, context=c)) for c in contexts])

    assert seen == ["one", "two"]


def test_request_ids_are_scoped_to_their_user(parts: Parts) -> None:
    alice = parts.submit("alice", request_id="same")
    bob = parts.submit("bob", request_id="same")

    assert alice.id != bob.id
    assert (alice.user_id, bob.user_id) == ("alice", "bob")


# -- rate limits ---------------------------------------------------------------------------------


def test_submits_beyond_the_burst_are_refused_with_a_retry_delay(limited: Parts) -> None:
    for _ in range(3):
        limited.submit()

    with pytest.raises(ResourceExhausted) as refused:
        limited.submit(spec=TaskSpec(), image_data=IMAGE)

    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.metadata == {"limit": "submit"}
    assert refused.value.retry_after == pytest.approx(0.5)
    assert len(limited.dispatcher.dispatched) == 3
    assert not limited.blobs.blobs  # refused before anything was written


def test_a_refused_caller_is_let_in_again_once_the_delay_has_passed(limited: Parts) -> None:
    for _ in range(3):
        limited.submit()
    with pytest.raises(ResourceExhausted) as refused:
        limited.submit()

    limited.clock.now += refused.value.retry_after
    assert limited.submit().state is TaskState.QUEUED


def test_each_user_has_a_limit_of_their_own(limited: Parts) -> None:
    for _ in range(3):
        limited.submit("alice")

    assert limited.submit("bob").user_id == "bob"


def test_batches_have_a_limit_apart_from_submits(limited: Parts) -> None:
    limited.service.batch_submit("alice", [NewTask(SPEC)])

    with pytest.raises(ResourceExhausted) as refused:
        limited.service.batch_submit("alice", [NewTask(SPEC)])
    assert refused.value.metadata == {"limit": "batch"}
    assert limited.submit("alice").state is TaskState.QUEUED  # submits are still allowed


def test_every_item_of_a_batch_counts_against_the_submit_limit(limited: Parts) -> None:
    """120 parallel submits left the user refused, yet a batch of 100 went through at once."""
    for _ in range(3):
        limited.submit()

    with pytest.raises(ResourceExhausted) as refused:
        limited.service.batch_submit("alice", [NewTask(SPEC) for _ in range(100)])
    assert refused.value.metadata == {"limit": "submit"}
    assert len(limited.dispatcher.dispatched) == 3


def test_a_batch_takes_its_size_from_the_submit_budget(limited: Parts) -> None:
    limited.service.batch_submit("alice", [NewTask(SPEC) for _ in range(10)])

    with pytest.raises(ResourceExhausted) as refused:
        limited.submit()
    # 10 submits at 2/s take 5 s, less the 1 s the burst of 3 allows: 4 s to wait.
    assert refused.value.retry_after == pytest.approx(4.0)


def test_invalid_items_of_a_batch_cost_no_submit(limited: Parts) -> None:
    bad = InvalidArgument("no image")
    limited.service.batch_submit("alice", [bad] * 50)

    assert [limited.submit().state for _ in range(3)] == [TaskState.QUEUED] * 3


# -- batches -------------------------------------------------------------------------------------


def test_a_batch_commits_its_valid_items_and_keeps_each_error_in_its_place(parts: Parts) -> None:
    bad = InvalidArgument("no image", field_violations={"requests[1].image_url": "required"})
    batch, outcomes = parts.service.batch_submit(
        "alice",
        [NewTask(SPEC), bad, NewTask(TaskSpec(), image_data=IMAGE)],
        callback_url="https://hooks.example.com/batch",
        request_id="b-1",
    )

    first, error, third = outcomes
    assert error is bad
    assert isinstance(first, Task) and isinstance(third, Task)
    assert batch.task_ids == (first.id, third.id)
    assert first.batch_id == third.batch_id == batch.id
    assert parts.store.get_batch(batch.id, "alice") == batch
    assert parts.store.get_tasks([first.id, third.id]) == [first, third]
    assert parts.dispatcher.dispatched == [first, third]
    assert parts.dispatcher.committed_first == [True, True]
    assert parts.blobs.blobs == {third.spec.input_key: IMAGE}


def test_a_retried_batch_answers_the_first_tasks_in_the_same_places(parts: Parts) -> None:
    bad = InvalidArgument("no image")
    items = [bad, NewTask(SPEC), NewTask(TaskSpec(), image_data=IMAGE)]
    batch, outcomes = parts.service.batch_submit("alice", items, request_id="b-1")

    again_batch, again = parts.service.batch_submit("alice", items, request_id="b-1")

    assert again_batch == batch
    assert again[1:] == outcomes[1:]
    assert isinstance(again[0], InvalidArgument) and again[0].message == "no image"
    assert len(parts.dispatcher.dispatched) == 2  # nothing dispatched twice
    # The retry's own upload of the inline image was dropped; the first one stays.
    third = outcomes[2]
    assert isinstance(third, Task)
    assert parts.blobs.blobs == {third.spec.input_key: IMAGE}


def test_a_request_id_used_again_for_another_request_is_refused(parts: Parts) -> None:
    first = parts.submit(request_id="once", request_digest="digest-a")
    with pytest.raises(AlreadyExists) as refused:
        parts.submit(spec=TaskSpec(), image_data=IMAGE, request_id="once", request_digest="b")

    assert refused.value.reason == "REQUEST_ID_REUSED"
    assert parts.dispatcher.dispatched == [first]
    assert not parts.blobs.blobs  # the second request's upload was dropped
    assert parts.submit(request_id="once", request_digest="digest-a") == first  # a retry


def test_a_task_stored_without_a_digest_answers_any_retry(parts: Parts) -> None:
    first = parts.submit(request_id="old")  # as stored before digests were kept
    assert parts.submit(request_id="old", request_digest="digest-b") == first


def test_a_retried_batch_with_another_request_is_refused(parts: Parts) -> None:
    items = [NewTask(SPEC), NewTask(SPEC)]
    parts.service.batch_submit("alice", items, request_id="b-1", request_digest="digest-a")

    with pytest.raises(AlreadyExists) as refused:
        parts.service.batch_submit("alice", items, request_id="b-1", request_digest="other")
    assert refused.value.reason == "REQUEST_ID_REUSED"
    assert len(parts.dispatcher.dispatched) == 2


def test_a_retried_batch_answers_its_first_outcome_whatever_is_valid_now(parts: Parts) -> None:
    """The first call refused item 0; the retry (say, under new settings) finds every item
    valid. It used to raise StopIteration and never answer; it answers the first outcome."""
    bad = InvalidArgument("no image", field_violations={"requests[0].source": "set one"})
    batch, first = parts.service.batch_submit(
        "alice", [bad, NewTask(SPEC), NewTask(SPEC)], request_id="b-1", request_digest="d"
    )

    again_batch, again = parts.service.batch_submit(
        "alice", [NewTask(SPEC)] * 3, request_id="b-1", request_digest="d"
    )

    assert again_batch == batch
    assert [type(o) for o in again] == [InvalidArgument, Task, Task]
    assert again[1:] == first[1:]
    refused = again[0]
    assert isinstance(refused, InvalidArgument)
    assert (refused.message, refused.field_violations) == (bad.message, bad.field_violations)


def test_a_batch_of_only_errors_creates_no_task(parts: Parts) -> None:
    bad = InvalidArgument("no image")
    batch, outcomes = parts.service.batch_submit("alice", [bad, bad])

    assert outcomes == [bad, bad]
    assert batch.task_ids == ()
    assert parts.dispatcher.dispatched == []
    assert parts.store.list_tasks(TaskQuery("alice"), 10) == []


# -- reading -------------------------------------------------------------------------------------


def test_get_reads_the_store_and_fills_the_cache(parts: Parts) -> None:
    task = parts.submit()
    parts.cache.invalidate(task.id)

    assert parts.service.get("alice", task.id) == task
    assert parts.cache.get(task.id) == task


def test_get_answers_from_the_cache_when_it_holds_the_task(parts: Parts) -> None:
    task = parts.submit()
    newer = replace(task, progress=0.5, version=task.version + 5)
    parts.cache.put(newer)  # what a worker on another process just published

    assert parts.service.get("alice", task.id) == newer


@pytest.mark.parametrize("cached", [True, False])
def test_another_users_task_is_not_found(parts: Parts, cached: bool) -> None:
    task = parts.submit("alice")
    if not cached:
        parts.cache.invalidate(task.id)

    with pytest.raises(NotFound) as missing:
        parts.service.get("bob", task.id)
    assert missing.value.reason == "TASK_NOT_FOUND"


def test_an_unknown_task_is_not_found(parts: Parts) -> None:
    with pytest.raises(NotFound):
        parts.service.get("alice", str(uuid.uuid4()))


def test_listing_pages_newest_first_until_an_empty_token(parts: Parts) -> None:
    created = [parts.submit() for _ in range(5)]
    query = TaskQuery("alice")

    pages: list[list[str]] = []
    token = ""
    while True:
        page, token = parts.service.list_tasks(query, 2, token)
        pages.append([t.id for t in page])
        if not token:
            break

    newest_first = [t.id for t in reversed(created)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]


def test_a_page_that_ends_the_listing_has_no_token(parts: Parts) -> None:
    for _ in range(2):
        parts.submit()

    page, token = parts.service.list_tasks(TaskQuery("alice"), 2, "")
    assert len(page) == 2 and token == ""


def test_page_size_zero_means_fifty_and_large_sizes_are_capped(parts: Parts) -> None:
    parts.service.batch_submit("alice", [NewTask(SPEC) for _ in range(MAX_PAGE_SIZE + 1)])

    default_page, _ = parts.service.list_tasks(TaskQuery("alice"), 0, "")
    capped_page, token = parts.service.list_tasks(TaskQuery("alice"), 10_000, "")
    assert len(default_page) == 50
    assert len(capped_page) == MAX_PAGE_SIZE and token


def test_a_page_token_only_continues_the_query_it_was_issued_for(parts: Parts) -> None:
    for _ in range(3):
        parts.submit(labels={"team": "a"})
    _, token = parts.service.list_tasks(TaskQuery("alice", labels={"team": "a"}), 1, "")

    with pytest.raises(InvalidArgument) as refused:
        parts.service.list_tasks(TaskQuery("alice", labels={"team": "b"}), 1, token)
    assert refused.value.reason == "PAGE_TOKEN_INVALID"
    assert "page_token" in refused.value.field_violations


def test_listing_applies_the_filters_and_sees_only_the_callers_tasks(parts: Parts) -> None:
    labelled = parts.submit(labels={"team": "a"})
    cancelled = parts.service.cancel("alice", parts.submit().id)
    batch, _ = parts.service.batch_submit("alice", [NewTask(SPEC), NewTask(SPEC)])
    parts.submit("bob", labels={"team": "a"})

    def ids(query: TaskQuery) -> set[str]:
        return {t.id for t in parts.service.list_tasks(query, 50, "")[0]}

    assert ids(TaskQuery("alice", labels={"team": "a"})) == {labelled.id}
    assert ids(TaskQuery("alice", states=frozenset({TaskState.CANCELLED}))) == {cancelled.id}
    assert ids(TaskQuery("alice", batch_id=batch.id)) == set(batch.task_ids)
    assert len(ids(TaskQuery("alice"))) == 4


def test_the_result_of_a_succeeded_task_streams_in_chunks(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    db = tmp_path / "imageeditor.db"
    shutil.copy(migrated_sqlite, db)
    parts = build_parts(db, Settings(result_chunk_bytes=50))
    done = parts.finish(parts.submit(), TaskState.SUCCEEDED)

    info, chunks = parts.service.result("alice", done.id)

    assert info == done.result
    pieces = list(chunks)
    assert [len(p) for p in pieces] == [50, 50, 30]
    assert b"".join(pieces) == parts.blobs.blobs[info.key]
    parts.store.close()


@pytest.mark.parametrize("state", [TaskState.QUEUED, TaskState.RUNNING, TaskState.FAILED])
def test_there_is_no_result_before_success(parts: Parts, state: TaskState) -> None:
    task = parts.submit()
    if state is not TaskState.QUEUED:
        parts.finish(task, state)

    with pytest.raises(FailedPrecondition) as refused:
        parts.service.result("alice", task.id)
    assert refused.value.reason == "RESULT_NOT_READY"


def test_another_users_result_is_not_found(parts: Parts) -> None:
    done = parts.finish(parts.submit("alice"), TaskState.SUCCEEDED)

    with pytest.raises(NotFound):
        parts.service.result("bob", done.id)


# -- cancelling ----------------------------------------------------------------------------------


def test_cancelling_a_queued_task_ends_it_at_once(parts: Parts) -> None:
    task = parts.submit()

    cancelled = parts.service.cancel("alice", task.id)

    assert parts.dispatcher.interrupted == [] and parts.later.scheduled == []
    assert cancelled.state is TaskState.CANCELLED and cancelled.version == task.version + 1
    assert parts.store.get_task(task.id) == cancelled
    assert parts.events.published[-1] == cancelled
    assert parts.cache.get(task.id) == cancelled


def test_cancelling_a_running_task_asks_it_to_stop_once(parts: Parts) -> None:
    running = parts.finish(parts.submit(), TaskState.RUNNING)

    asked = parts.service.cancel("alice", running.id)
    asked_again = parts.service.cancel("alice", running.id)

    assert asked.state is TaskState.RUNNING and asked.cancel_requested
    assert asked.version == running.version + 1
    assert asked_again == asked  # no second transition
    assert parts.store.get_task(running.id) == asked


def test_cancelling_a_running_task_interrupts_its_run(parts: Parts) -> None:
    running = parts.finish(parts.submit(), TaskState.RUNNING)

    parts.service.cancel("alice", running.id)

    assert parts.dispatcher.interrupted == [running.id]
    assert [delay for delay, _ in parts.later.scheduled] == [parts.settings.cancel_grace_seconds]


def test_a_run_stopped_without_a_word_is_cancelled_after_the_grace(parts: Parts) -> None:
    """A Celery pool process killed for the cancel cannot commit it: the server does."""
    running = parts.finish(parts.submit(), TaskState.RUNNING)
    asked = parts.service.cancel("alice", running.id)

    parts.later.run_all()

    settled = parts.store.get_task(running.id)
    assert settled is not None and settled.state is TaskState.CANCELLED
    assert settled.version == asked.version + 1
    assert parts.events.published[-1] == settled


def test_a_run_that_cancelled_itself_is_left_as_it_is(parts: Parts) -> None:
    running = parts.finish(parts.submit(), TaskState.RUNNING)
    parts.service.cancel("alice", running.id)
    by_the_run = parts.lifecycle.update(running.id, Task.cancel)

    parts.later.run_all()

    assert parts.store.get_task(running.id) == by_the_run


def test_cancelling_a_cancelled_task_changes_nothing(parts: Parts) -> None:
    cancelled = parts.service.cancel("alice", parts.submit().id)
    published = len(parts.events.published)

    assert parts.service.cancel("alice", cancelled.id) == cancelled
    assert len(parts.events.published) == published


@pytest.mark.parametrize("state", [TaskState.SUCCEEDED, TaskState.FAILED])
def test_a_finished_task_cannot_be_cancelled(parts: Parts, state: TaskState) -> None:
    finished = parts.finish(parts.submit(), state)

    with pytest.raises(FailedPrecondition) as refused:
        parts.service.cancel("alice", finished.id)
    assert refused.value.reason == "TASK_ALREADY_FINISHED"
    assert parts.store.get_task(finished.id) == finished


def test_another_users_task_cannot_be_cancelled(parts: Parts) -> None:
    task = parts.submit("alice")

    with pytest.raises(NotFound):
        parts.service.cancel("bob", task.id)
    assert parts.store.get_task(task.id) == task


# -- fairness ------------------------------------------------------------------------------------


@pytest.fixture
def capped(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Parts]:
    """At most two of a user's tasks dispatched at a time."""
    db = tmp_path / "imageeditor.db"
    shutil.copy(migrated_sqlite, db)
    built = build_parts(
        db, Settings(submit_rate=1000, submit_burst=1000, max_dispatched_per_user=2)
    )
    yield built
    built.store.close()


def test_only_so_many_of_a_users_tasks_are_dispatched_at_once(capped: Parts) -> None:
    tasks = [capped.submit() for _ in range(5)]

    assert capped.dispatcher.dispatched == tasks[:2]
    assert all(t.admitted for t in tasks[:2]) and not any(t.admitted for t in tasks[2:])
    assert all(capped.store.get_task(t.id).state is TaskState.QUEUED for t in tasks)  # type: ignore[union-attr]


def test_another_user_is_not_held_by_one_users_backlog(capped: Parts) -> None:
    for _ in range(5):
        capped.submit("alice")
    bobs = capped.submit("bob")

    assert capped.dispatcher.dispatched[-1] == bobs


def test_when_a_task_ends_the_users_oldest_waiting_one_goes(capped: Parts) -> None:
    tasks = [capped.submit() for _ in range(4)]
    capped.service.cancel("alice", tasks[0].id)  # an end: a place is free

    assert [t.id for t in capped.dispatcher.dispatched] == [tasks[0].id, tasks[1].id, tasks[2].id]
    newest = capped.submit()
    assert newest.id not in {t.id for t in capped.dispatcher.dispatched}  # behind tasks[3]


def test_a_batch_is_dispatched_only_as_far_as_the_cap_allows(capped: Parts) -> None:
    _, outcomes = capped.service.batch_submit("alice", [NewTask(SPEC) for _ in range(5)])

    assert [t.id for t in capped.dispatcher.dispatched] == [
        t.id for t in outcomes[:2] if isinstance(t, Task)
    ]


def test_waiting_tasks_are_not_stale_to_the_reconciler(capped: Parts) -> None:
    tasks = [capped.submit() for _ in range(3)]
    later = tasks[2].created_at + timedelta(hours=1)

    stale = capped.store.stale_tasks(TaskState.QUEUED, later, 10)
    assert [t.id for t in stale] == [t.id for t in tasks[:2]]
    assert capped.store.users_waiting(10) == ["alice"]


# -- callbacks -----------------------------------------------------------------------------------


def test_unfinished_tasks_and_tasks_without_callbacks_owe_none(parts: Parts) -> None:
    hooked = parts.submit(spec=replace(SPEC, callback_url="https://hooks.example.com/a"))
    plain = parts.finish(parts.submit(), TaskState.SUCCEEDED)

    assert parts.service.callbacks_of([hooked, plain]) == {}


def test_callbacks_cost_one_query_for_finished_tasks_and_none_for_unfinished_ones(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = replace(SPEC, callback_url="https://hooks.example.com/a")
    finished = [parts.finish(parts.submit(spec=hook), TaskState.FAILED) for _ in range(3)]
    queued = parts.submit(spec=hook)
    asked: list[list[str]] = []
    lookup = parts.deliveries.deliveries

    def counting(keys: list[str]) -> object:
        asked.append(list(keys))
        return lookup(keys)

    monkeypatch.setattr(parts.deliveries, "deliveries", counting)

    assert parts.service.callbacks_of([queued]) == {}
    assert asked == []
    assert len(parts.service.callbacks_of([*finished, queued])) == 3
    assert asked == [sorted(task_key(t.id) for t in finished)]


def test_a_finished_task_shows_the_delivery_of_its_callback(parts: Parts) -> None:
    hooked = parts.submit(spec=replace(SPEC, callback_url="https://hooks.example.com/a"))
    done = parts.finish(hooked, TaskState.FAILED)

    found = parts.service.callbacks_of([done])

    assert set(found) == {task_key(done.id)}
    delivery = found[task_key(done.id)]
    assert delivery.url == "https://hooks.example.com/a"
    assert delivery.event_type is EventType.TASK_FAILED
    assert delivery.state is DeliveryState.PENDING


def test_the_items_of_a_batch_show_its_callback_once_the_batch_is_complete(
    parts: Parts,
) -> None:
    batch, outcomes = parts.service.batch_submit(
        "alice", [NewTask(SPEC), NewTask(SPEC)], callback_url="https://hooks.example.com/b"
    )
    first, second = (t for t in outcomes if isinstance(t, Task))
    first_done = parts.finish(first, TaskState.SUCCEEDED)
    assert parts.service.callbacks_of([first_done]) == {}  # one item still running

    second_done = parts.finish(second, TaskState.SUCCEEDED)
    found = parts.service.callbacks_of([first_done, second_done])

    assert set(found) == {batch_key(batch.id)}
    assert found[batch_key(batch.id)].event_type is EventType.BATCH_COMPLETED


def test_without_a_delivery_store_no_callbacks_are_shown(parts: Parts) -> None:
    hooked = parts.submit(spec=replace(SPEC, callback_url="https://hooks.example.com/a"))
    done = parts.finish(hooked, TaskState.SUCCEEDED)
    service = TaskService(
        store=parts.store,
        blobs=parts.blobs,
        dispatcher=parts.dispatcher,
        lifecycle=parts.lifecycle,
        cache=parts.cache,
        limiter=InProcessRateLimiter(),
        settings=parts.settings,
    )

    assert service.callbacks_of([done]) == {}


# -- the lifecycle's compare-and-set with a known version ----------------------------------------


def test_a_known_current_version_is_changed_without_a_read(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = parts.submit()
    reads = counting_reads(parts, monkeypatch)

    started = parts.lifecycle.update(task.id, lambda t: t.start(), known=task)

    assert started.state is TaskState.RUNNING and started.version == task.version + 1
    assert reads == []
    assert parts.store.get_task(task.id) == started


def test_a_stale_known_version_is_decided_again_on_the_stored_one(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = parts.submit()
    cancelled = parts.service.cancel("alice", task.id)
    reads = counting_reads(parts, monkeypatch)
    decided_on: list[int] = []

    def change(current: Task) -> Task | None:
        decided_on.append(current.version)
        return current.start() if current.state is TaskState.QUEUED else None

    final = parts.lifecycle.update(task.id, change, known=task)

    assert final == cancelled and decided_on == [task.version, cancelled.version]
    assert reads == [task.id]  # the guess lost its compare-and-set: then one read


def test_a_known_version_left_alone_is_checked_against_the_store(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = parts.submit()
    started = parts.lifecycle.update(task.id, lambda t: t.start())
    reads = counting_reads(parts, monkeypatch)
    stale_running = replace(started, state=TaskState.SUCCEEDED)  # what a confused caller holds

    final = parts.lifecycle.update(
        task.id, lambda t: t.cancel() if t.state is TaskState.RUNNING else None, stale_running
    )

    assert final.state is TaskState.CANCELLED and reads == [task.id]


def counting_reads(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids read from the store from now on."""
    reads: list[str] = []
    read = parts.store.get_task

    def get_task(task_id: str, user_id: str | None = None) -> Task | None:
        reads.append(task_id)
        return read(task_id, user_id)

    monkeypatch.setattr(parts.store, "get_task", get_task)
    return reads
