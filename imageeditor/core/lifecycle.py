"""Committing task transitions: store first (compare-and-set), then cache, then watchers,
then (for a terminal transition) the callback sender.

Both the server (cancel) and the workers change tasks only through here, so every committed
transition is cached and published exactly once, and nothing is published that the store
did not accept. The callbacks a terminal transition owes are recorded by the store in the
same transaction (imageeditor.core.callbacks); the notifier only makes them go out without delay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imageeditor.core.errors import ImageEditorError, Internal, NotFound
from imageeditor.core.metrics import TASK_DURATION, TASKS_FINISHED, TASKS_REQUEUED
from imageeditor.core.ports import CallbackNotifier, EventBus, StatusCache, TaskStore
from imageeditor.core.queues import queue_for
from imageeditor.core.task import Task, TaskState

log = logging.getLogger(__name__)

MAX_CONFLICTS = 20


class Lifecycle:
    def __init__(
        self,
        store: TaskStore,
        cache: StatusCache,
        events: EventBus,
        callbacks: CallbackNotifier | None = None,
    ) -> None:
        self.store = store
        self._cache = cache
        self._events = events
        self._callbacks = callbacks

    def announce(self, task: Task) -> None:
        """Cache and publish a task the store has just accepted."""
        self._cache.put(task)
        self._events.publish(task)

    def commit(self, task: Task) -> bool:
        """Save `task` if its predecessor version is still current; False if someone else won."""
        if self.store.save_transition(task):
            # Counted before anyone hears of it: whoever saw the transition reads metrics
            # that already count it.
            count_transition(task)
            self.announce(task)
            if task.state.terminal:
                self._wake_callbacks(task)
            return True
        self._cache.invalidate(task.id)
        return False

    def _wake_callbacks(self, task: Task) -> None:
        """Tell the sender about the callbacks `task` has just come to owe (its own, and its
        batch's when it may have been the last item). A lost nudge delays, never loses, them."""
        if self._callbacks is None:
            return
        if task.spec.callback_url:
            self._callbacks.notify(task.user_id, task.spec.callback_url)
        if task.batch_id:
            try:
                batch = self.store.get_batch(task.batch_id)
            except ImageEditorError as exc:  # the store is away: the sweep will find it
                log.warning("task %s: batch callback not nudged (%s)", task.id, exc.message)
                return
            if batch is not None and batch.callback_url:
                self._callbacks.notify(batch.user_id, batch.callback_url)

    def update(
        self, task_id: str, change: Callable[[Task], Task | None], known: Task | None = None
    ) -> Task:
        """Apply `change` to the latest stored version until it commits.

        `change` returns the next version, or None to leave the task as it is; on a
        compare-and-set conflict the task is reloaded and `change` decides again. `known`,
        the version the caller committed or read last, is tried first without reading the
        store (one round trip per transition when nobody else changed the task meanwhile);
        a `known` version that `change` leaves alone is checked against the store.
        """
        for _ in range(MAX_CONFLICTS):
            guessed, current = known is not None, known or self.store.get_task(task_id)
            known = None
            if current is None:
                raise NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")
            proposed = change(current)
            if proposed is None:
                if guessed:
                    continue
                return current
            if self.commit(proposed):
                return proposed
        raise Internal(f"task {task_id}: gave up after {MAX_CONFLICTS} conflicting updates")


def count_transition(task: Task) -> None:
    """The task metrics of a committed transition: a final state (with the time since
    submit), or a run that put its task back in the queue."""
    if task.state.terminal:
        queue, outcome = queue_for(task.spec), task.state.value
        TASKS_FINISHED.labels(queue, outcome).inc()
        if task.finished_at is not None:
            elapsed = (task.finished_at - task.created_at).total_seconds()
            TASK_DURATION.labels(queue, outcome).observe(max(elapsed, 0.0))
    elif task.state is TaskState.QUEUED and task.attempts:
        TASKS_REQUEUED.labels(queue_for(task.spec)).inc()
