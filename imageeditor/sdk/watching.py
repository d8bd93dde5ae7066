"""The bookkeeping of resumable WatchTask and WatchBatch streams, shared by both clients.

A watch stream can drop (a restart, a load balancer, a network blip). The server can replay
every transition after a version, so the watcher remembers the last version it handed out,
reconnects with `after_version` set to it, and drops anything it has already seen: the
caller sees each version exactly once, in order. A batch's stream resumes from the token
of the last message received, which the server continues after without a gap or a repeat.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from imageeditor.core.errors import Unavailable
from imageeditor.v1 import image_editor_service_pb2 as pb
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


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Cursor(Protocol[T_co]):
    """Where a resumable stream stands: the request that opens (or reopens) it, what a
    response gives the caller (None: nothing new), and whether it is over."""

    done: bool

    def request(self) -> Any: ...

    def take(self, response: Any) -> T_co | None: ...

    def reconnect_delay(self, cause: Unavailable | None) -> float: ...


class _Reconnects:
    """How long to wait before the next reconnect (doubling from 0.2 s up to 3 s, reset by
    any progress), and when to give up."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._failures = 0

    def progressed(self) -> None:
        self._failures = 0

    def reconnect_delay(self, cause: Unavailable | None) -> float:
        """Seconds to wait before reconnecting after `cause` (None: the stream ended before
        its end). Raises `cause` (or an Unavailable) once the reconnects run out."""
        self._failures += 1
        if self._failures > MAX_RECONNECTS:
            if cause is not None:
                raise cause
            raise Unavailable(f"the watch of {self._what} kept ending before its end")
        return min(INITIAL_DELAY * 2.0 ** (self._failures - 1), MAX_DELAY)


class WatchCursor(_Reconnects):
    """Where a task's watch stands: the last version seen and whether it is over."""

    def __init__(self, task_id: str, after_version: int = 0) -> None:
        super().__init__(f"task {task_id}")
        self.task_id = task_id
        self.last_version = after_version
        self.done = False

    def request(self) -> pb.WatchTaskRequest:
        return pb.WatchTaskRequest(task_id=self.task_id, after_version=self.last_version)

    def take(self, response: pb.WatchTaskResponse) -> task_pb2.Task | None:
        """The task of `response`, or None when its version was already handed out."""
        task = response.task
        if task.version <= self.last_version:
            return None
        self.last_version = task.version
        self.done = is_terminal(task)
        self.progressed()
        return task


class BatchWatchCursor(_Reconnects):
    """Where a batch's watch stands: the resume token of the last message and whether the
    batch is complete. The server sends nothing twice after a token, so nothing is skipped."""

    def __init__(self, batch_id: str, resume_token: str = "") -> None:
        super().__init__(f"batch {batch_id}")
        self.batch_id = batch_id
        self.resume_token = resume_token
        self.done = False

    def request(self) -> pb.WatchBatchRequest:
        return pb.WatchBatchRequest(batch_id=self.batch_id, resume_token=self.resume_token)

    def take(self, update: pb.WatchBatchResponse) -> pb.WatchBatchResponse:
        """Every message is new: remember where it leaves the stream."""
        self.resume_token = update.resume_token
        self.done = update.progress.complete
        self.progressed()
        return update
