"""The in-process GetStatus cache (embedded mode), with the seed system's TTLs by state."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from imageeditor.core.ports import STATUS_TTL_SECONDS
from imageeditor.core.task import Task


class InProcessStatusCache:
    """A bounded LRU of tasks with per-state TTLs. Thread-safe."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[str, tuple[float, Task]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None:
                return None
            expires, task = entry
            if expires <= self._clock():
                del self._entries[task_id]
                return None
            self._entries.move_to_end(task_id)
            return task

    def put(self, task: Task) -> None:
        with self._lock:
            current = self._entries.get(task.id)
            # Never let a late writer replace a newer version.
            if current is not None and current[1].version > task.version:
                return
            self._entries[task.id] = (self._clock() + STATUS_TTL_SECONDS[task.state], task)
            self._entries.move_to_end(task.id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, task_id: str) -> None:
        with self._lock:
            self._entries.pop(task_id, None)
