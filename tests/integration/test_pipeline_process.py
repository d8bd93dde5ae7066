"""The embedded worker's pipeline processes: a run in a real child process, stopped by a
cancel or a time limit inside a long operation, and a crash that takes only the child."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.core.settings import Settings
from imageeditor.core.spec import Blur, ImageFormat, OutputOptions, Resize, TaskSpec
from imageeditor.core.task import Stage, Task, TaskState
from imageeditor.workers.pipeline_process import ProcessSlot, forkserver_context
from imageeditor.workers.runner import RunOutcome, TaskRunner
from tests.e2e.harness import jpeg_bytes
from tests.integration.worker_parts import MAX_ATTEMPTS, Parts, new_task_id

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def large_png() -> bytes:
    """7000 x 7000 RGB of one colour: 49 MP, a blur(250) of it takes seconds."""
    out = io.BytesIO()
    Image.new("RGB", (7000, 7000), (90, 120, 200)).save(out, "PNG", compress_level=1)
    return out.getvalue()


class Slotted:
    """Parts with a runner whose pipeline runs in a child process."""

    def __init__(self, tmp_path: Path, **limits: float) -> None:
        self.parts = Parts(tmp_path)
        settings = Settings(data_dir=tmp_path, **limits)  # type: ignore[arg-type]
        self.slot = ProcessSlot(settings, forkserver_context(), name="test-pipeline")
        self.runner = TaskRunner(self.parts.lifecycle, self.parts.blobs, self.slot, MAX_ATTEMPTS)

    def queue(self, source: bytes, **spec: object) -> Task:
        key = f"inputs/{new_task_id()}"
        self.parts.blobs.put(key, source)
        task_spec = TaskSpec(input_key=key, **spec)  # type: ignore[arg-type]
        task, _ = self.parts.store.create_task(Task(id=new_task_id(), user_id="u", spec=task_spec))
        return task

    def run_in_background(self, task_id: str) -> tuple[threading.Thread, list[RunOutcome]]:
        outcomes: list[RunOutcome] = []
        thread = threading.Thread(target=lambda: outcomes.append(self.runner.run(task_id)))
        thread.start()
        return thread, outcomes

    def wait_for_stage(self, task_id: str, stage: Stage) -> None:
        for _ in range(600):
            task = self.parts.store.get_task(task_id)
            if task is not None and task.stage is stage:
                return
            time.sleep(0.05)
        raise AssertionError(f"the task never reached {stage}")

    def runs_a_small_task(self) -> bool:
        """Whether a small resize, run now, succeeds."""
        small = self.queue(jpeg_bytes(64, 48), operations=(Resize(32, 32),))
        outcome = self.runner.run(small.id)
        return outcome.task is not None and outcome.task.state is TaskState.SUCCEEDED

    def child_pid(self) -> int:
        pid = self.slot.pid
        assert pid is not None
        return pid

    def close(self) -> None:
        self.slot.close()
        self.parts.store.close()


@pytest.fixture
def slotted(tmp_path: Path) -> Iterator[Slotted]:
    made = Slotted(tmp_path)
    yield made
    made.close()


def test_a_task_runs_in_the_child_as_it_would_in_this_process(
    slotted: Slotted, tmp_path: Path
) -> None:
    spec = {"operations": (Resize(100, 100),), "output": OutputOptions(format=ImageFormat.PNG)}
    source = slotted.parts.blobs.get(slotted.parts.queue().spec.input_key)
    in_child = slotted.runner.run(slotted.queue(source, **spec).id).task
    here = slotted.parts.runner.run(slotted.queue(source, **spec).id).task

    assert in_child is not None and in_child.state is TaskState.SUCCEEDED
    assert here is not None and in_child.result is not None and here.result is not None
    assert in_child.result.sha256 == here.result.sha256
    assert slotted.parts.blobs.get(in_child.result.key)  # stored by the child, read here
    running = [
        e.stage
        for e in slotted.parts.store.list_events(in_child.id, 0)
        if e.state is TaskState.RUNNING
    ]
    assert running == [
        Stage.NONE,
        Stage.FETCH,
        Stage.VALIDATE,
        Stage.EDIT,
        Stage.ENCODE,
        Stage.STORE,
    ]


def test_a_cancel_stops_a_long_operation_at_once(slotted: Slotted, large_png: bytes) -> None:
    """20 x blur(250) of 49 MP used to run on for over a minute after CancelTask."""
    task = slotted.queue(large_png, operations=(Blur(250.0),) * 20)
    thread, outcomes = slotted.run_in_background(task.id)
    slotted.wait_for_stage(task.id, Stage.EDIT)
    time.sleep(0.5)  # well inside the first blur

    slotted.parts.lifecycle.update(task.id, lambda t: t.request_cancel())
    asked = time.monotonic()
    slotted.slot.interrupt(cancel=True)
    thread.join(30)

    stopped_after = time.monotonic() - asked
    (outcome,) = outcomes
    assert outcome.task is not None and outcome.task.state is TaskState.CANCELLED
    assert outcome.task.stage is Stage.EDIT
    assert stopped_after < 1.0, stopped_after  # the rest of the 20 blurs took a minute


def test_the_soft_time_limit_raises_into_the_stage(tmp_path: Path, large_png: bytes) -> None:
    slotted = Slotted(tmp_path, task_soft_time_limit_seconds=1.0, task_hard_time_limit_seconds=60)
    try:
        task = slotted.queue(large_png, operations=(Blur(250.0),) * 20)
        started = time.monotonic()
        outcome = slotted.runner.run(task.id)
        child = slotted.child_pid()
        assert time.monotonic() - started < 10  # one blur after the signal, not twenty
        assert outcome.task is not None and outcome.task.state is TaskState.FAILED
        assert outcome.task.error is not None
        assert (outcome.task.error.code, outcome.task.error.reason) == (
            "DEADLINE_EXCEEDED",
            "TIME_LIMIT",
        )
        # The child lived through it and runs the next task.
        assert slotted.runs_a_small_task()
        assert slotted.child_pid() == child
    finally:
        slotted.close()


def test_the_hard_time_limit_kills_the_child(tmp_path: Path, large_png: bytes) -> None:
    slotted = Slotted(tmp_path, task_soft_time_limit_seconds=60, task_hard_time_limit_seconds=1.0)
    try:
        task = slotted.queue(large_png, operations=(Blur(250.0),) * 20)
        slotted.slot.start()
        child = slotted.child_pid()
        started = time.monotonic()
        outcome = slotted.runner.run(task.id)
        assert time.monotonic() - started < 5
        assert outcome.task is not None and outcome.task.state is TaskState.FAILED
        assert outcome.task.error is not None and outcome.task.error.reason == "TIME_LIMIT"
        assert slotted.runs_a_small_task()
        assert slotted.child_pid() != child  # replaced
    finally:
        slotted.close()


def test_a_crashed_child_sends_the_task_back_to_the_queue(
    slotted: Slotted, large_png: bytes
) -> None:
    task = slotted.queue(large_png, operations=(Blur(250.0),) * 20)
    thread, outcomes = slotted.run_in_background(task.id)
    slotted.wait_for_stage(task.id, Stage.EDIT)
    crashed = slotted.child_pid()
    os.kill(crashed, signal.SIGSEGV)  # as a native crash would
    thread.join(30)

    (outcome,) = outcomes
    assert outcome.retry_after is not None  # dispatched again after a pause
    assert outcome.task is not None and outcome.task.state is TaskState.QUEUED
    assert outcome.task.attempts == 1
    # The server lived; the next task gets a new child.
    assert slotted.runs_a_small_task()
    assert slotted.child_pid() != crashed


def test_a_shutdown_leaves_the_task_running_for_the_next_start(
    slotted: Slotted, large_png: bytes
) -> None:
    task = slotted.queue(large_png, operations=(Blur(250.0),) * 20)
    thread, outcomes = slotted.run_in_background(task.id)
    slotted.wait_for_stage(task.id, Stage.EDIT)

    slotted.slot.interrupt(cancel=False)
    thread.join(30)

    (outcome,) = outcomes
    stored = slotted.parts.store.get_task(task.id)
    assert stored is not None and stored.state is TaskState.RUNNING and stored.stage is Stage.EDIT
    assert outcome.retry_after is None
