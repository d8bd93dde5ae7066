"""The reconciler: no accepted task is lost, whatever happens to its broker message.

A task is committed QUEUED before SubmitTask answers, and only then published. The message
can still be lost: the broker was down (imageeditor.core.adapters.celery.dispatch drops what it
cannot
publish), the broker lost it (a Redis restart without persistence), or the worker machine
holding it vanished. The store knows better, so the reconciler asks it, every
`reconcile_interval_seconds`:

- tasks QUEUED for longer than `queued_redispatch_seconds` are published again;
- tasks RUNNING without a transition for `running_lease_seconds` lost their worker: they are
  requeued (compare-and-set, so a worker that is alive after all loses nothing but its run)
  and published again. The lease must exceed the hard time limit, after which no live worker
  can still be running the task; every stage boundary renews it.

A duplicate message is harmless: a worker starts a task only by compare-and-set from QUEUED.
But a queue can hold a message for longer than `queued_redispatch_seconds` simply because
workers are busy, so re-publishing a task at every pass would multiply a backlog. Each
re-dispatch of one task therefore waits twice as long as the one before (up to 32 times the
base), and only one server reconciles at a time (the caller holds a leader lock:
imageeditor.core.adapters.sql.leader_lock), so the backoff state lives in one process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from imageeditor.core.admission import Admission
from imageeditor.core.errors import NotFound
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.ports import TaskStore
from imageeditor.core.settings import Settings
from imageeditor.core.task import Task, TaskState

log = logging.getLogger(__name__)

BATCH_LIMIT = 1000  # tasks looked at per state and pass
MAX_BACKOFF_DOUBLINGS = 5


class Redispatcher(Protocol):
    def try_dispatch(self, task: Task) -> bool:
        """Publish the task; False when the broker did not take it."""


class _Publish:
    """A Redispatcher as imageeditor.core.admission's dispatch (publish failures are swept
    later)."""

    def __init__(self, dispatcher: Redispatcher) -> None:
        self._dispatcher = dispatcher

    def dispatch(self, task: Task) -> None:
        self._dispatcher.try_dispatch(task)


@dataclass(frozen=True)
class PassReport:
    """What one pass did, for the log and the tests."""

    redispatched: int = 0
    requeued: int = 0
    failed_to_publish: int = 0


@dataclass(frozen=True)
class _Sent:
    version: int
    count: int
    next_due: datetime


class Reconciler:
    def __init__(
        self, store: TaskStore, lifecycle: Lifecycle, dispatcher: Redispatcher, settings: Settings
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._dispatcher = dispatcher
        self._queued_after = timedelta(seconds=settings.queued_redispatch_seconds)
        self._lease = timedelta(seconds=settings.running_lease_seconds)
        self._sent: dict[str, _Sent] = {}
        self._admission = Admission(store, _Publish(dispatcher), settings.max_dispatched_per_user)

    def run_once(self, now: datetime) -> PassReport:
        """One pass over the store: requeue expired leases, admit what fairness lets through
        (an admission lost to a crash), re-dispatch waiting tasks."""
        requeued = self._requeue_expired(now)
        self._admission.admit_everyone()
        redispatched = failed = 0
        still_waiting: dict[str, _Sent] = {}
        waiting = self._store.stale_tasks(TaskState.QUEUED, now - self._queued_after, BATCH_LIMIT)
        for task in waiting:
            sent = self._sent.get(task.id)
            if sent is not None and sent.version == task.version and now < sent.next_due:
                still_waiting[task.id] = sent
                continue
            if not self._dispatcher.try_dispatch(task):
                failed += 1
                continue
            count = sent.count + 1 if sent is not None and sent.version == task.version else 1
            wait = self._queued_after * 2 ** min(count, MAX_BACKOFF_DOUBLINGS)
            still_waiting[task.id] = _Sent(task.version, count, now + wait)
            redispatched += 1
        # Tasks that left QUEUED (or this pass did not reach) need no backoff state any more.
        self._sent = still_waiting
        report = PassReport(redispatched, len(requeued), failed)
        if redispatched or requeued or failed:
            log.info(
                "reconciler: %d dispatched again, %d requeued after their lease, "
                "%d could not be published",
                redispatched,
                len(requeued),
                failed,
            )
        return report

    def _requeue_expired(self, now: datetime) -> list[Task]:
        """RUNNING → QUEUED for each task whose lease ran out; each is published again (if
        that fails it is re-dispatched as a QUEUED task by a later pass)."""
        cutoff = now - self._lease
        requeued: list[Task] = []
        for stale in self._store.stale_tasks(TaskState.RUNNING, cutoff, BATCH_LIMIT):

            def decide(task: Task, seen: Task = stale) -> Task | None:
                # Only if nothing happened since we looked: a transition renews the lease.
                if task.state is TaskState.RUNNING and task.version == seen.version:
                    return task.recover(now)
                return None

            try:
                task = self._lifecycle.update(stale.id, decide)
            except NotFound:
                continue
            if task.state is TaskState.QUEUED and task.version == stale.version + 1:
                log.warning(
                    "task %s: no progress for %s on attempt %d; requeued",
                    task.id,
                    self._lease,
                    task.attempts,
                )
                requeued.append(task)
                self._dispatcher.try_dispatch(task)
        return requeued
