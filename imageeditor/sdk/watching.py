"""The bookkeeping of a resumable WatchTask stream, shared by both clients.

A watch stream can drop (a restart, a load balancer, a network blip). The server can replay
every transition after a version, so the watcher remembers the last version it handed out,
reconnects with `after_version` set to it, and drops anything it has already seen: the
caller sees each version exactly once, in order.
"""

from __future__ import annotations

from imageeditor.core.errors import Unavailable
from imageeditor.v1 import task_pb2

TERMINAL_STATES = frozenset(
    {task_pb2.TASK_STATE_SUCCEEDED, task_pb2.TASK_STATE_FAILED, task_pb2.TASK_STATE_CANCELLED}
)
INITIAL_DELAY = 0.2
MAX_DELAY = 3.0
MAX_RECONNECTS = 8
"""Reconnects in a row without a new version before the watcher gives up."""


def is_terminal(task: task_pb2.Task) -> bool:
    """Whether `task` is SUCCEEDED, FAILED or CANCELLED (it will not change again)."""
    return task.state in TERMINAL_STATES


class WatchCursor:
    """Where a watch stands: the last version seen, whether it is over, and how long to wait
    before the next reconnect (doubling from 0.2 s up to 3 s, reset by any progress)."""

    def __init__(self, task_id: str, after_version: int = 0) -> None:
        self.task_id = task_id
        self.last_version = after_version
        self.done = False
        self._failures = 0

    def accept(self, task: task_pb2.Task) -> bool:
        """Record `task`; False when its version was already handed out (skip it)."""
        if task.version <= self.last_version:
            return False
        self.last_version = task.version
        self.done = is_terminal(task)
        self._failures = 0
        return True

    def reconnect_delay(self, cause: Unavailable | None) -> float:
        """Seconds to wait before reconnecting after `cause` (None: the stream ended before
        a terminal state). Raises `cause` (or an Unavailable) once the reconnects run out."""
        self._failures += 1
        if self._failures > MAX_RECONNECTS:
            if cause is not None:
                raise cause
            raise Unavailable(
                f"the watch of task {self.task_id} kept ending before a terminal state"
            )
        return min(INITIAL_DELAY * 2.0 ** (self._failures - 1), MAX_DELAY)
