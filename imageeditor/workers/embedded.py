"""The embedded worker: the Dispatcher of embedded mode, running tasks from in-process threads.

It runs the same TaskRunner a Celery worker runs; only the delivery differs (a queue in
memory instead of a broker), and where the pipeline runs: each thread drives its own child
process (workers.pipeline_process), so a task can be cancelled or stopped at its time limit
inside a long operation, and a crash takes down one child, not the server.

The queue is fair between users: it takes tasks round-robin by user, so one user's backlog
of hundreds waits its turns while another user's one task runs at the next free thread.

The store stays the truth: whatever is QUEUED or RUNNING when the process starts was
interrupted and is resumed, so a lost in-memory queue loses no task.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import OrderedDict, deque
from typing import Protocol

from imageeditor.core.admission import Admission
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.task import Task, TaskState
from imageeditor.workers.runner import TaskRunner

log = logging.getLogger(__name__)

Item = tuple[str, contextvars.Context]  # a task id, and the context of its dispatch


class FairQueue:
    """Task ids by user, taken round-robin across users (FIFO within a user's own)."""

    def __init__(self) -> None:
        self._by_user: OrderedDict[str, deque[Item]] = OrderedDict()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, user_id: str, item: Item) -> None:
        with self._ready:
            self._by_user.setdefault(user_id, deque()).append(item)
            self._ready.notify()

    def get(self) -> Item | None:
        """The next user's oldest item, waiting for one; None once closed."""
        with self._ready:
            while not self._by_user and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            user_id, items = next(iter(self._by_user.items()))
            item = items.popleft()
            del self._by_user[user_id]
            if items:  # the user's turn comes again after everyone else's
                self._by_user[user_id] = items
            return item

    def close(self) -> int:
        """Wake every waiting `get` with None; returns how many items were dropped."""
        with self._ready:
            dropped = sum(len(items) for items in self._by_user.values())
            self._by_user.clear()
            self._closed = True
            self._ready.notify_all()
            return dropped


class RunHost(Protocol):
    """Where a slot's runs happen (workers.pipeline_process.ProcessSlot)."""

    def start(self) -> None:
        """Be ready for the first run (start the child process)."""

    def interrupt(self, *, cancel: bool) -> None:
        """Stop the current run now: for a cancel, or (cancel=False) for a shutdown."""

    def close(self, timeout: float) -> None: ...


class Slot:
    """What one worker thread runs tasks with: its runner, and where the runs happen."""

    def __init__(self, runner: TaskRunner, host: RunHost) -> None:
        self.runner = runner
        self.host = host
        self.task_id = ""


class EmbeddedWorker:
    def __init__(self, slots: list[Slot], lifecycle: Lifecycle, max_per_user: int = 0) -> None:
        """`max_per_user`: the admission cap (imageeditor.core.admission): when one of a user's
        tasks ends, this worker admits (dispatches) their next."""
        self._slots = slots
        self._lifecycle = lifecycle
        self._admission = Admission(lifecycle.store, self, max_per_user)
        self._queue = FairQueue()
        self._threads: list[threading.Thread] = []
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def dispatch(self, task: Task) -> None:
        # With the task, the context of its dispatch: the runner's spans then continue the
        # trace of the call that submitted it.
        self._queue.put(task.user_id, (task.id, contextvars.copy_context()))

    def interrupt(self, task_id: str) -> None:
        """The Dispatcher port: stop the run of `task_id` now, if one of ours runs it (its
        cancel is pending; the runner commits CANCELLED)."""
        with self._lock:
            slots = [slot for slot in self._slots if slot.task_id == task_id]
        for slot in slots:
            slot.host.interrupt(cancel=True)

    def start(self) -> None:
        """Resume interrupted tasks, then start a thread per slot."""
        self.resume()
        for n, slot in enumerate(self._slots):
            thread = threading.Thread(
                target=self._work, args=(slot,), name=f"embedded-worker-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def resume(self) -> int:
        """Re-dispatch every unfinished task that was admitted (a RUNNING one lost its run: it
        is requeued, or cancelled if that was pending), then admit what fits of the rest."""
        unfinished = self._lifecycle.store.unfinished_tasks()
        for task in unfinished:
            if task.state is TaskState.RUNNING:
                task = self._lifecycle.update(
                    task.id, lambda t: t.recover() if t.state is TaskState.RUNNING else None
                )
            if task.state is TaskState.QUEUED and task.admitted:
                self.dispatch(task)
        self._admission.admit_everyone()
        if unfinished:
            log.info("resumed %d unfinished task(s)", len(unfinished))
        return len(unfinished)

    def stop(self, timeout: float) -> None:
        """Let running tasks finish (up to `timeout`), then stop the rest where they are:
        queued and running tasks stay in the store and are resumed at the next start."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        self._queue.close()
        for thread in self._threads:
            thread.join(timeout)
        for slot in self._slots:
            if slot.task_id:
                slot.host.interrupt(cancel=False)
        for thread in self._threads:
            thread.join(timeout)
        for slot in self._slots:
            slot.host.close(timeout)

    def _work(self, slot: Slot) -> None:
        try:
            slot.host.start()
        except Exception:  # the next run starts it again, and says why if it fails again
            log.exception("the pipeline process did not start")
        while (item := self._queue.get()) is not None:
            task_id, context = item
            with self._lock:
                slot.task_id = task_id
            try:
                outcome = context.run(slot.runner.run, task_id)
            except Exception:  # the store is unreachable, say: the task stays unfinished
                log.exception("task %s: run failed; it stays unfinished", task_id)
                continue
            finally:
                with self._lock:
                    slot.task_id = ""
            if outcome.retry_after is not None and outcome.task is not None:
                self._redispatch_later(outcome.task, outcome.retry_after)
            try:
                self._admission.after(outcome.task)
            except Exception:  # the store is away: the next finish (or start) admits
                log.exception("task %s: its user's next tasks were not admitted", task_id)

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
