"""Publishing to the workers in production mode: task dispatches and callback nudges.

The server never imports the worker code (nor rembg, nor onnxruntime): it sends
`imageeditor.run_task` by name, with the whole task as the message body so that a worker
starts without reading the database (it still checks the store, by compare-and-set, before
it runs anything), and `imageeditor.deliver_callbacks` (user, URL) to the callbacks queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError

from imageeditor.core.adapters.celery.config import (
    DELIVER_CALLBACKS_NAME,
    MAX_COUNTDOWN_SECONDS,
    PUBLISH_RETRY_POLICY,
    TASK_NAME,
)
from imageeditor.core.metrics import BROKER_ERRORS
from imageeditor.core.queues import CALLBACKS_QUEUE, QUEUES, queue_for
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.snapshot import task_to_dict
from imageeditor.core.task import Task
from imageeditor.core.urls import redact_url

log = logging.getLogger(__name__)

# After a failed publish, skip the broker for this long: during an outage one RPC pays the
# retry policy's delay and the others answer at once (their tasks wait, QUEUED, for the
# reconciler).
DEFAULT_COOLDOWN_SECONDS = 3.0


class BrokerPublisher:
    """Publishes messages by task name; never raises and never blocks for long.

    A publish that fails (the broker is down or unreachable) is logged, throttled, and
    dropped; for a while after it the broker is skipped, so during an outage one caller pays
    the retry policy's delay and the others return at once. Callers publish only nudges whose
    truth is already committed to the store, which the reconciler sweeps.
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

    def publish(
        self,
        name: str,
        kwargs: dict[str, Any],
        queue: str,
        countdown: float,
        what: str,
        task_id: str | None = None,
    ) -> bool:
        """Send `name(**kwargs)` to `queue`, due in `countdown` seconds, as Celery task
        `task_id` (None: a new id); False when the broker did not take it. `what` names the
        message in the log."""
        if self._clock() < self._broker_down_until:
            return False
        try:
            self._app.send_task(
                name,
                kwargs=kwargs,
                queue=queue,
                countdown=countdown or None,
                task_id=task_id,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception as exc:  # kombu raises library-specific errors for each transport
            self._broker_failed("publish", what, exc)
            return False
        return True

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each of our queues, by a passive declare (RabbitMQ's count; on
        Redis, the lengths of the queue's lists, every priority included); a queue the broker
        does not know (Redis drops an empty list; no worker declared it yet) holds 0; {} when
        the broker cannot be asked. Delayed retries held by workers are not counted."""
        depths: dict[str, int] = {}
        if self._clock() < self._broker_down_until:
            return depths
        try:
            with self._app.connection_for_read() as connection:
                for queue in QUEUES:
                    depths[queue] = _depth(connection, queue)
        except Exception as exc:  # kombu raises library-specific errors for each transport
            BROKER_ERRORS.labels("queue_depth").inc()
            log.debug("broker: queue depths not read (%r)", exc)
        return depths

    def revoke(self, task_id: str) -> None:
        """Kill the pool process running Celery task `task_id` on any worker (SIGKILL: a
        native call in a long operation does not see a Python-level signal). Best effort."""
        if self._clock() < self._broker_down_until:
            return
        try:
            self._app.control.revoke(task_id, terminate=True, signal="SIGKILL")
        except Exception as exc:  # kombu raises library-specific errors for each transport
            self._broker_failed("revoke", f"the revoke of task {task_id}", exc)

    def _broker_failed(self, operation: str, what: str, exc: Exception) -> None:
        BROKER_ERRORS.labels(operation).inc()
        now = self._clock()
        with self._lock:
            self._broker_down_until = now + self._cooldown
            warn = now - self._warned_at >= 30.0
            if warn:
                self._warned_at = now
        # Throttled: an outage that every submit runs into must show in the log, not flood it.
        if warn:
            log.warning(
                "broker: %s failed for %s (%r); the reconciler publishes what is lost again",
                operation,
                what,
                exc,
            )


def _depth(connection: Any, queue: str) -> int:
    # A channel each: RabbitMQ closes the channel of a failed passive declare.
    with connection.channel() as channel:
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except ChannelError:  # NOT_FOUND
            return 0


class CeleryDispatcher:
    """The Dispatcher port of production mode.

    A task whose dispatch cannot be published stays QUEUED: it was committed before dispatch
    was called, so the store is the truth and the message only a nudge. The reconciler
    (imageeditor.core.reconciler) finds tasks left QUEUED and dispatches them again once the broker
    is
    back. So SubmitTask still ACCEPTS while the broker is down, rather than refusing: the
    caller gets its task id at once, and the task runs late instead of never; refusing would
    push the retry onto every client.
    """

    def __init__(self, publisher: BrokerPublisher, sealer: Sealer = NO_SEALING) -> None:
        self._publisher = publisher
        self._sealer = sealer  # messages wait in the broker: what a task reveals is sealed

    def dispatch(self, task: Task) -> None:
        """The Dispatcher port: publish now, best effort."""
        self.try_dispatch(task)

    def try_dispatch(self, task: Task, countdown: float = 0.0) -> bool:
        """Publish `task` (to run no sooner than `countdown` seconds from now); False when
        the broker did not take it. The Celery task id is the task's id, so Flower's rows
        and a revoke name our tasks."""
        return self._publisher.publish(
            TASK_NAME,
            {"task": task_to_dict(task, self._sealer)},
            queue_for(task.spec),
            countdown,
            f"task {task.id}",
            task_id=task.id,
        )

    def interrupt(self, task_id: str) -> None:
        """The Dispatcher port: every worker is told (a broadcast) to kill the pool process
        running the task, if one does. The server settles the task CANCELLED after the grace
        (the killed process cannot)."""
        self._publisher.revoke(task_id)


class CeleryCallbackNotifier:
    """The CallbackNotifier port of production mode: `imageeditor.deliver_callbacks` messages.

    A nudge is due after the aggregation window, and it claims everything due for its URL by
    then: so while one nudge for a URL is pending in this process another adds nothing, and
    is not sent. Deliveries whose nudge is lost are found by the
    reconciler's sweep (imageeditor.core.callback_sweep).
    """

    def __init__(
        self,
        publisher: BrokerPublisher,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer = NO_SEALING,
    ) -> None:
        self._publisher = publisher
        self._window = window_seconds
        self._sealer = sealer  # the nudge waits in the broker: its URL is sealed
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_until: dict[tuple[str, str], float] = {}

    def notify(self, user_id: str, url: str) -> None:
        """Deliver what is due for (user, url) after the aggregation window."""
        now = self._clock()
        target = (user_id, url)
        with self._lock:
            if self._pending_until.get(target, 0.0) > now:
                return
            self._pending_until = {t: d for t, d in self._pending_until.items() if d > now}
            self._pending_until[target] = now + self._window
        if not self.notify_in(user_id, url, self._window):
            with self._lock:
                self._pending_until.pop(target, None)

    def notify_in(self, user_id: str, url: str, countdown: float) -> bool:
        """Deliver what is due for (user, url) in `countdown` seconds (capped; the sweep covers
        later retries). False when the broker did not take it."""
        return self._publisher.publish(
            DELIVER_CALLBACKS_NAME,
            {"user_id": user_id, "url": self._sealer.seal(url)},
            CALLBACKS_QUEUE,
            min(countdown, MAX_COUNTDOWN_SECONDS),
            f"callbacks for {redact_url(url)}",
        )
