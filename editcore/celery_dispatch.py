"""The Dispatcher of production mode: a Celery message per task, published by task name.

The server never imports the worker code (nor rembg, nor onnxruntime): it sends
`imageeditor.run_task` by name, with the whole task as the message body so that a worker
starts without reading the database (it still checks the store, by compare-and-set, before
it runs anything).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from celery import Celery

from editcore.celery_config import PUBLISH_RETRY_POLICY, TASK_NAME, queue_for
from editcore.store.snapshot import task_to_dict
from editcore.task import Task

log = logging.getLogger(__name__)

# After a failed publish, skip the broker for this long: during an outage one RPC pays the
# retry policy's delay and the others answer at once (their tasks wait, QUEUED, for the
# reconciler).
DEFAULT_COOLDOWN_SECONDS = 3.0


class CeleryDispatcher:
    """Publishes tasks to the broker; never raises and never blocks for long.

    A publish that fails (the broker is down or unreachable) is logged and dropped. That is
    safe because the task was committed, QUEUED, before dispatch was called: the store is the
    truth and the message only a nudge. The reconciler (editcore.reconciler) finds tasks left
    QUEUED and dispatches them again once the broker is back. So SubmitTask still ACCEPTS
    while the broker is down, rather than refusing: the caller gets its task id at once, and
    the task runs late instead of never; refusing would push the retry onto every client.
    """

    def __init__(
        self,
        app: Celery,
        *,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._broker_down_until = 0.0
        self._warned_at = -float("inf")

    def dispatch(self, task: Task) -> None:
        """The Dispatcher port: publish now, best effort."""
        self.try_dispatch(task)

    def try_dispatch(self, task: Task, countdown: float = 0.0) -> bool:
        """Publish `task` (to run no sooner than `countdown` seconds from now); False when
        the broker did not take it."""
        if self._clock() < self._broker_down_until:
            return False
        try:
            self._app.send_task(
                TASK_NAME,
                kwargs={"task": task_to_dict(task)},
                queue=queue_for(task.spec),
                countdown=countdown or None,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception as exc:  # kombu raises library-specific errors for each transport
            self._broker_failed(task, exc)
            return False
        return True

    def _broker_failed(self, task: Task, exc: Exception) -> None:
        now = self._clock()
        with self._lock:
            self._broker_down_until = now + self._cooldown
            warn = now - self._warned_at >= 30.0
            if warn:
                self._warned_at = now
        # Throttled: an outage that every submit runs into must show in the log, not flood it.
        if warn:
            log.warning(
                "could not publish task %s (%r); it stays QUEUED and is dispatched again "
                "by the reconciler",
                task.id,
                exc,
            )
