"""Callbacks: the events owed to callers, where each delivery stands, and when to try again.

A task with a callback_url owes one event when it reaches a terminal state; a batch with a
callback_url owes one `batch.completed` event when its last item does. The store records the
Delivery in the same transaction as that terminal transition (an outbox), so no event is
owed without being recorded, whatever dies next. Senders claim due deliveries per
(user, URL), post them, and record each attempt here; the store stays the truth.

Everything in this module is pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from imageeditor.core.task import TaskState


class EventType(enum.StrEnum):
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_CANCELLED = "task.cancelled"
    BATCH_COMPLETED = "batch.completed"


_EVENT_FOR_STATE = {
    TaskState.SUCCEEDED: EventType.TASK_SUCCEEDED,
    TaskState.FAILED: EventType.TASK_FAILED,
    TaskState.CANCELLED: EventType.TASK_CANCELLED,
}


def event_type_for(state: TaskState) -> EventType:
    """The event a task owes on reaching `state` (a terminal state)."""
    return _EVENT_FOR_STATE[state]


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its first attempt or its next retry
    DELIVERED = "delivered"
    FAILED = "failed"  # final: see Delivery.failure_reason


# Why a delivery FAILED for good.
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"  # every attempt of the schedule failed
ENDPOINT_GONE = "ENDPOINT_GONE"  # the receiver answered 410 Gone (now or before)
REJECTED = "REJECTED"  # the receiver answered a 4xx that retrying cannot change
URL_NOT_ALLOWED = "URL_NOT_ALLOWED"  # the URL (or a redirect) leads to a refused address


def task_key(task_id: str) -> str:
    """The outbox key of a task's terminal event (one per task)."""
    return f"task:{task_id}"


def batch_key(batch_id: str) -> str:
    """The outbox key of a batch's completion event (one per batch)."""
    return f"batch:{batch_id}"


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery (alone or together with other events for the same URL)."""

    at: datetime
    http_status: int = 0  # 0: no response (connection refused, timed out, refused URL)
    error: str = ""  # empty when it succeeded
    duration_ms: int = 0


@dataclass(frozen=True)
class Delivery:
    """One event owed to one URL, and every attempt made to deliver it."""

    id: str  # the event id: the same on every attempt, so receivers deduplicate on it
    user_id: str
    url: str
    event_type: EventType
    created_at: datetime
    task_id: str = ""  # the task of a task event
    batch_id: str = ""  # the batch of a batch event
    state: DeliveryState = DeliveryState.PENDING
    next_attempt_at: datetime | None = None  # set while PENDING
    attempts: tuple[Attempt, ...] = ()
    delivered_at: datetime | None = None
    failure_reason: str = ""
    traceparent: str = ""  # the W3C trace context of the transition that owed the event

    @property
    def key(self) -> str:
        return (
            batch_key(self.batch_id)
            if self.event_type is EventType.BATCH_COMPLETED
            else (task_key(self.task_id))
        )

    def delivered(self, attempt: Attempt) -> Delivery:
        return replace(
            self,
            state=DeliveryState.DELIVERED,
            attempts=(*self.attempts, attempt),
            next_attempt_at=None,
            delivered_at=attempt.at,
        )

    def failed(self, attempt: Attempt, reason: str) -> Delivery:
        return replace(
            self,
            state=DeliveryState.FAILED,
            attempts=(*self.attempts, attempt),
            next_attempt_at=None,
            failure_reason=reason,
        )

    def retry_at(self, attempt: Attempt, when: datetime) -> Delivery:
        return replace(self, attempts=(*self.attempts, attempt), next_attempt_at=when)

    def again(self, now: datetime) -> Delivery:
        """PENDING once more, due at `now` (an operator's redelivery): the attempts so far are
        kept, so it gets one attempt and, if that fails, whatever is left of its schedule."""
        return replace(
            self,
            state=DeliveryState.PENDING,
            next_attempt_at=now,
            delivered_at=None,
            failure_reason="",
        )


@dataclass(frozen=True)
class PostResult:
    """What became of one signed POST (redirects followed)."""

    http_status: int = 0  # the final response's status; 0 when there was none
    error: str = ""  # empty for a 2xx
    retry_after: float | None = None  # seconds, from a Retry-After header
    not_allowed: bool = False  # the URL or a redirect target is not a public address
    duration_ms: int = 0


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # connection errors, timeouts, 408, 429, 5xx
    GONE = "gone"  # 410: the URL wants no more events
    REJECTED = "rejected"  # any other non-2xx answer
    NOT_ALLOWED = "not_allowed"


def verdict(result: PostResult) -> Verdict:
    if result.not_allowed:
        return Verdict.NOT_ALLOWED
    status = result.http_status
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 0 or status >= 500 or status in (408, 429):
        return Verdict.RETRY
    if status == 410:
        return Verdict.GONE
    return Verdict.REJECTED


# The Standard Webhooks schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h — eight attempts over about 27.6 hours.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.2  # each delay is scaled by a random factor in [0.8, 1.2]
MAX_RETRY_AFTER_SECONDS = 86400.0  # a Retry-After beyond a day is taken as a day


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = JITTER

    def next_attempt(
        self,
        failed_attempts: int,
        now: datetime,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again after `failed_attempts` failures, or None when the schedule is
        used up. A receiver's Retry-After is honoured when it asks for longer."""
        if failed_attempts > len(self.schedule):
            return None
        factor = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        delay = self.schedule[failed_attempts - 1] * factor
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return now + timedelta(seconds=delay)
