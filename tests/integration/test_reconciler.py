"""The reconciler and its store query, on SQLite and PostgreSQL; the leader lock on PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from imageeditor.core.adapters.memory.event_bus import InProcessEventBus
from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.adapters.sql.leader_lock import LeaderLock
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.reconciler import Reconciler
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskState, utcnow

SETTINGS = Settings(queued_redispatch_seconds=30, running_lease_seconds=600)
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=utcnow().tzinfo)


@dataclass
class FakeDispatcher:
    accepting: bool = True
    sent: list[Task] = field(default_factory=list)

    def try_dispatch(self, task: Task) -> bool:
        if self.accepting:
            self.sent.append(task)
        return self.accepting


def make_task(
    store: SqlTaskStore, updated_at: datetime, running: bool = False, admitted: bool = True
) -> Task:
    task = Task(
        id=str(uuid.uuid4()),
        user_id="u",
        spec=TaskSpec(image_url="https://example.com/a.png"),
        created_at=updated_at,
        updated_at=updated_at,
        admitted=admitted,
    )
    store.create_task(task)
    if running:
        task = task.start(now=updated_at)
        assert store.save_transition(task)
    return task


def reconciler_for(store: SqlTaskStore, dispatcher: FakeDispatcher) -> Reconciler:
    lifecycle = Lifecycle(store, InProcessStatusCache(), InProcessEventBus())
    return Reconciler(store, lifecycle, dispatcher, SETTINGS)


def test_stale_tasks_are_those_in_the_state_unchanged_since_the_cutoff(store: SqlTaskStore) -> None:
    old = make_task(store, T0 - timedelta(minutes=5))
    older = make_task(store, T0 - timedelta(minutes=9))
    make_task(store, T0)  # fresh
    running = make_task(store, T0 - timedelta(minutes=7), running=True)

    cutoff = T0 - timedelta(minutes=1)
    assert [t.id for t in store.stale_tasks(TaskState.QUEUED, cutoff, 10)] == [older.id, old.id]
    assert [t.id for t in store.stale_tasks(TaskState.QUEUED, cutoff, 1)] == [older.id]
    assert [t.id for t in store.stale_tasks(TaskState.RUNNING, cutoff, 10)] == [running.id]


def test_tasks_left_queued_are_dispatched_again_with_growing_waits(store: SqlTaskStore) -> None:
    waiting = make_task(store, T0 - timedelta(seconds=31))
    fresh = make_task(store, T0 - timedelta(seconds=5))  # its message is still on its way
    dispatcher = FakeDispatcher()
    reconciler = reconciler_for(store, dispatcher)

    def sends_at(seconds: float) -> int:
        before = len(dispatcher.sent)
        reconciler.run_once(T0 + timedelta(seconds=seconds))
        return sum(t.id == waiting.id for t in dispatcher.sent[before:])

    assert sends_at(0) == 1
    assert fresh.id not in {t.id for t in dispatcher.sent}
    # Still queued (workers are busy, say): not again before 2 x 30 s, then not before 4 x 30 s.
    assert [sends_at(59), sends_at(61), sends_at(61 + 119), sends_at(61 + 121)] == [0, 1, 0, 1]


def test_a_publish_that_failed_is_tried_again_at_the_next_pass(store: SqlTaskStore) -> None:
    make_task(store, T0 - timedelta(minutes=1))
    dispatcher = FakeDispatcher(accepting=False)
    reconciler = reconciler_for(store, dispatcher)
    assert reconciler.run_once(T0).failed_to_publish == 1
    dispatcher.accepting = True
    assert reconciler.run_once(T0 + timedelta(seconds=1)).redispatched == 1


def test_a_task_running_past_its_lease_is_requeued_and_dispatched(store: SqlTaskStore) -> None:
    lost = make_task(store, T0 - timedelta(minutes=11), running=True)
    alive = make_task(store, T0 - timedelta(minutes=2), running=True)
    dispatcher = FakeDispatcher()

    report = reconciler_for(store, dispatcher).run_once(T0)

    assert report.requeued == 1
    [sent] = dispatcher.sent
    assert (sent.id, sent.state, sent.attempts) == (lost.id, TaskState.QUEUED, 1)
    assert store.get_task(lost.id) == sent
    still = store.get_task(alive.id)
    assert still is not None and still.state is TaskState.RUNNING


@pytest.mark.postgres
def test_one_leader_at_a_time_and_the_next_takes_over(migrated_postgres_url: str) -> None:
    first, second = LeaderLock(migrated_postgres_url), LeaderLock(migrated_postgres_url)
    try:
        assert first.held()
        assert not second.held()
        assert first.held()  # still held, on its own connection
        first.release()  # or its process died: PostgreSQL ends the session either way
        assert second.held()
    finally:
        first.release()
        second.release()


def test_without_postgresql_the_one_process_is_the_leader() -> None:
    assert LeaderLock("sqlite:///:memory:").held()


def test_a_pass_admits_what_a_lost_admission_left_waiting(store: SqlTaskStore) -> None:
    """A worker that died right after a task ended never admitted the user's next ones."""
    waiting = [make_task(store, T0 - timedelta(seconds=n), admitted=False) for n in range(3)]
    dispatcher = FakeDispatcher()
    settings = Settings(max_dispatched_per_user=2)
    lifecycle = Lifecycle(store, InProcessStatusCache(), InProcessEventBus())

    Reconciler(store, lifecycle, dispatcher, settings).run_once(T0)

    oldest_first = sorted(waiting, key=lambda t: t.created_at)
    assert [t.id for t in dispatcher.sent] == [t.id for t in oldest_first[:2]]
    assert store.users_waiting(10) == ["u"]
