"""WatchTask: the snapshot-then-events handover that loses nothing and repeats nothing.

Subscribe first, then read the store: anything published after the subscription is queued
for us, anything before it is in the store's event log. Versions order the stream: an event
at or below the last version sent is a repeat and is skipped; a jump past the next version
means the bus dropped something, and the gap is filled from the event log. A bus that may
have lost events without a later one to reveal the gap (a reconnect) says so with a Resync,
and the log is read the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from imageeditor.core.errors import NotFound
from imageeditor.core.ports import EventBus, Resync, TaskStore
from imageeditor.core.task import Task


class TaskWatcher:
    def __init__(self, store: TaskStore, events: EventBus) -> None:
        self._store = store
        self._events = events

    async def watch(self, user_id: str, task_id: str, after_version: int) -> AsyncIterator[Task]:
        """Yield the task at each version above `after_version` (or, for 0, from its current
        version on), in order, until a terminal state. The stream ends when the task ends,
        also when `after_version` lies beyond every version it reached."""
        subscription = self._events.subscribe(task_id)
        try:
            current = await asyncio.to_thread(self._store.get_task, task_id, user_id)
            if current is None:
                raise NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")
            if after_version <= 0:
                backlog = [current]
            else:
                backlog = await asyncio.to_thread(self._store.list_events, task_id, after_version)
            last = max(after_version, 0)
            for task in backlog:
                if task.version > last:
                    yield task
                    last = task.version
                    if task.state.terminal:
                        return
            if current.state.terminal:  # the watcher had seen it all already
                return
            async for update in subscription:
                if isinstance(update, Resync) or update.version > last + 1:
                    missed = await asyncio.to_thread(self._store.list_events, task_id, last)
                    if not missed and await self._ended(task_id):
                        return
                elif update.version > last:
                    missed = [update]
                elif update.state.terminal:  # an end the watcher asked to be past
                    return
                else:
                    continue
                for event in missed:
                    if event.version <= last:
                        continue
                    yield event
                    last = event.version
                    if event.state.terminal:
                        return
        finally:
            subscription.close()

    async def _ended(self, task_id: str) -> bool:
        task = await asyncio.to_thread(self._store.get_task, task_id)
        return task is None or task.state.terminal
