"""The Celery tasks: `imageeditor.run_task` (one delivery of a task's dispatch message) and
`imageeditor.deliver_callbacks` (see CallbackHandler and imageeditor.workers.callback_sender).

The message carries the whole task as it was when dispatched, so the run starts with one
compare-and-set and no read (imageeditor.workers.runner). What Celery's delivery guarantees leave
to us:

- A duplicate delivery (the reconciler published again, a broker redelivered) finds the
  task no longer QUEUED and does nothing: the compare-and-set decides.
- A redelivery after the process running the task died (acks_late with
  reject_on_worker_lost requeues the message; RabbitMQ and the Redis transport both mark it
  `redelivered`). It arrives within moments of the death, so "no transition for a while"
  cannot tell a dead run from a live one; the redelivered flag can: the task is still
  RUNNING in an attempt this message started (one above the attempts it carries), and
  nothing else runs it, because Celery redelivers an unacked message only when its consumer
  is gone (and cancels runs on a broker reconnect), or, on Redis, after the visibility
  timeout, which exceeds the hard time limit. So the task is requeued (RUNNING → QUEUED) and
  run again. Each start counts an attempt, so an image that kills every worker it reaches
  fails TOO_MANY_ATTEMPTS instead of looping forever. (Were the reconciler's lease shorter
  than the visibility timeout, a very late redelivery could take over a run the reconciler
  had already restarted: wasted work, never a second result, thanks to compare-and-set.)
- Transient errors: the runner has already requeued the task; it is published again with a
  countdown (its backoff with jitter). The runner stops at max_attempts.
- The store unreachable (Unavailable, or a transient error the runner could not record):
  the message goes back to the broker (after a pause) to try again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from celery import Celery
from celery.exceptions import Reject
from sqlalchemy.exc import SQLAlchemyError

from imageeditor.core.adapters.celery.config import (
    DELIVER_CALLBACKS_NAME,
    MAX_COUNTDOWN_SECONDS,
    TASK_NAME,
)
from imageeditor.core.admission import Admission
from imageeditor.core.errors import NotFound, Unavailable
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.logs import task_context
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.snapshot import task_from_dict
from imageeditor.core.task import Task, TaskState, utcnow
from imageeditor.workers.callback_sender import CallbackSender
from imageeditor.workers.runner import TaskRunner

log = logging.getLogger(__name__)

STORE_OUTAGE_PAUSE_SECONDS = 5.0


class RetryPublisher(Protocol):
    def try_dispatch(self, task: Task, countdown: float = 0.0) -> bool:
        """Publish `task` to run `countdown` seconds from now; False if the broker refused."""


class DelayedNotifier(Protocol):
    def notify_in(self, user_id: str, url: str, countdown: float) -> bool:
        """Wake a sender for (user, url) in `countdown` seconds; False if the broker refused."""


class TaskHandler:
    """Runs one delivered message through the runner; independent of Celery's machinery."""

    def __init__(
        self,
        runner: TaskRunner,
        lifecycle: Lifecycle,
        retries: RetryPublisher,
        admission: Admission | None = None,
        sealer: Sealer = NO_SEALING,
    ) -> None:
        self._runner = runner
        self._lifecycle = lifecycle
        self._retries = retries
        self._admission = admission
        self._sealer = sealer

    def handle(self, data: dict[str, Any], redelivered: bool) -> None:
        snapshot = task_from_dict(data, self._sealer)
        if redelivered:
            with task_context(snapshot.id):
                self._take_over(snapshot)
        outcome = self._runner.run(snapshot.id, snapshot)
        if outcome.retry_after is not None and outcome.task is not None:
            # Jitter spreads the retries of tasks that failed together (an upstream outage).
            countdown = min(MAX_COUNTDOWN_SECONDS, outcome.retry_after * random.uniform(1, 1.5))
            if not self._retries.try_dispatch(outcome.task, countdown):
                log.warning("task %s: retry not published; the reconciler will", snapshot.id)
        if self._admission is not None:
            self._admission.after(outcome.task)  # its user's next task may go

    def _take_over(self, snapshot: Task) -> None:
        """RUNNING → QUEUED when the run this message started died with its process."""
        taken_over: list[Task] = []

        def decide(task: Task) -> Task | None:
            if task.state is TaskState.RUNNING and task.attempts > snapshot.attempts:
                taken_over.append(task)
                return task.recover()
            return None

        try:
            self._lifecycle.update(snapshot.id, decide)
        except NotFound:
            return  # the runner drops the message
        if taken_over:
            log.warning(
                "task %s: redelivered after attempt %d died with its worker; running it again",
                snapshot.id,
                taken_over[-1].attempts,
            )


def register_run_task(app: Celery, handler: Callable[[], TaskHandler]) -> None:
    """Register `imageeditor.run_task` on `app`; `handler()` gives this process's handler."""

    def run_task(self: Any, task: dict[str, Any]) -> None:
        delivery = self.request.delivery_info or {}
        with _requeued_while_the_store_is_away(f"task {task.get('id')}"):
            handler().handle(task, redelivered=bool(delivery.get("redelivered")))

    app.task(name=TASK_NAME, bind=True)(run_task)


class CallbackHandler:
    """Runs one `imageeditor.deliver_callbacks` message: what is due for one (user, URL)."""

    def __init__(
        self, sender: CallbackSender, nudges: DelayedNotifier, sealer: Sealer = NO_SEALING
    ) -> None:
        self._sender = sender
        self._nudges = nudges
        self._sealer = sealer

    def handle(self, user_id: str, sealed_url: str) -> None:
        """Deliver what is due for the user at the URL the message carries (sealed)."""
        url = self._sealer.open(sealed_url)
        report = self._sender.deliver_due(user_id, url)
        if report.next_due is None:
            return
        # A retry due soon gets its own delayed nudge; later ones (minutes to hours away)
        # are found by the reconciler's sweep, not held in the broker.
        countdown = (report.next_due - utcnow()).total_seconds()
        if countdown <= MAX_COUNTDOWN_SECONDS:
            self._nudges.notify_in(user_id, url, max(countdown, 0.0))


def register_deliver_callbacks(app: Celery, handler: Callable[[], CallbackHandler]) -> None:
    """Register `imageeditor.deliver_callbacks` on `app`. Delivery is at least once: a worker
    that dies mid-request leaves its deliveries leased until the lease runs out; then the
    sweep nudges them again and the receiver sees the same event ids a second time."""

    def deliver_callbacks(user_id: str, url: str) -> None:
        with _requeued_while_the_store_is_away(f"callbacks of {user_id}"):
            handler().handle(user_id, url)

    app.task(name=DELIVER_CALLBACKS_NAME)(deliver_callbacks)


@contextmanager
def _requeued_while_the_store_is_away(what: str) -> Iterator[None]:
    """Nothing can be decided without the store: the message goes back to the broker (after
    a pause) and finds the store's state, whatever it is, when it is redelivered."""
    try:
        yield
    except (Unavailable, SQLAlchemyError) as exc:
        log.warning("%s: the store is unreachable (%r); retrying", what, exc)
        time.sleep(STORE_OUTAGE_PAUSE_SECONDS)
        raise Reject(str(exc), requeue=True) from exc
