"""The embedded worker: the Dispatcher of embedded mode, running tasks on in-process threads.

It runs the same TaskRunner a Celery worker runs; only the delivery differs (a queue in
memory instead of a broker). The store stays the truth: whatever is QUEUED or RUNNING when
the process starts was interrupted and is resumed, so a lost in-memory queue loses no task.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading

from editcore.lifecycle import Lifecycle
from editcore.task import Task, TaskState
from workers.runner import TaskRunner

log = logging.getLogger(__name__)

_STOP = ("", contextvars.Context())


class EmbeddedWorker:
    def __init__(self, runner: TaskRunner, lifecycle: Lifecycle, concurrency: int) -> None:
        self._runner = runner
        self._lifecycle = lifecycle
        self._concurrency = concurrency
        # With each task id, the context of its dispatch: the runner's spans then continue
        # the trace of the call that submitted the task.
        self._queue: queue.Queue[tuple[str, contextvars.Context]] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def dispatch(self, task: Task) -> None:
        self._queue.put((task.id, contextvars.copy_context()))

    def start(self) -> None:
        """Resume interrupted tasks, then start the worker threads."""
        self.resume()
        for n in range(self._concurrency):
            thread = threading.Thread(target=self._work, name=f"embedded-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def resume(self) -> int:
        """Re-dispatch every unfinished task; a RUNNING one lost its worker and is requeued."""
        unfinished = self._lifecycle.store.unfinished_tasks()
        for task in unfinished:
            if task.state is TaskState.RUNNING:
                task = self._lifecycle.update(
                    task.id, lambda t: t.requeue() if t.state is TaskState.RUNNING else None
                )
            if task.state is TaskState.QUEUED:
                self.dispatch(task)
        if unfinished:
            log.info("resumed %d unfinished task(s)", len(unfinished))
        return len(unfinished)

    def stop(self, timeout: float) -> None:
        """Let running tasks finish (up to `timeout`); queued ones stay QUEUED in the store."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        while True:  # what is still queued in memory is resumed from the store next start
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            task_id, context = item
            try:
                outcome = context.run(self._runner.run, task_id)
            except Exception:  # the store is unreachable, say: the task stays unfinished
                log.exception("task %s: run failed; it stays unfinished", task_id)
                continue
            if outcome.retry_after is not None and outcome.task is not None:
                self._redispatch_later(outcome.task, outcome.retry_after)

    def _redispatch_later(self, task: Task, delay: float) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self.dispatch(task)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()
