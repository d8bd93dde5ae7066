"""What a Celery delivery does with its message, on a real SQLite store and pipeline.

The Celery machinery itself (acks_late, redelivery of a killed process's message) is proven
end to end in tests/e2e/test_production_e2e.py; here are the decisions the worker makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery.exceptions import Reject
from sqlalchemy.exc import OperationalError

from imageeditor.core.adapters.celery.config import TASK_NAME, create_celery
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.errors import Unavailable
from imageeditor.core.settings import Settings
from imageeditor.core.snapshot import task_to_dict
from imageeditor.core.spec import Resize
from imageeditor.core.task import Task, TaskState
from imageeditor.workers import celery_tasks
from imageeditor.workers.celery_tasks import TaskHandler
from imageeditor.workers.pipeline import EditStep, Work
from tests.integration.worker_parts import MAX_ATTEMPTS, Parts


class CountingStore(SqlTaskStore):
    """Counts the reads of single tasks (what the message's snapshot should spare)."""

    reads = 0

    def get_task(self, task_id: str, user_id: str | None = None) -> Task | None:
        self.reads += 1
        return super().get_task(task_id, user_id)


@dataclass
class RecordingDispatcher:
    sent: list[tuple[Task, float]] = field(default_factory=list)

    def try_dispatch(self, task: Task, countdown: float = 0.0) -> bool:
        self.sent.append((task, countdown))
        return True


class Worker(Parts):
    """The parts of a worker, plus the Celery task's handler with a recording dispatcher."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, store_class=CountingStore, time_limit_errors=(TimeoutError,))
        self.dispatcher = RecordingDispatcher()
        self.handler = TaskHandler(self.runner, self.lifecycle, self.dispatcher)

    def queue(self, size: tuple[int, int] = (200, 150), **spec: object) -> Task:
        return super().queue(size, **{"operations": (Resize(50, 50),), **spec})

    def deliver(self, snapshot: Task, redelivered: bool = False) -> Task:
        self.handler.handle(task_to_dict(snapshot), redelivered)
        stored = self.store.get_task(snapshot.id)
        assert stored is not None
        return stored


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    w = Worker(tmp_path)
    yield w
    w.store.close()


def test_a_current_snapshot_runs_the_task_without_reading_it(worker: Worker) -> None:
    task = worker.queue()
    worker.store.reads = 0
    outcome = worker.runner.run(task.id, task)
    assert outcome.task is not None and outcome.task.state is TaskState.SUCCEEDED
    # Each transition is tried on the version the run committed last: a cancel meanwhile
    # would fail the compare-and-set and make it read (tests/integration/test_task_runner.py).
    assert worker.store.reads == 0
    versions = [e.version for e in worker.store.list_events(task.id, 0)]
    assert versions == list(range(1, len(worker.pipeline.stages(task.spec)) + 4))


def test_a_stale_snapshot_falls_back_to_the_store(worker: Worker) -> None:
    task = worker.queue()
    assert worker.deliver(task).state is TaskState.SUCCEEDED
    again = worker.deliver(task)  # a duplicate message: the CAS from its snapshot fails
    assert again.state is TaskState.SUCCEEDED and again.attempts == 1
    assert sum(e.state.terminal for e in worker.store.list_events(task.id, 0)) == 1


def test_a_redelivery_takes_over_the_run_its_dead_process_started(worker: Worker) -> None:
    task = worker.queue()
    assert worker.store.save_transition(task.start())  # attempt 1, then the process died
    final = worker.deliver(task, redelivered=True)
    assert final.state is TaskState.SUCCEEDED and final.attempts == 2
    states = [e.state for e in worker.store.list_events(task.id, 0)]
    assert states[:3] == [TaskState.QUEUED, TaskState.RUNNING, TaskState.QUEUED]


class ProcessDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing more is written."""


def test_an_image_that_kills_every_worker_fails_after_the_attempts(worker: Worker) -> None:
    task = worker.queue()

    def deadly_edit(work: Work, step: EditStep) -> None:
        raise ProcessDied

    worker.pipeline.edit = deadly_edit  # type: ignore[method-assign]
    for delivery in range(MAX_ATTEMPTS):  # the same message, delivered again after each death
        with pytest.raises(ProcessDied):
            worker.deliver(task, redelivered=delivery > 0)
    final = worker.deliver(task, redelivered=True)
    assert (final.state, final.attempts) == (TaskState.FAILED, MAX_ATTEMPTS)
    assert final.error is not None and final.error.reason == "TOO_MANY_ATTEMPTS"


def test_a_transient_error_is_published_again_with_a_countdown(worker: Worker) -> None:
    task = worker.queue()

    def flaky_fetch(work: Work) -> None:
        raise Unavailable("origin is down", reason="FETCH_FAILED", retry_after=2.0)

    worker.pipeline.fetch = flaky_fetch  # type: ignore[method-assign]
    queued = worker.deliver(task)
    assert queued.state is TaskState.QUEUED and queued.attempts == 1
    [(sent, countdown)] = worker.dispatcher.sent
    assert sent.version == queued.version  # the message carries the requeued task
    assert 2.0 <= countdown <= 3.0  # the hint, plus up to 50% jitter


def test_a_run_that_overstays_its_time_limit_fails_cleanly(worker: Worker) -> None:
    task = worker.queue()

    def endless_edit(work: Work, step: EditStep) -> None:
        raise TimeoutError  # what Celery's soft time limit raises into the run

    worker.pipeline.edit = endless_edit  # type: ignore[method-assign]
    final = worker.deliver(task)
    assert final.state is TaskState.FAILED
    assert final.error is not None
    assert (final.error.code, final.error.reason) == ("DEADLINE_EXCEEDED", "TIME_LIMIT")


def test_a_store_outage_sends_the_message_back_to_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class StoreDown:
        def handle(self, data: dict[str, object], redelivered: bool) -> None:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))

    monkeypatch.setattr(celery_tasks, "STORE_OUTAGE_PAUSE_SECONDS", 0.0)
    app = create_celery(Settings(redis_url="redis://127.0.0.1:1/0"))
    celery_tasks.register_run_task(app, lambda: StoreDown())  # type: ignore[arg-type, return-value]
    with pytest.raises(Reject) as rejected:
        app.tasks[TASK_NAME](task={"id": "t"})
    assert rejected.value.requeue is True
