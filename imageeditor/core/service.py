"""The service layer: what each use case does, in terms of the ports.

The gRPC servicer translates requests into these calls and their results back; nothing here
knows about protobuf or gRPC. Synchronous on purpose: the servicer runs it in a thread.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from imageeditor.core.admission import Admission
from imageeditor.core.callbacks import Delivery, batch_key, task_key
from imageeditor.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImageEditorError,
    NotFound,
    ResourceExhausted,
    clip,
)
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.metrics import REFUSALS, TASKS_SUBMITTED
from imageeditor.core.paging import decode_page_token, encode_page_token
from imageeditor.core.ports import (
    Batch,
    BlobStore,
    DeliveryStore,
    Dispatcher,
    PageCursor,
    RateLimiter,
    RejectedItem,
    StatusCache,
    TaskQuery,
    TaskStore,
)
from imageeditor.core.queues import queue_for
from imageeditor.core.reuse import ResultReuse, copy_result_of
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import ResultInfo, Task, TaskState, utcnow

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def run_later(delay: float, action: Callable[[], None]) -> None:
    """Run `action` on a timer thread after `delay` seconds."""
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()


@dataclass(frozen=True)
class NewTask:
    """A validated submission; `image_data` is the inline source, if any."""

    spec: TaskSpec
    image_data: bytes | None = None
    request_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    request_digest: str = ""  # of the request, to tell a retry from a reused request_id
    # The context the submit was made in (its trace): the task is dispatched in it, so the
    # run continues the submitter's trace even when its commit was shared with others.
    context: contextvars.Context | None = field(default=None, compare=False)


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
        later: Callable[[float, Callable[[], None]], None] = run_later,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._dispatcher = dispatcher
        self._lifecycle = lifecycle
        self._cache = cache
        self._limiter = limiter
        self._settings = settings
        self._deliveries = deliveries
        self._later = later
        self._admission = Admission(store, dispatcher, settings.max_dispatched_per_user)
        self._reuse = ResultReuse(store, settings)

    # -- submitting --------------------------------------------------------------------------

    def submit(self, user_id: str, new: NewTask) -> Task:
        """Commit a new task, then dispatch it. The same request_id returns the same task
        (AIP-155), unless the request differs: then ALREADY_EXISTS, REQUEST_ID_REUSED."""
        outcome = self.submit_many([(user_id, new)])[0]
        if isinstance(outcome, ImageEditorError):
            raise outcome
        return outcome

    def submit_many(
        self, submissions: Sequence[tuple[str, NewTask]]
    ) -> list[Task | ImageEditorError]:
        """`submit` for each (user, new task), as one group commit: one rate-limit exchange
        and one transaction for them all. Each gets its own outcome, in order (the task, or
        the error that refused it alone); a failure of the store refuses them all (it
        raises)."""
        s = self._settings
        keys = [f"submit:{user_id}" for user_id, _ in submissions]
        waits = self._limiter.acquire_each(keys, s.submit_rate, s.submit_burst)
        refusals = [_rate_limited(wait, "submit") for wait in waits]
        chosen = [i for i, refused in enumerate(refusals) if refused is None]
        prepared, reused = self._prepare_all([submissions[i] for i in chosen])
        stored = self._store.create_tasks(prepared)
        contexts = {t.id: submissions[i][1].context for i, t in zip(chosen, prepared, strict=True)}
        created = [task for task, was_created in stored if was_created]
        dispatched = self._after_create(prepared, created, contexts, reused)
        outcomes: dict[int, Task | ImageEditorError] = {}
        for i, task, (kept, was_created) in zip(chosen, prepared, stored, strict=True):
            outcomes[i] = dispatched.get(kept.id, kept)
            if not was_created:
                try:
                    _check_same_request(kept.request_digest, task.request_digest, task.request_id)
                except AlreadyExists as refused:
                    outcomes[i] = refused
        return [outcomes[i] if refusal is None else refusal for i, refusal in enumerate(refusals)]

    def batch_submit(
        self,
        user_id: str,
        items: Sequence[NewTask | ImageEditorError],
        *,
        callback_url: str = "",
        request_id: str = "",
        request_digest: str = "",
    ) -> tuple[Batch, list[Task | ImageEditorError]]:
        """Commit the valid items as one batch; invalid items keep their own error. A retry
        (the same request_id and request) answers what the first call did, item by item."""
        s = self._settings
        self._check_rate(f"batch:{user_id}", s.batch_rate, s.batch_burst)
        # Each item is a submit too: a batch must not be a way around the submit limit.
        valid = sum(1 for item in items if not isinstance(item, ImageEditorError))
        if valid:
            self._check_rate(f"submit:{user_id}", s.submit_rate, s.submit_burst, cost=valid)
        batch_id = str(uuid.uuid4())
        new = [(user_id, item) for item in items if not isinstance(item, ImageEditorError)]
        tasks, reused = self._prepare_all(new, batch_id)
        made = iter(tasks)
        prepared = [item if isinstance(item, ImageEditorError) else next(made) for item in items]
        batch = Batch(
            id=batch_id,
            user_id=user_id,
            request_id=request_id,
            callback_url=callback_url,
            task_ids=tuple(t.id for t in tasks),
            created_at=utcnow(),
            request_digest=request_digest,
            rejected=tuple(
                RejectedItem.of(i, p) for i, p in enumerate(prepared) if not isinstance(p, Task)
            ),
        )
        stored_batch, created = self._store.create_batch(batch, tasks)
        if created:
            dispatched = self._after_create(tasks, tasks, reused=reused)
            return stored_batch, [
                dispatched.get(p.id, p) if isinstance(p, Task) else p for p in prepared
            ]
        self._after_create(tasks, [], reused=reused)
        _check_same_request(stored_batch.request_digest, request_digest, request_id)
        return stored_batch, self._outcomes(stored_batch)

    def _outcomes(self, batch: Batch) -> list[Task | ImageEditorError]:
        """What a batch answered when it was created: its tasks (as they are now) and the
        errors of its refused items, each in its place."""
        tasks = iter(self._store.get_tasks(batch.task_ids))
        refused = {item.position: item.error() for item in batch.rejected}
        return [refused[i] if i in refused else next(tasks) for i in range(batch.size)]

    def _prepare_all(
        self, submissions: Sequence[tuple[str, NewTask]], batch_id: str = ""
    ) -> tuple[list[Task], dict[str, Task]]:
        """Each new task as it is stored, in order, and by id the finished version of those
        that take an identical task's result (imageeditor.core.reuse), to commit once they
        exist. One store query finds what every keyed task may reuse."""
        reuse = self._reuse
        keys = [
            reuse.key(user_id, new.spec, new.image_data)
            if reuse.enabled and new.image_data is not None
            else ""
            for user_id, new in submissions
        ]
        sources = reuse.sources([key for key in keys if key], utcnow())
        prepared: list[Task] = []
        reused: dict[str, Task] = {}
        for (user_id, new), key in zip(submissions, keys, strict=True):
            task = self._new_task(user_id, new, batch_id, key)
            source = sources.get(key) if key else None
            result = copy_result_of(self._blobs, source, task.id) if source else None
            if source is not None and result is not None:  # no input to keep: it never runs
                task = replace(task, reused_from=source.id, admitted=True)
                reused[task.id] = task.reuse(result, source.id)
                prepared.append(task)
                continue
            if source is not None and not source.state.terminal:
                task = replace(task, reused_from=source.id)  # it waits for that one
            elif key:
                sources[key] = task  # later identical tasks of this submit wait for it
            prepared.append(self._admission.prepare(self._with_input(task, new)))
        return prepared, reused

    def _new_task(self, user_id: str, new: NewTask, batch_id: str, content_key: str) -> Task:
        spec = new.spec
        if new.image_data is not None:
            spec = replace(spec, input_size=len(new.image_data))
        return Task(
            id=str(uuid.uuid4()),
            user_id=user_id,
            spec=spec,
            batch_id=batch_id,
            request_id=new.request_id,
            labels=dict(new.labels),
            request_digest=new.request_digest,
            content_key=content_key,
        )

    def _with_input(self, task: Task, new: NewTask) -> Task:
        """`task` with its inline source stored in the blob store (image bytes never go into
        the database)."""
        if new.image_data is None:
            return task
        key = f"inputs/{task.id}"
        self._blobs.put(key, new.image_data)
        return replace(task, spec=replace(task.spec, input_key=key))

    def _after_create(
        self,
        prepared: Sequence[Task],
        created: Sequence[Task],
        contexts: Mapping[str, contextvars.Context | None] | None = None,
        reused: Mapping[str, Task] | None = None,
    ) -> dict[str, Task]:
        """Dispatch what was created (as far as fairness lets it go now: see
        imageeditor.core.admission), each task in its submitter's context when given; drop inline
        inputs written for what was not. Returns the tasks dispatched, by id, as they are
        now (admitted).

        New tasks are neither published (no one can watch a task whose id has not been
        answered yet) nor cached: the first GetStatus reads the store and caches what it
        finds (a round trip and a snapshot per task saved at submit: bench/service.py)."""
        created_ids = {t.id for t in created}
        reused = reused or {}
        for task in created:
            TASKS_SUBMITTED.labels(queue_for(task.spec)).inc()
        for task in prepared:
            if task.id not in created_ids and task.spec.input_key:
                self._blobs.delete(task.spec.input_key)
            if task.id not in created_ids and (done := reused.get(task.id)) and done.result:
                self._blobs.delete(done.result.key)
        # Those that take an identical task's result end now (a commit no one can race: no
        # one knows their ids yet); the rest go to the workers.
        finished = {t.id: reused[t.id] for t in created if t.id in reused}
        finished = {i: t for i, t in finished.items() if self._lifecycle.commit(t)}
        to_run = [task for task in created if task.id not in finished]
        if not to_run:
            return finished
        dispatched = {task.id: task for task in self._admission.admit_new(to_run)}
        for task in dispatched.values():
            context = contexts.get(task.id) if contexts else None
            if context is None:
                self._dispatcher.dispatch(task)
            else:
                context.run(self._dispatcher.dispatch, task)
        return {**dispatched, **finished}

    def _check_rate(self, key: str, rate: float, burst: int, cost: int = 1) -> None:
        refused = _rate_limited(self._limiter.acquire(key, rate, burst, cost), key.split(":")[0])
        if refused is not None:
            raise refused

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
        """A queued task is cancelled at once. A running one is marked cancel_requested and its
        run stopped within moments (the dispatcher interrupts it, even inside a long
        operation); if no run commits CANCELLED within cancel_grace_seconds (a killed Celery
        process cannot), this process does. Cancelling a cancelled task is a no-op; a
        finished one cannot be cancelled."""
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

        task = self._lifecycle.update(task_id, decide)
        self._admission.after(task)
        if task.state is TaskState.RUNNING and task.cancel_requested:
            self._dispatcher.interrupt(task.id)
            self._later(self._settings.cancel_grace_seconds, partial(self._settle_cancel, task.id))
        return task

    def _settle_cancel(self, task_id: str) -> None:
        """CANCELLED, if the task is still RUNNING with its cancel pending: its run was
        stopped without a chance to say so. A run still alive loses its next change."""

        def decide(task: Task) -> Task | None:
            pending = task.state is TaskState.RUNNING and task.cancel_requested
            return task.cancel() if pending else None

        try:
            self._admission.after(self._lifecycle.update(task_id, decide))
        except ImageEditorError as exc:  # the store is away: the reconciler settles it later
            log.warning("task %s: cancel not settled (%s)", task_id, exc.message)


def _rate_limited(wait: float, limit: str) -> ResourceExhausted | None:
    """The refusal of a request that must wait `wait` seconds for the `limit` (None: 0)."""
    if wait <= 0:
        return None
    REFUSALS.labels(limit).inc()
    return ResourceExhausted(
        f"rate limit exceeded; retry in {wait:.2f}s",
        retry_after=wait,
        reason="RATE_LIMITED",
        metadata={"limit": limit},
    )


def _check_same_request(stored: str, retried: str, request_id: str) -> None:
    """ALREADY_EXISTS (REQUEST_ID_REUSED) when a request_id comes back with another request.
    A task or batch stored without a digest (before the store kept them) cannot be compared."""
    if stored and retried and stored != retried:
        raise AlreadyExists(
            f"request_id {clip(request_id, 64)!r} was used for a different request; a retry"
            " must repeat the request exactly, and a new request needs a new request_id",
            reason="REQUEST_ID_REUSED",
        )
