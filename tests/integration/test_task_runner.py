"""The task runner and the embedded worker on a real SQLite store, blob folder and pipeline."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.core.errors import Unavailable
from imageeditor.core.spec import ImageFormat, OutputOptions, Resize
from imageeditor.core.task import Stage, Task, TaskState
from imageeditor.workers.embedded import EmbeddedWorker, Slot
from imageeditor.workers.pipeline import EditStep, Work
from tests.integration.worker_parts import MAX_ATTEMPTS, Parts


class InProcessHost:
    """A RunHost for runs in this process: nothing to start, stop or close."""

    def start(self) -> None:
        pass

    def interrupt(self, *, cancel: bool) -> None:
        raise AssertionError("a run in this process cannot be interrupted")

    def close(self, timeout: float) -> None:
        pass


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = Parts(tmp_path)
    yield p
    p.store.close()


def test_a_task_runs_every_stage_and_its_result_is_stored(parts: Parts) -> None:
    task = parts.queue(
        operations=(Resize(100, 100),), output=OutputOptions(format=ImageFormat.JPEG)
    )
    outcome = parts.runner.run(task.id)
    assert outcome.task is not None and outcome.task.state is TaskState.SUCCEEDED
    events = parts.store.list_events(task.id, 0)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    stages = [e.stage for e in events if e.state is TaskState.RUNNING]
    assert stages == [
        Stage.NONE,
        Stage.FETCH,
        Stage.VALIDATE,
        Stage.EDIT,
        Stage.ENCODE,
        Stage.STORE,
    ]
    result = outcome.task.result
    assert result is not None
    image = Image.open(io.BytesIO(parts.blobs.get(result.key)))
    assert (image.format, image.size) == ("JPEG", (100, 75))
    assert result.size_bytes == len(parts.blobs.get(result.key))
    with pytest.raises(Exception, match="not found"):
        parts.blobs.get("inputs/x")  # the inline source is dropped once the task is done


def test_a_duplicate_delivery_does_not_run_the_task_again(parts: Parts) -> None:
    task = parts.queue()
    first = parts.runner.run(task.id).task
    second = parts.runner.run(task.id).task
    assert first is not None and second is not None
    assert second.version == first.version and second.attempts == 1


def test_a_cancel_request_stops_the_run_at_the_next_stage_boundary(
    parts: Parts, tmp_path: Path
) -> None:
    task = parts.queue()
    original_edit = parts.pipeline.edit

    def edit_then_get_cancelled(work: Work, step: EditStep) -> None:
        original_edit(work, step)
        parts.lifecycle.update(work.task_id, lambda t: t.request_cancel())

    parts.pipeline.edit = edit_then_get_cancelled  # type: ignore[method-assign]
    final = parts.runner.run(task.id).task
    assert final is not None and final.state is TaskState.CANCELLED
    assert final.stage is Stage.EDIT  # ENCODE never started
    assert not (tmp_path / "blobs" / "results").exists()


def test_a_poison_task_fails_after_its_attempts_are_used(parts: Parts) -> None:
    task = parts.queue()
    exhausted = replace(task, attempts=MAX_ATTEMPTS, version=task.version + 1)
    assert parts.store.save_transition(exhausted)
    final = parts.runner.run(task.id).task
    assert final is not None and final.state is TaskState.FAILED
    assert final.error is not None and final.error.reason == "TOO_MANY_ATTEMPTS"


def test_transient_errors_requeue_until_the_attempts_run_out(parts: Parts) -> None:
    task = parts.queue()

    def flaky_fetch(work: Work) -> None:
        raise Unavailable("origin is down", reason="FETCH_FAILED")

    parts.pipeline.fetch = flaky_fetch  # type: ignore[method-assign]
    retries = []
    for _ in range(MAX_ATTEMPTS):
        outcome = parts.runner.run(task.id)
        retries.append(outcome.retry_after)
    assert all(r is not None and r > 0 for r in retries[:-1])
    assert retries[-1] is None
    final = parts.store.get_task(task.id)
    assert final is not None and final.state is TaskState.FAILED
    assert (final.attempts, final.error and final.error.reason) == (MAX_ATTEMPTS, "FETCH_FAILED")


def test_the_embedded_worker_resumes_tasks_interrupted_while_running(parts: Parts) -> None:
    task = parts.queue()
    running = task.start()
    assert parts.store.save_transition(running)  # as if the process died mid-run
    worker = EmbeddedWorker([Slot(parts.runner, InProcessHost())], parts.lifecycle)
    assert worker.resume() == 1
    requeued = parts.store.get_task(task.id)
    assert requeued is not None and requeued.state is TaskState.QUEUED
    worker.start()
    try:
        for _ in range(200):
            current = parts.store.get_task(task.id)
            if current is not None and current.state.terminal:
                break
            time.sleep(0.05)
    finally:
        worker.stop(5)
    final = parts.store.get_task(task.id)
    assert final is not None and final.state is TaskState.SUCCEEDED and final.attempts == 2


def test_a_store_outage_at_the_start_keeps_the_dispatch(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = parts.queue()
    read = parts.store.get_task

    def store_down(*_args: object) -> Task | None:
        raise Unavailable("the task store is unreachable", reason="STORE_UNAVAILABLE")

    monkeypatch.setattr(parts.store, "get_task", store_down)
    # Raised, not taken for "task not found": the Celery task puts the message back.
    with pytest.raises(Unavailable):
        parts.runner.run(task.id)
    stored = read(task.id)
    assert stored is not None and stored.state is TaskState.QUEUED
