"""The gauges that cost a query: queue depth per broker queue, tasks QUEUED and RUNNING, and
the callback backlog. The reconciler leader samples them after each pass (not per scrape, so
a scraper cannot load the store); the other servers export none of the labelled ones and 0
for the callback backlog, so a max over the servers is the leader's sample. Embedded mode
samples the store's counts on the same interval (its queue is in the process:
`imageeditor_tasks{state="queued"}` is its depth)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from imageeditor.core.errors import ImageEditorError
from imageeditor.core.metrics import CALLBACKS_PENDING, QUEUE_DEPTH, TASKS_UNFINISHED
from imageeditor.core.ports import DeliveryStore, TaskStore

log = logging.getLogger(__name__)


class GaugeSampler:
    def __init__(
        self,
        tasks: TaskStore,
        deliveries: DeliveryStore,
        queue_depths: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._tasks = tasks
        self._deliveries = deliveries
        self._queue_depths = queue_depths

    def sample(self) -> None:
        """Set every gauge from a fresh reading; a part that cannot be read keeps its last."""
        try:
            for state, count in self._tasks.count_unfinished().items():
                TASKS_UNFINISHED.labels(state.value).set(count)
            CALLBACKS_PENDING.set(self._deliveries.count_pending())
        except ImageEditorError as exc:
            log.warning("metrics: store counts not sampled (%s)", exc.message)
        if self._queue_depths is not None:
            for queue, depth in self._queue_depths().items():
                QUEUE_DEPTH.labels(queue).set(depth)

    async def sample_until(self, stop: asyncio.Event, interval: float) -> None:
        """Sample every `interval` seconds until `stop` is set (embedded mode: one process, no
        leader to elect)."""
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def clear(self) -> None:
        """This process is not the leader (any more): drop the labelled gauges; the
        unlabelled callback backlog reads 0 (which a `max` over the servers passes over)."""
        TASKS_UNFINISHED.clear()
        QUEUE_DEPTH.clear()
        CALLBACKS_PENDING.set(0)
