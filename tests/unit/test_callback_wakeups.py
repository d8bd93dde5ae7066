"""Who wakes the callback sender: the lifecycle on a terminal transition, and the sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from imageeditor.core.callback_sweep import CallbackSweep
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.ports import Batch
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Stage, Task, TaskError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = Batch("b-1", "alice", "", "https://hooks.example.com/batch", ("t-1", "t-2"), NOW)


@dataclass
class Store:
    """Accepts every transition; knows one batch."""

    def save_transition(self, task: Task) -> bool:
        return True

    def get_batch(self, batch_id: str, user_id: str | None = None) -> Batch | None:
        return BATCH if batch_id == BATCH.id else None


class Quiet:
    def put(self, task: Task) -> None: ...
    def publish(self, task: Task) -> None: ...


@dataclass
class Notified:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def notify(self, user_id: str, url: str) -> None:
        self.calls.append((user_id, url))


def lifecycle() -> tuple[Lifecycle, Notified]:
    notified = Notified()
    return Lifecycle(Store(), Quiet(), Quiet(), notified), notified  # type: ignore[arg-type]


def running(callback_url: str = "", batch_id: str = "") -> Task:
    spec = TaskSpec(callback_url=callback_url)
    return Task(id="t-1", user_id="alice", spec=spec, batch_id=batch_id).start(NOW)


def test_a_terminal_transition_wakes_the_sender_for_its_url_and_its_batch_url() -> None:
    life, notified = lifecycle()
    task = running("https://hooks.example.com/task", batch_id=BATCH.id)
    life.commit(task.enter_stage(Stage.FETCH, NOW))  # not terminal: nothing owed yet
    assert notified.calls == []
    life.commit(task.fail(TaskError("INTERNAL", "X", "boom"), NOW))
    assert notified.calls == [
        ("alice", "https://hooks.example.com/task"),
        ("alice", BATCH.callback_url),
    ]


def test_a_task_without_callbacks_wakes_nobody() -> None:
    life, notified = lifecycle()
    life.commit(running().cancel(NOW))
    assert notified.calls == []


@dataclass
class Outbox:
    asked: list[datetime] = field(default_factory=list)

    def due_targets(self, due_by: datetime, limit: int) -> list[tuple[str, str]]:
        self.asked.append(due_by)
        return [("alice", "https://a.example.com/"), ("bob", "https://b.example.com/")]


@dataclass
class Nudger:
    sent: list[tuple[str, str, float]] = field(default_factory=list)

    def notify_in(self, user_id: str, url: str, countdown: float) -> bool:
        self.sent.append((user_id, url, countdown))
        return url.startswith("https://a")  # the broker took only the first


def test_the_sweep_nudges_every_url_overdue_by_more_than_the_grace() -> None:
    outbox, nudger = Outbox(), Nudger()
    sweep = CallbackSweep(outbox, nudger, timedelta(seconds=10))  # type: ignore[arg-type]
    assert sweep.run_once(NOW) == 1
    assert outbox.asked == [NOW - timedelta(seconds=10)]
    assert [(u, c) for u, _, c in nudger.sent] == [("alice", 0.0), ("bob", 0.0)]
