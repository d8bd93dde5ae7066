"""WatchTask and WatchBatch: the snapshot-then-events handover that loses nothing and repeats
nothing.

Subscribe first, then read the store: anything published after the subscription is queued
for us, anything before it is in the store's event log. Versions order the stream: an event
at or below the last version sent is a repeat and is skipped; a jump past the next version
means the bus dropped something, and the gap is filled from the event log. A bus that may
have lost events without a later one to reveal the gap (a reconnect) says so with a Resync,
and the log is read the same way.

A batch is watched as its items are, each with that handover, on one stream: the items'
transitions interleave as they happen, each item's in version order, and every message
carries the batch's counts as the stream has shown them. The resume token is the version of
every item the caller has seen (and the batch's id), so a resumed stream sends exactly the
transitions after it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from imageeditor.core.errors import InvalidArgument, NotFound
from imageeditor.core.ports import (
    Batch,
    BatchProgress,
    BatchUpdate,
    EventBus,
    Resync,
    Subscription,
    TaskStore,
)
from imageeditor.core.task import Task

TOKEN_PREFIX = "wb1:"


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
            async for task in self.follow(subscription, current, backlog, after_version):
                yield task
        finally:
            subscription.close()

    async def follow(
        self, subscription: Subscription, current: Task, backlog: Sequence[Task], after: int
    ) -> AsyncIterator[Task]:
        """The handover, once subscribed and read: `current` as the store had it, `backlog`
        what to send first (versions above `after`, oldest first), then the bus's events."""
        task_id, last = current.id, max(after, 0)
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

    async def watch_batch(
        self, user_id: str, batch_id: str, resume_token: str = ""
    ) -> AsyncIterator[BatchUpdate]:
        """Every item of the batch, each with the handover of `watch`, on one stream (see the
        module docstring); ends with the message whose progress is complete."""
        batch = await asyncio.to_thread(self._store.get_batch, batch_id, user_id)
        if batch is None:
            raise NotFound(f"batch {batch_id} not found", reason="BATCH_NOT_FOUND")
        ids = batch.task_ids
        refused = {item.position for item in batch.rejected}
        positions = [i for i in range(batch.size) if i not in refused]  # of each accepted item
        resumed = decode_resume_token(resume_token, batch) if resume_token else None
        seen = list(resumed) if resumed is not None else [0] * len(ids)
        subscriptions = [self._events.subscribe(task_id) for task_id in ids]
        followers: list[asyncio.Task[None]] = []
        try:
            current, backlogs, shown = await asyncio.to_thread(self._read_batch, ids, resumed)
            # The caller has seen an item when the token says so and nothing of it is left
            # to send; on a new stream, once its current state is sent.
            tally = _Tally(batch, shown, [resumed is not None and not b for b in backlogs])
            updates: asyncio.Queue[tuple[int, Task] | BaseException | None] = asyncio.Queue(
                maxsize=max(16, len(ids))
            )
            for index, subscription in enumerate(subscriptions):
                follow = self.follow(subscription, current[index], backlogs[index], seen[index])
                followers.append(asyncio.create_task(_pump(index, follow, updates)))
            if not any(backlogs) or not ids:  # nothing to replay: say where the batch stands
                yield BatchUpdate(None, -1, tally.progress(), encode_resume_token(batch, seen))
                if tally.progress().complete:
                    return
            running = len(followers)
            while running:
                item = await updates.get()
                if item is None:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                index, task = item
                seen[index] = task.version
                tally.show(index, task)
                progress = tally.progress()
                position = positions[index]
                yield BatchUpdate(task, position, progress, encode_resume_token(batch, seen))
                if progress.complete:
                    return
        finally:
            for follower in followers:
                follower.cancel()
            for subscription in subscriptions:
                subscription.close()

    def _read_batch(
        self, ids: Sequence[str], seen: list[int] | None
    ) -> tuple[list[Task], list[list[Task]], list[Task]]:
        """In one thread hop: every item as it is, what to send of it and what the caller
        last saw of it (for the counts). A new stream (`seen` None) sends each item's current
        state; a resumed one each version above the one the token holds, counting the item
        as the caller last saw it — and an item the token had not reached (0) starts, as on
        a new stream, with its current state."""
        found = {task.id: task for task in self._store.get_tasks(ids)}
        missing = [task_id for task_id in ids if task_id not in found]
        if missing:  # a batch's tasks are kept as long as the batch is
            raise NotFound(f"task {missing[0]} of the batch not found", reason="TASK_NOT_FOUND")
        current = [found[task_id] for task_id in ids]
        if seen is None:
            return current, [[task] for task in current], current
        backlogs: list[list[Task]] = []
        shown: list[Task] = []
        for task, version in zip(current, seen, strict=True):
            if version <= 0:
                backlogs.append([task])
                shown.append(task)
                continue
            if task.version <= version:
                backlogs.append([])
                shown.append(task)
                continue
            # From the seen version on: the first is what the caller saw.
            events = self._store.list_events(task.id, version - 1)
            shown.append(events[0] if events else task)
            backlogs.append([event for event in events if event.version > version])
        return current, backlogs, shown

    async def _ended(self, task_id: str) -> bool:
        task = await asyncio.to_thread(self._store.get_task, task_id)
        return task is None or task.state.terminal


async def _pump(
    index: int,
    follow: AsyncIterator[Task],
    updates: asyncio.Queue[tuple[int, Task] | BaseException | None],
) -> None:
    """Forward one item's transitions to the batch's queue, then None (or its error)."""
    try:
        async for task in follow:
            await updates.put((index, task))
    except Exception as error:
        await updates.put(error)
        return
    await updates.put(None)


class _Tally:
    """The aggregate: each item's state and progress as last shown (an item not shown yet
    counts as it is), and which items the caller has seen at all."""

    def __init__(self, batch: Batch, shown: Sequence[Task], seen: Sequence[bool]) -> None:
        self._total = batch.size
        self._refused = len(batch.rejected)
        self._shown = list(shown)
        self._seen = list(seen)

    def show(self, index: int, task: Task) -> None:
        self._shown[index] = task
        self._seen[index] = True

    def progress(self) -> BatchProgress:
        counts = Counter(task.state for task in self._shown)
        done = [1.0 if t.state.terminal else t.progress for t in self._shown]
        fraction = sum(done) / len(done) if done else 1.0
        complete = all(self._seen) and all(t.state.terminal for t in self._shown)
        return BatchProgress(self._total, self._refused, dict(counts), fraction, complete)


def encode_resume_token(batch: Batch, versions: Sequence[int]) -> str:
    """The batch id and every item's seen version, as an opaque URL-safe string."""
    text = TOKEN_PREFIX + batch.id + ":" + ".".join(map(str, versions))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_resume_token(token: str, batch: Batch) -> list[int]:
    """The versions in a token made for `batch`; INVALID_ARGUMENT for anything else."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        prefix, batch_id, versions = text.rsplit(":", 2)
        seen = [int(v) for v in versions.split(".")] if versions else []
    except (ValueError, UnicodeError, binascii.Error):
        seen = None
        prefix = batch_id = ""
    if (
        seen is None
        or prefix + ":" != TOKEN_PREFIX
        or batch_id != batch.id
        or len(seen) != len(batch.task_ids)
        or any(v < 0 for v in seen)
    ):
        raise InvalidArgument(
            "resume_token was not made by WatchBatch for this batch",
            field_violations={"resume_token": "not a token of this batch"},
            reason="INVALID_RESUME_TOKEN",
        )
    return seen
