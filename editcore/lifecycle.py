"""Committing task transitions: store first (compare-and-set), then cache, then watchers.

Both the server (cancel) and the workers change tasks only through here, so every committed
transition is cached and published exactly once, and nothing is published that the store
did not accept.
"""

from __future__ import annotations

from collections.abc import Callable

from editcore.errors import Internal, NotFound
from editcore.ports import EventBus, StatusCache, TaskStore
from editcore.task import Task

MAX_CONFLICTS = 20


class Lifecycle:
    def __init__(self, store: TaskStore, cache: StatusCache, events: EventBus) -> None:
        self.store = store
        self._cache = cache
        self._events = events

    def announce(self, task: Task) -> None:
        """Cache and publish a task the store has just accepted."""
        self._cache.put(task)
        self._events.publish(task)

    def commit(self, task: Task) -> bool:
        """Save `task` if its predecessor version is still current; False if someone else won."""
        if self.store.save_transition(task):
            self.announce(task)
            return True
        self._cache.invalidate(task.id)
        return False

    def update(self, task_id: str, change: Callable[[Task], Task | None]) -> Task:
        """Apply `change` to the latest stored version until it commits.

        `change` returns the next version, or None to leave the task as it is; on a
        compare-and-set conflict the task is reloaded and `change` decides again.
        """
        for _ in range(MAX_CONFLICTS):
            current = self.store.get_task(task_id)
            if current is None:
                raise NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")
            proposed = change(current)
            if proposed is None:
                return current
            if self.commit(proposed):
                return proposed
        raise Internal(f"task {task_id}: gave up after {MAX_CONFLICTS} conflicting updates")
