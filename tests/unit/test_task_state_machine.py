from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from imageeditor.core.errors import FailedPrecondition
from imageeditor.core.spec import ImageFormat, TaskSpec
from imageeditor.core.task import ResultInfo, Stage, Task, TaskError, TaskState, utcnow

RESULT = ResultInfo(10, 10, ImageFormat.PNG, 100, "ab" * 32, "file:///r.png", "results/r.png")


def new_task() -> Task:
    return Task(id="t1", user_id="u", spec=TaskSpec(image_url="https://example.com/a.png"))


def test_a_task_runs_through_its_stages_to_success() -> None:
    start = utcnow()
    task = new_task().start(start)
    assert (task.state, task.attempts, task.version) == (TaskState.RUNNING, 1, 2)
    task = task.enter_stage(Stage.EDIT)
    assert task.stage is Stage.EDIT and 0 < task.progress < 1
    done = task.succeed(RESULT, start + timedelta(milliseconds=1500))
    assert done.state is TaskState.SUCCEEDED and done.state.terminal
    assert done.progress == 1.0
    assert done.processing_ms == 1500
    assert done.version == 4


@pytest.mark.parametrize("state", [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED])
def test_terminal_states_have_no_way_out(state: TaskState) -> None:
    task = new_task().start()
    task = {
        TaskState.SUCCEEDED: lambda: task.succeed(RESULT),
        TaskState.FAILED: lambda: task.fail(TaskError("INTERNAL", "X", "boom")),
        TaskState.CANCELLED: task.cancel,
    }[state]()
    for move in (task.start, task.cancel, task.requeue, lambda: task.succeed(RESULT)):
        with pytest.raises(FailedPrecondition):
            move()


def test_a_queued_task_cannot_skip_running() -> None:
    with pytest.raises(FailedPrecondition):
        new_task().succeed(RESULT)
    with pytest.raises(FailedPrecondition):
        new_task().enter_stage(Stage.FETCH)


def test_a_queued_task_may_take_an_identical_tasks_result_without_a_run() -> None:
    task = new_task().reuse(RESULT, "source-id")
    assert (task.state, task.result, task.reused_from) == (TaskState.SUCCEEDED, RESULT, "source-id")
    assert task.attempts == 0 and task.processing_ms is None and task.stage_timings == ()
    with pytest.raises(FailedPrecondition):
        new_task().start().reuse(RESULT, "source-id")  # a run makes its own result
    waiting = replace(new_task(), reused_from="source-id")
    assert waiting.start().reused_from == ""  # once it runs itself it waits for no one


def test_cancel_of_a_queued_task_is_immediate_and_records_why() -> None:
    task = new_task().cancel()
    assert task.state is TaskState.CANCELLED
    assert task.error is not None and task.error.code == "CANCELLED"
    assert task.processing_ms is None  # it never ran


def test_a_cancel_request_marks_a_running_task_and_bumps_its_version() -> None:
    task = new_task().start()
    marked = task.request_cancel()
    assert marked.cancel_requested and marked.state is TaskState.RUNNING
    assert marked.version == task.version + 1


def test_requeue_returns_a_running_task_to_the_queue_keeping_its_attempts() -> None:
    task = new_task().start().enter_stage(Stage.FETCH).requeue()
    assert (task.state, task.stage, task.attempts) == (TaskState.QUEUED, Stage.NONE, 1)
    assert task.start().attempts == 2


def test_a_run_keeps_when_it_entered_each_stage_and_how_long_it_stayed() -> None:
    t0 = utcnow()
    task = new_task().start(t0)
    assert task.stage_timings == ()
    task = task.enter_stage(Stage.FETCH, t0 + timedelta(milliseconds=5))
    task = task.enter_stage(Stage.EDIT, t0 + timedelta(milliseconds=25))
    running = task.request_cancel(t0 + timedelta(milliseconds=30))  # no stage change
    assert [(t.stage, t.duration_ms) for t in running.stage_timings] == [
        (Stage.FETCH, 20),
        (Stage.EDIT, None),  # still in it
    ]
    done = task.succeed(RESULT, t0 + timedelta(milliseconds=125))
    assert [(t.stage, t.started_at, t.duration_ms) for t in done.stage_timings] == [
        (Stage.FETCH, t0 + timedelta(milliseconds=5), 20),
        (Stage.EDIT, t0 + timedelta(milliseconds=25), 100),
    ]
    # A run that goes back to the queue ends its stage; the next run starts a new list.
    requeued = task.requeue(t0 + timedelta(milliseconds=45))
    assert requeued.stage_timings[-1].duration_ms == 20
    assert requeued.start(t0 + timedelta(seconds=1)).stage_timings == ()
