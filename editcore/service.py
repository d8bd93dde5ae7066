"""The service layer: what each use case does, in terms of the ports.

The gRPC servicer translates requests into these calls and their results back; nothing here
knows about protobuf or gRPC. Synchronous on purpose: the servicer runs it in a thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from editcore.callbacks import Delivery, batch_key, task_key
from editcore.errors import FailedPrecondition, ImageEditorError, NotFound, ResourceExhausted
from editcore.lifecycle import Lifecycle
from editcore.paging import decode_page_token, encode_page_token
from editcore.ports import (
    Batch,
    BlobStore,
    DeliveryStore,
    Dispatcher,
    PageCursor,
    RateLimiter,
    StatusCache,
    TaskQuery,
    TaskStore,
)
from editcore.settings import Settings
from editcore.spec import TaskSpec
from editcore.task import ResultInfo, Task, TaskState, utcnow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class NewTask:
    """A validated submission; `image_data` is the inline source, if any."""

    spec: TaskSpec
    image_data: bytes | None = None
    request_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class TaskService:
    def __init__(
        self,
        *,
        store: TaskStore,
        blobs: BlobStore,
        dispatcher: Dispatcher,
        lifecycle: Lifecycle,
        cache: StatusCache,
        limiter: RateLimiter,
        settings: Settings,
        deliveries: DeliveryStore | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._dispatcher = dispatcher
        self._lifecycle = lifecycle
        self._cache = cache
        self._limiter = limiter
        self._settings = settings
        self._deliveries = deliveries

    # -- submitting --------------------------------------------------------------------------

    def submit(self, user_id: str, new: NewTask) -> Task:
        """Commit a new task, then dispatch it. The same request_id returns the same task."""
        s = self._settings
        self._check_rate(f"submit:{user_id}", s.submit_rate, s.submit_burst)
        task = self._prepare(user_id, new)
        stored, created = self._store.create_task(task)
        self._after_create([task], [stored] if created else [])
        return stored

    def batch_submit(
        self,
        user_id: str,
        items: Sequence[NewTask | ImageEditorError],
        *,
        callback_url: str = "",
        request_id: str = "",
    ) -> tuple[Batch, list[Task | ImageEditorError]]:
        """Commit the valid items as one batch; invalid items keep their own error."""
        s = self._settings
        self._check_rate(f"batch:{user_id}", s.batch_rate, s.batch_burst)
        # Each item is a submit too: a batch must not be a way around the submit limit.
        valid = sum(1 for item in items if not isinstance(item, ImageEditorError))
        if valid:
            self._check_rate(f"submit:{user_id}", s.submit_rate, s.submit_burst, cost=valid)
        batch_id = str(uuid.uuid4())
        prepared = [
            item if isinstance(item, ImageEditorError) else self._prepare(user_id, item, batch_id)
            for item in items
        ]
        tasks = [t for t in prepared if isinstance(t, Task)]
        batch = Batch(
            id=batch_id,
            user_id=user_id,
            request_id=request_id,
            callback_url=callback_url,
            task_ids=tuple(t.id for t in tasks),
            created_at=utcnow(),
        )
        stored_batch, created = self._store.create_batch(batch, tasks)
        if created:
            self._after_create(tasks, tasks)
            return stored_batch, prepared
        # A retried batch: answer with what the first call created, in the same positions.
        self._after_create(tasks, [])
        existing = iter(self._require(i, user_id) for i in stored_batch.task_ids)
        return stored_batch, [next(existing) if isinstance(p, Task) else p for p in prepared]

    def _prepare(self, user_id: str, new: NewTask, batch_id: str = "") -> Task:
        task_id = str(uuid.uuid4())
        spec = new.spec
        if new.image_data is not None:
            key = f"inputs/{task_id}"
            self._blobs.put(key, new.image_data)
            spec = replace(spec, input_key=key, input_size=len(new.image_data))
        return Task(
            id=task_id,
            user_id=user_id,
            spec=spec,
            batch_id=batch_id,
            request_id=new.request_id,
            labels=dict(new.labels),
        )

    def _after_create(self, prepared: Sequence[Task], created: Sequence[Task]) -> None:
        """Dispatch what was created; drop inline inputs written for what was not."""
        created_ids = {t.id for t in created}
        for task in prepared:
            if task.id not in created_ids and task.spec.input_key:
                self._blobs.delete(task.spec.input_key)
        for task in created:
            self._lifecycle.announce(task)
            self._dispatcher.dispatch(task)

    def _check_rate(self, key: str, rate: float, burst: int, cost: int = 1) -> None:
        wait = self._limiter.acquire(key, rate, burst, cost)
        if wait > 0:
            raise ResourceExhausted(
                f"rate limit exceeded; retry in {wait:.2f}s",
                retry_after=wait,
                reason="RATE_LIMITED",
                metadata={"limit": key.split(":", 1)[0]},
            )

    # -- reading -----------------------------------------------------------------------------

    def get(self, user_id: str, task_id: str) -> Task:
        """The task (cache first, store behind); NOT_FOUND when it is someone else's."""
        cached = self._cache.get(task_id)
        if cached is not None and cached.user_id == user_id:
            return cached
        task = self._require(task_id, user_id)
        self._cache.put(task)
        return task

    def _require(self, task_id: str, user_id: str) -> Task:
        task = self._store.get_task(task_id, user_id)
        if task is None:
            raise NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")
        return task

    def list_tasks(
        self, query: TaskQuery, page_size: int, page_token: str
    ) -> tuple[list[Task], str]:
        """One page of the user's tasks, newest first, and the next page's token ("" at the end)."""
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        cursor = decode_page_token(page_token, query)
        rows = self._store.list_tasks(query, limit + 1, cursor)
        page = rows[:limit]
        if len(rows) <= limit:
            return page, ""
        last = page[-1]
        return page, encode_page_token(PageCursor(last.created_at, last.id), query)

    def callbacks_of(self, tasks: Sequence[Task]) -> dict[str, Delivery]:
        """The callback deliveries of these tasks and of their batches, by outbox key (only
        finished tasks owe any): one query, whatever the number of tasks."""
        keys: set[str] = set()
        for task in (t for t in tasks if t.state.terminal):
            if task.spec.callback_url:
                keys.add(task_key(task.id))
            if task.batch_id:
                keys.add(batch_key(task.batch_id))
        if self._deliveries is None or not keys:
            return {}
        return self._deliveries.deliveries(sorted(keys))

    def result(self, user_id: str, task_id: str) -> tuple[ResultInfo, Iterator[bytes]]:
        task = self._require(task_id, user_id)
        if task.state is not TaskState.SUCCEEDED or task.result is None:
            raise FailedPrecondition(
                f"task {task_id} is {task.state}; a result exists only once it succeeded",
                reason="RESULT_NOT_READY",
            )
        info = task.result
        return info, self._blobs.open_chunks(info.key, self._settings.result_chunk_bytes)

    # -- cancelling --------------------------------------------------------------------------

    def cancel(self, user_id: str, task_id: str) -> Task:
        """A queued task is cancelled at once; a running one is asked to stop at its next stage
        boundary. Cancelling a cancelled task is a no-op; a finished one cannot be cancelled."""
        self._require(task_id, user_id)

        def decide(task: Task) -> Task | None:
            if task.state is TaskState.QUEUED:
                return task.cancel()
            if task.state is TaskState.RUNNING:
                return None if task.cancel_requested else task.request_cancel()
            if task.state is TaskState.CANCELLED:
                return None
            raise FailedPrecondition(
                f"task {task_id} already {task.state}", reason="TASK_ALREADY_FINISHED"
            )

        return self._lifecycle.update(task_id, decide)
