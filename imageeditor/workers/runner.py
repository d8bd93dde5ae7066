"""Runs one task through the pipeline, committing a transition at every stage boundary.

The same code runs in the embedded worker threads and in Celery worker processes.
It is safe against duplicate deliveries: the task starts only through a compare-and-set from
QUEUED, and every later change checks that the task is still in this run (same attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from imageeditor.core.errors import ImageEditorError, RetryableError, Unavailable
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.logs import task_context
from imageeditor.core.metrics import STAGE_DURATION, TASKS_STARTED, timed
from imageeditor.core.ports import BlobStore
from imageeditor.core.queues import queue_for
from imageeditor.core.reuse import copy_result_of
from imageeditor.core.settings import Settings
from imageeditor.core.task import Task, TaskError, TaskState
from imageeditor.core.telemetry import stage_span
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.pipeline import Pipeline, PipelineRuns, RunInterrupted
from imageeditor.workers.styles import create_style_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What became of a run; `retry_after` is set when the task went back to the queue."""

    task: Task | None
    retry_after: float | None = None


class TaskRunner:
    def __init__(
        self,
        lifecycle: Lifecycle,
        blobs: BlobStore,
        pipeline: PipelineRuns,
        max_attempts: int,
        *,
        time_limit_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._lifecycle = lifecycle
        self._blobs = blobs
        self._pipeline = pipeline
        self._max_attempts = max_attempts
        # Raised into the run when it overstays its time (Celery's soft time limit).
        self._time_limit_errors = time_limit_errors

    def run(self, task_id: str, snapshot: Task | None = None) -> RunOutcome:
        """Run the task once. `snapshot` is the task as its dispatch message carried it: when
        it is still current, the task starts without a read from the store."""
        with task_context(task_id):
            outcome = self._run(task_id, snapshot)
            task = outcome.task
            if task is not None and task.state.terminal:
                log.info("task %s %s (attempt %d)", task_id, task.state.value, task.attempts)
            return outcome

    def _run(self, task_id: str, snapshot: Task | None) -> RunOutcome:
        task = self._start(task_id, snapshot)
        if task is None or task.state is not TaskState.RUNNING:
            return RunOutcome(task)
        TASKS_STARTED.labels(queue_for(task.spec)).inc()
        attempt = task.attempts
        try:
            run = self._pipeline.open(task)
            for done, stage in enumerate(run.stages):
                progress = done / len(run.stages)  # the share of this run's stages done
                enter = partial(Task.enter_stage, stage=stage, progress=progress)
                task = self._change(task, attempt, enter)
                if task.state is not TaskState.RUNNING:
                    return self._finished(task)
                with stage_span(stage, task.id, attempt), timed(STAGE_DURATION.labels(stage)):
                    run.run_stage(stage)
            result = run.result()
            task = self._change(task, attempt, partial(Task.succeed, result=result))
            if task.state is not TaskState.SUCCEEDED:  # cancelled after the result was stored
                self._blobs.delete(result.key)
        except RunInterrupted as interrupted:
            if not interrupted.cancel:  # a shutdown: resumed, RUNNING, at the next start
                return RunOutcome(task)
            # The task has a cancel pending: the next change of this run commits it.
            task = self._change(task, attempt, Task.cancel)
        except RetryableError as exc:
            if attempt < self._max_attempts:
                task = self._change(task, attempt, Task.requeue)
                return RunOutcome(task, retry_after=_backoff(attempt, exc.retry_after))
            task = self._change(task, attempt, partial(Task.fail, error=_task_error(exc)))
        except ImageEditorError as exc:
            task = self._change(task, attempt, partial(Task.fail, error=_task_error(exc)))
        except self._time_limit_errors:
            error = TaskError("DEADLINE_EXCEEDED", "TIME_LIMIT", "the task ran out of time")
            task = self._change(task, attempt, partial(Task.fail, error=error))
        except Exception:
            log.exception("task %s: unexpected error", task_id)
            error = TaskError("INTERNAL", "INTERNAL", "the worker failed unexpectedly")
            task = self._change(task, attempt, partial(Task.fail, error=error))
        return self._finished(task)

    def _start(self, task_id: str, snapshot: Task | None) -> Task | None:
        """QUEUED → RUNNING, or FAILED when the attempts are used up (a poison task)."""
        if (
            snapshot is not None
            and snapshot.state is TaskState.QUEUED
            and snapshot.attempts < self._max_attempts
            and not snapshot.reused_from
        ):
            started = snapshot.start()
            if self._lifecycle.commit(started):
                return started
            # The snapshot is out of date (a duplicate delivery, a cancel): ask the store.
        too_many = TaskError(
            "ABORTED",
            "TOO_MANY_ATTEMPTS",
            f"the task was started {self._max_attempts} times without finishing",
        )

        copied: list[str] = []  # result blobs copied for a reuse that may not commit

        def decide(task: Task) -> Task | None:
            if task.state is not TaskState.QUEUED:
                return None  # a duplicate delivery, or cancelled while queued
            if task.reused_from:  # it waits for an identical task (imageeditor.core.reuse)
                source = self._lifecycle.store.get_task(task.reused_from)
                if source is not None and not source.state.terminal:
                    return None  # still unfinished: its end dispatches this task again
                result = copy_result_of(self._blobs, source, task.id) if source else None
                if source is not None and result is not None:
                    copied.append(result.key)
                    return task.reuse(result, source.id)
            if task.attempts >= self._max_attempts:
                return task.fail(too_many)
            return task.start()  # no result to take: it runs itself

        try:
            task = self._lifecycle.update(task_id, decide)
        except Unavailable:
            raise  # the store is down, not the task gone: the dispatch must survive
        except ImageEditorError:
            log.warning("task %s: not found; dropping its dispatch", task_id)
            return None
        if copied and not (task.state is TaskState.SUCCEEDED and task.reused_from):
            for key in set(copied):  # the reuse lost its commit (a cancel came first)
                self._blobs.delete(key)
        return self._finished(task).task if task.state.terminal else task

    def _change(self, task: Task, attempt: int, change: Callable[[Task], Task]) -> Task:
        """Commit `change` if the task is still in this run; honour a pending cancel first.
        `task` is the version this run committed last: tried first, without a read."""

        def decide(current: Task) -> Task | None:
            if current.state is not TaskState.RUNNING or current.attempts != attempt:
                return None  # this run is over (cancelled, or taken over by another worker)
            if current.cancel_requested:
                return current.cancel()
            return change(current)

        return self._lifecycle.update(task.id, decide, known=task)

    def _finished(self, task: Task) -> RunOutcome:
        """Drop the inline source once the task can never run again."""
        if task.state.terminal and task.spec.input_key:
            self._blobs.delete(task.spec.input_key)
        return RunOutcome(task)


def _task_error(exc: ImageEditorError) -> TaskError:
    return TaskError(exc.code, exc.reason, exc.message)


def _backoff(attempt: int, hinted: float) -> float:
    return max(hinted, min(2.0**attempt, 60.0))


def build_runner(
    settings: Settings,
    lifecycle: Lifecycle,
    blobs: BlobStore,
    remover: BackgroundRemover,
    *,
    time_limit_errors: tuple[type[Exception], ...] = (),
) -> TaskRunner:
    """The pipeline (with the style backend the settings name) and a runner over it, as the
    embedded worker and a Celery worker process both run tasks. A misconfigured style backend
    raises here, at start."""
    pipeline = Pipeline(blobs, settings, styles=create_style_generator(settings), remover=remover)
    return TaskRunner(
        lifecycle, blobs, pipeline, settings.max_attempts, time_limit_errors=time_limit_errors
    )
