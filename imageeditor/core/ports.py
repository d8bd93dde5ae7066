"""The narrow interfaces between the core and its adapters.

Each port has an embedded adapter (the default, in-process or SQLite or local disk) and a
production one, and both pass the same contract tests. Fakes in unit tests satisfy these
structurally: no inheritance needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from imageeditor.core.callbacks import Delivery
from imageeditor.core.errors import ERRORS_BY_CODE, ImageEditorError, InvalidArgument
from imageeditor.core.task import ResultInfo, Task, TaskState


@dataclass(frozen=True)
class TaskQuery:
    """ListTasks filters; all given filters must match."""

    user_id: str
    states: frozenset[TaskState] = frozenset()
    batch_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class PageCursor:
    """Where a listing page starts: after the task (created_at, id), newest first."""

    created_at: datetime
    task_id: str


@dataclass(frozen=True)
class RejectedItem:
    """An item of a batch that was refused at submit: its position and its error, kept so a
    retried batch answers exactly as the first call did."""

    position: int
    code: str
    reason: str
    message: str
    field_violations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, position: int, error: ImageEditorError) -> RejectedItem:
        violations = getattr(error, "field_violations", {})
        return cls(position, error.code, error.reason, error.message, tuple(violations.items()))

    def error(self) -> ImageEditorError:
        """The error the item was refused with, as its own class."""
        cls = ERRORS_BY_CODE.get(self.code, ImageEditorError)
        if cls is InvalidArgument:
            violations = dict(self.field_violations)
            return InvalidArgument(self.message, field_violations=violations, reason=self.reason)
        return cls(self.message, reason=self.reason)


@dataclass(frozen=True)
class Batch:
    id: str
    user_id: str
    request_id: str
    callback_url: str
    task_ids: tuple[str, ...]
    created_at: datetime
    request_digest: str = ""  # as Task.request_digest
    rejected: tuple[RejectedItem, ...] = ()  # the items refused at submit, by position

    @property
    def size(self) -> int:
        """How many items the batch request held, accepted or not."""
        return len(self.task_ids) + len(self.rejected)


@dataclass(frozen=True)
class BatchProgress:
    """A batch's items by state, as a WatchBatch stream has shown them."""

    total: int
    refused: int
    counts: dict[TaskState, int]
    fraction_done: float
    # Every accepted item's terminal state has reached the caller (on this stream or before
    # its resume token): the stream's last message.
    complete: bool


@dataclass(frozen=True)
class BatchUpdate:
    """One WatchBatch message: an item's transition (None: the aggregate alone), the item's
    position in the request, the aggregate after it and the token to resume after it."""

    task: Task | None
    index: int
    progress: BatchProgress
    resume_token: str


@dataclass(frozen=True)
class ApiKey:
    """An API key's stored record: only the hash of the secret is kept."""

    id: str
    name: str
    user_id: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None = None  # to the minute: not every call writes
    revoked_at: datetime | None = None


class TaskStore(Protocol):
    """The source of truth for tasks. Every write is a committed transaction."""

    def create_task(self, task: Task) -> tuple[Task, bool]:
        """Insert `task` (and its first event); if the user already has a task with the same
        non-empty request_id, return that one instead. The bool says whether it was created."""

    def create_tasks(self, tasks: Sequence[Task]) -> list[tuple[Task, bool]]:
        """create_task for each of `tasks` in one transaction (a group commit), in order; a
        request_id used twice in `tasks` creates the first and returns it for the second."""

    def get_task(self, task_id: str, user_id: str | None = None) -> Task | None:
        """The task, or None; with user_id, None also when it belongs to someone else."""

    def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        """The tasks with these ids that exist, in the order given."""

    def save_transition(self, task: Task) -> bool:
        """Store `task` (version N+1) only if the stored version is still N, recording the event.
        False means somebody else changed the task first: reload and decide again."""

    def list_tasks(
        self, query: TaskQuery, limit: int, after: PageCursor | None = None
    ) -> list[Task]:
        """Tasks matching `query`, newest first (created_at, then id, descending)."""

    def list_events(self, task_id: str, after_version: int) -> list[Task]:
        """The task as of each version above `after_version`, in version order."""

    def unfinished_tasks(self) -> list[Task]:
        """Every QUEUED or RUNNING task, oldest first (what a restart must resume)."""

    def stale_tasks(self, state: TaskState, updated_before: datetime, limit: int) -> list[Task]:
        """Up to `limit` admitted tasks in `state` whose last transition was before
        `updated_before`, the longest-waiting first (what the reconciler dispatches again)."""

    def count_unfinished(self) -> dict[TaskState, int]:
        """How many tasks are QUEUED and RUNNING now (what the metrics sampler exports)."""

    def reusable(self, content_keys: Sequence[str], finished_after: datetime) -> dict[str, Task]:
        """For each content key, the task an identical new task takes its result from: the
        newest SUCCEEDED after `finished_after`, else the oldest QUEUED or RUNNING one."""

    def waiting_for(self, task_id: str) -> list[Task]:
        """The QUEUED tasks waiting for this task's result (reused_from), oldest first."""

    def admit_waiting(self, user_id: str, cap: int) -> list[Task]:
        """Mark the user's oldest tasks that wait for admission admitted, while fewer than
        `cap` of the user's unfinished tasks are; returns those admitted now, oldest first."""

    def users_waiting(self, limit: int) -> list[str]:
        """Up to `limit` users that have tasks waiting for admission."""

    def create_batch(self, batch: Batch, tasks: Sequence[Task]) -> tuple[Batch, bool]:
        """Insert a batch and its tasks in one transaction; idempotent by (user, request_id)."""

    def get_batch(self, batch_id: str, user_id: str | None = None) -> Batch | None: ...


class ApiKeyStore(Protocol):
    def add_api_key(self, key: ApiKey) -> None: ...

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not; None for none."""

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        """Every key (of `user_id`), oldest first."""

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        """Revoke the key (keeping the first revocation's time); None if there is none."""

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at `at`."""


@dataclass(frozen=True)
class WebhookSecret:
    """A secret that signs a user's callbacks; during a rotation the old one has expires_at."""

    id: str
    user_id: str
    secret: str  # `whsec_` + base64; kept in the clear: signing needs it
    created_at: datetime
    expires_at: datetime | None = None


class WebhookSecretStore(Protocol):
    def add_webhook_secret(self, secret: WebhookSecret) -> None: ...

    def webhook_secrets(self, user_id: str, now: datetime) -> list[WebhookSecret]:
        """The user's secrets not expired at `now`, newest first."""

    def expire_webhook_secrets(self, user_id: str, at: datetime) -> None:
        """Let every secret of the user expire at `at` (one that expires sooner keeps its time)."""


class DeliveryStore(Protocol):
    """The callback outbox. Deliveries are created by the TaskStore itself, in the transaction
    of the terminal transition that owes them; senders claim, post and record here."""

    def claim_deliveries(
        self, user_id: str, url: str, due_by: datetime, lease_until: datetime, limit: int
    ) -> tuple[str, list[Delivery]]:
        """Lease the next deliveries to POST together to `url`: PENDING ones of the user that are
        due by `due_by` and not leased (or whose lease ran out), earliest due first. A delivery
        that was tried before goes alone (a failed group falls back to single sends); otherwise
        up to `limit` never-tried ones go together. Returns a claim token for
        `finish_deliveries` and the deliveries (none: nothing to send)."""

    def finish_deliveries(self, token: str, deliveries: Sequence[Delivery]) -> int:
        """Store the new state of claimed deliveries and release them; only those still held
        by `token` are written (a claim whose lease ran out may have been taken over). Returns
        how many were written."""

    def due_targets(self, due_by: datetime, limit: int) -> list[tuple[str, str]]:
        """Distinct (user_id, url) with an unleased PENDING delivery due by `due_by`."""

    def count_pending(self) -> int:
        """How many deliveries are PENDING (the callback backlog the metrics sampler exports)."""

    def release_claims(self) -> int:
        """Drop every lease (a single-process deployment at start: no sender is alive)."""

    def deliveries(self, keys: Sequence[str]) -> dict[str, Delivery]:
        """The deliveries with these outbox keys (imageeditor.core.callbacks.task_key/batch_key)."""

    def disable_endpoint(self, user_id: str, url: str, reason: str, now: datetime) -> None:
        """Send nothing more to `url` for this user (it answered 410 Gone)."""

    def endpoint_disabled(self, user_id: str, url: str) -> bool: ...


class CallbackNotifier(Protocol):
    """Wakes a callback sender: deliveries for (user, url) may be due."""

    def notify(self, user_id: str, url: str) -> None:
        """Deliver what is due for `url` soon, after the aggregation window. Never raises."""


class BlobStore(Protocol):
    """Image bytes: inline sources and results. Keys are relative paths like `results/<id>.png`."""

    def put(self, key: str, data: bytes) -> str:
        """Store `data` under `key` (atomically) and return its URI."""

    def get(self, key: str) -> bytes: ...

    def open_chunks(self, key: str, chunk_size: int) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def copy(self, source: str, target: str) -> str:
        """Store the blob at `source` under `target` too, without passing its bytes through
        this process where the store can; its URI. NotFound when `source` is gone."""


class Dispatcher(Protocol):
    """Hands an accepted, committed task to a worker. Only a dispatch: the store is the truth."""

    def dispatch(self, task: Task) -> None: ...

    def interrupt(self, task_id: str) -> None:
        """Stop the run of a task whose cancel is pending, now, wherever it runs (best
        effort, never raises): the worker kills the process running it."""


class EventBus(Protocol):
    """Fan-out of task transitions to watchers, on any server process."""

    def publish(self, task: Task) -> None:
        """Announce `task` at its current version. Safe to call from any thread."""

    def subscribe(self, task_id: str) -> Subscription:
        """Start receiving the task's transitions from now on."""


@dataclass(frozen=True)
class Resync:
    """Yielded by a Subscription that may have missed transitions (it has just (re)connected
    to its broker, or been quiet for long): the watcher re-reads the store's event log."""


RESYNC = Resync()


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Task | Resync]: ...

    def close(self) -> None: ...


# How long a StatusCache entry lives, by the task's state (the seed system's figures).
STATUS_TTL_SECONDS: dict[TaskState, float] = {
    TaskState.QUEUED: 300.0,
    TaskState.RUNNING: 300.0,
    TaskState.SUCCEEDED: 3600.0,
    TaskState.FAILED: 1800.0,
    TaskState.CANCELLED: 1800.0,
}


class StatusCache(Protocol):
    """Cache-aside for GetStatus; entries live for STATUS_TTL_SECONDS[task.state]."""

    def get(self, task_id: str) -> Task | None: ...

    def put(self, task: Task) -> None: ...

    def invalidate(self, task_id: str) -> None: ...


class RateLimiter(Protocol):
    def acquire(self, key: str, rate: float, burst: int, cost: int = 1) -> float:
        """Take `cost` tokens for `key`; 0.0 when allowed, else the seconds to wait before
        retrying. A request is allowed when one token is free, and then takes all `cost`:
        a batch larger than the burst still passes once, and its items are paid for by
        the requests that have to wait after it."""

    def acquire_each(self, keys: Sequence[str], rate: float, burst: int) -> list[float]:
        """acquire one token for each of `keys` in turn (a key may come more than once), at
        the cost of about one call; the wait of each, in order."""


class DownloadLinks(Protocol):
    """Links that download results without the service (presigned object-store URLs)."""

    def download_url(self, result: ResultInfo | None) -> str:
        """A URL that downloads `result` for a while, or "" when there is none (clients then
        use GetResult)."""


class ProcessAdapters(Protocol):
    """The ports one process fills, in its mode (imageeditor.core.adapters.embedded or .production):
    what the edge, the service layer and the callback sender are built on."""

    @property
    def tasks(self) -> TaskStore: ...

    @property
    def api_keys(self) -> ApiKeyStore: ...

    @property
    def deliveries(self) -> DeliveryStore: ...

    @property
    def webhook_secrets(self) -> WebhookSecretStore: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def links(self) -> DownloadLinks: ...

    @property
    def cache(self) -> StatusCache: ...

    @property
    def events(self) -> EventBus: ...

    @property
    def limiter(self) -> RateLimiter: ...
