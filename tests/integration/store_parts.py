"""What the store contract tests build tasks and batches from, and how they race calls."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.ports import Batch
from imageeditor.core.spec import Grayscale, ImageFormat, OutputOptions, Resize, ResizeFit, TaskSpec
from imageeditor.core.task import ResultInfo, Task

T = TypeVar("T")

BASE_TIME = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

SPEC = TaskSpec(
    image_url="https://images.example.com/cat.png",
    operations=(Resize(width=640, fit=ResizeFit.COVER, allow_upscale=True), Grayscale()),
    style_prompt="watercolor",
    output=OutputOptions(format=ImageFormat.WEBP, quality=80),
    callback_url="https://hooks.example.com/done",
)

RESULT = ResultInfo(
    width=640,
    height=480,
    format=ImageFormat.WEBP,
    size_bytes=12345,
    sha256="ab" * 32,
    uri="file:///var/results/x.webp",
    key="results/x.webp",
)


def make_task(
    user_id: str = "alice",
    *,
    created_at: datetime = BASE_TIME,
    request_id: str = "",
    labels: dict[str, str] | None = None,
    batch_id: str = "",
) -> Task:
    return Task(
        id=str(uuid.uuid4()),
        user_id=user_id,
        spec=SPEC,
        created_at=created_at,
        updated_at=created_at,
        request_id=request_id,
        labels=labels or {},
        batch_id=batch_id,
    )


def make_batch(
    user_id: str = "alice", request_id: str = "", size: int = 2, **task_fields: Any
) -> tuple[Batch, list[Task]]:
    batch_id = str(uuid.uuid4())
    tasks = [make_task(user_id, batch_id=batch_id, **task_fields) for _ in range(size)]
    batch = Batch(
        id=batch_id,
        user_id=user_id,
        request_id=request_id,
        callback_url="https://hooks.example.com/batch",
        task_ids=tuple(task.id for task in tasks),
        created_at=BASE_TIME,
    )
    return batch, tasks


def created(store: SqlTaskStore, task: Task) -> Task:
    stored, was_created = store.create_task(task)
    assert was_created
    return stored


def advanced(store: SqlTaskStore, task: Task, step: Callable[[Task], Task]) -> Task:
    following = step(task)
    assert store.save_transition(following)
    return following


def run_concurrently(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls on threads released together, so they really race."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            outcome = call()
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results
