"""The in-process event bus (embedded mode): task transitions fanned out to asyncio watchers.

Workers publish from their own threads; each subscription belongs to one asyncio loop and
receives through `call_soon_threadsafe`, so a publisher never blocks on a slow watcher.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator

from imageeditor.core.task import Task


class InProcessSubscription:
    """Transitions of one task from the moment of subscribing; iterate, then close()."""

    def __init__(self, bus: InProcessEventBus, task_id: str) -> None:
        self.task_id = task_id
        self._bus = bus
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Task] = asyncio.Queue()

    def deliver(self, task: Task) -> None:
        """Called from any thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, task)

    async def __aiter__(self) -> AsyncIterator[Task]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class InProcessEventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[InProcessSubscription]] = defaultdict(set)

    def publish(self, task: Task) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(task.id, ()))
        for subscription in subscribers:
            subscription.deliver(task)

    def subscribe(self, task_id: str) -> InProcessSubscription:
        subscription = InProcessSubscription(self, task_id)
        with self._lock:
            self._subscribers[task_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: InProcessSubscription) -> None:
        with self._lock:
            watchers = self._subscribers.get(subscription.task_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscribers[subscription.task_id]
