"""The callback sender's decisions, with an in-memory outbox and a scripted receiver.

The real outbox (SQLite and PostgreSQL) has its own contract tests, the real POST its own
loopback tests; end-to-end delivery is in tests/e2e/test_callbacks_e2e.py.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imageeditor.core.callbacks import (
    ENDPOINT_GONE,
    REJECTED,
    RETRIES_EXHAUSTED,
    URL_NOT_ALLOWED,
    Delivery,
    DeliveryState,
    EventType,
    PostResult,
)
from imageeditor.core.ports import Batch, WebhookSecret
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskError
from imageeditor.sdk import parse_webhook, verify_webhook
from imageeditor.workers.callback_sender import CallbackSender, message_id

URL = "https://hooks.example.com/done"
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


def finished_task(user: str = "alice", batch_id: str = "") -> Task:
    task = Task(
        id=str(uuid.uuid4()), user_id=user, spec=TaskSpec(callback_url=URL), batch_id=batch_id
    )
    return task.start(START).fail(TaskError("INVALID_ARGUMENT", "BAD_IMAGE", "no"), START)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Outbox:
    """DeliveryStore and WebhookSecretStore in memory, with the claim rules of the port."""

    clock: Clock
    rows: dict[str, Delivery] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    disabled: set[tuple[str, str]] = field(default_factory=set)
    tasks: dict[str, Task] = field(default_factory=dict)
    secrets: list[WebhookSecret] = field(default_factory=list)

    def owe(self, task: Task) -> Delivery:
        self.tasks[task.id] = task
        d = Delivery(
            id=str(uuid.uuid4()),
            user_id=task.user_id,
            url=URL,
            event_type=EventType.TASK_FAILED,
            created_at=self.clock.now,
            task_id=task.id,
            next_attempt_at=self.clock.now,
        )
        self.rows[d.id] = d
        return d

    def claim_deliveries(
        self, user_id: str, url: str, due_by: datetime, lease_until: datetime, limit: int
    ) -> tuple[str, list[Delivery]]:
        now = self.clock.now
        due = sorted(
            (
                d
                for d in self.rows.values()
                if d.user_id == user_id
                and d.url == url
                and d.state is DeliveryState.PENDING
                and d.next_attempt_at is not None
                and d.next_attempt_at <= due_by
                and (d.id not in self.leases or self.leases[d.id][1] < now)
            ),
            key=lambda d: (d.next_attempt_at, d.created_at),
        )
        tried_first = bool(due) and bool(due[0].attempts)
        due = due[:1] if tried_first else [d for d in due if not d.attempts][:limit]
        token = str(uuid.uuid4())
        for d in due:
            self.leases[d.id] = (token, lease_until)
        return token, due

    def finish_deliveries(self, token: str, deliveries: Sequence[Delivery]) -> int:
        written = 0
        for d in deliveries:
            if self.leases.get(d.id, ("", START))[0] == token:
                self.rows[d.id] = d
                del self.leases[d.id]
                written += 1
        return written

    def endpoint_disabled(self, user_id: str, url: str) -> bool:
        return (user_id, url) in self.disabled

    def disable_endpoint(self, user_id: str, url: str, reason: str, now: datetime) -> None:
        self.disabled.add((user_id, url))

    def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        return [self.tasks[i] for i in task_ids if i in self.tasks]

    def get_batch(self, batch_id: str, user_id: str | None = None) -> Batch | None:
        ids = tuple(t.id for t in self.tasks.values() if t.batch_id == batch_id)
        return Batch(batch_id, "alice", "", URL, ids, START) if ids else None

    def webhook_secrets(self, user_id: str, now: datetime) -> list[WebhookSecret]:
        return list(self.secrets)

    def add_webhook_secret(self, secret: WebhookSecret) -> None:
        self.secrets.insert(0, secret)

    def expire_webhook_secrets(self, user_id: str, at: datetime) -> None:
        raise AssertionError("not used")


@dataclass
class Receiver:
    """Answers each POST with the next scripted result and keeps what it was sent."""

    script: list[PostResult]
    requests: list[tuple[Mapping[str, str], bytes]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], **_: Any) -> PostResult:
        self.requests.append((dict(headers), body))
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def event_ids(self, n: int) -> list[str]:
        return [e.id for e in parse_webhook(self.requests[n][1])]


OK = PostResult(http_status=204)
BOOM = PostResult(http_status=500, error="HTTP 500")


def sender_for(
    outbox: Outbox, receiver: Receiver, schedule: tuple[float, ...] = (5, 300)
) -> CallbackSender:
    settings = Settings(callback_retry_schedule=schedule, callback_max_events=10)
    outbox.secrets = [WebhookSecret("s1", "alice", SECRET, START)]
    return CallbackSender(
        outbox,  # type: ignore[arg-type]
        outbox,  # type: ignore[arg-type]
        outbox,  # type: ignore[arg-type]
        settings,
        post=receiver,
        clock=outbox.clock,
        rng=random.Random(7),
    )


def test_events_due_together_go_as_one_signed_request_each_with_its_own_id() -> None:
    outbox = Outbox(Clock())
    owed = [outbox.owe(finished_task()) for _ in range(3)]
    receiver = Receiver([OK])

    report = sender_for(outbox, receiver).deliver_due("alice", URL)

    assert (report.requests, report.delivered) == (1, 3)
    headers, body = receiver.requests[0]
    verify_webhook(SECRET, headers, body)
    assert sorted(receiver.event_ids(0)) == sorted(d.id for d in owed)
    assert headers["webhook-id"] == message_id(owed)
    events = parse_webhook(body)
    assert {e.task.id for e in events} == {d.task_id for d in owed}
    assert {e.type for e in events} == {"task.failed"}
    assert all(outbox.rows[d.id].state is DeliveryState.DELIVERED for d in owed)


def test_a_failed_event_is_retried_on_the_schedule_with_the_same_event_id() -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    receiver = Receiver([BOOM, OK])
    sender = sender_for(outbox, receiver)

    report = sender.deliver_due("alice", URL)
    retry = outbox.rows[owed.id]
    assert retry.state is DeliveryState.PENDING and report.next_due == retry.next_attempt_at
    assert retry.next_attempt_at is not None
    assert timedelta(seconds=4) <= retry.next_attempt_at - START <= timedelta(seconds=6)
    assert sender.deliver_due("alice", URL).requests == 0  # not due yet

    outbox.clock.now = retry.next_attempt_at
    sender.deliver_due("alice", URL)
    done = outbox.rows[owed.id]
    assert done.state is DeliveryState.DELIVERED
    assert [a.http_status for a in done.attempts] == [500, 204]
    assert receiver.event_ids(0) == receiver.event_ids(1) == [owed.id]
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"] == owed.id


def test_a_retry_due_soon_is_not_sent_before_it_is_due() -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    receiver = Receiver([BOOM])
    report = sender_for(outbox, receiver, schedule=(0.2, 0.2, 0.2)).deliver_due("alice", URL)
    assert report.requests == 1 and len(receiver.requests) == 1
    assert outbox.rows[owed.id].state is DeliveryState.PENDING


def test_retry_after_is_honoured_when_it_asks_for_longer() -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    busy = PostResult(http_status=429, error="HTTP 429", retry_after=120.0)
    sender_for(outbox, Receiver([busy])).deliver_due("alice", URL)
    assert outbox.rows[owed.id].next_attempt_at == START + timedelta(seconds=120)


def test_after_the_last_retry_the_delivery_fails_for_good() -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    down = PostResult(error="connection refused")
    sender = sender_for(outbox, Receiver([down]), schedule=(1,))
    sender.deliver_due("alice", URL)
    outbox.clock.now += timedelta(seconds=2)
    sender.deliver_due("alice", URL)
    final = outbox.rows[owed.id]
    assert (final.state, final.failure_reason, len(final.attempts)) == (
        DeliveryState.FAILED,
        RETRIES_EXHAUSTED,
        2,
    )


def test_410_gone_fails_the_event_and_every_later_one_for_that_url_unsent() -> None:
    outbox = Outbox(Clock())
    first = outbox.owe(finished_task())
    receiver = Receiver([PostResult(http_status=410, error="HTTP 410 Gone")])
    sender = sender_for(outbox, receiver)
    sender.deliver_due("alice", URL)
    later = outbox.owe(finished_task())
    sender.deliver_due("alice", URL)

    assert len(receiver.requests) == 1
    for d in (first, later):
        assert (outbox.rows[d.id].state, outbox.rows[d.id].failure_reason) == (
            DeliveryState.FAILED,
            ENDPOINT_GONE,
        )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (PostResult(not_allowed=True, error="10.0.0.1 is not public"), URL_NOT_ALLOWED),
        (PostResult(http_status=404, error="HTTP 404"), REJECTED),
    ],
)
def test_a_refused_address_or_a_4xx_fails_a_single_event_without_retries(
    answer: PostResult, reason: str
) -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    report = sender_for(outbox, Receiver([answer])).deliver_due("alice", URL)
    assert (outbox.rows[owed.id].state, outbox.rows[owed.id].failure_reason) == (
        DeliveryState.FAILED,
        reason,
    )
    assert report.next_due is None


def test_a_failed_group_falls_back_to_single_sends_at_once() -> None:
    outbox = Outbox(Clock())
    owed = [outbox.owe(finished_task()) for _ in range(3)]
    receiver = Receiver([BOOM, OK, OK, OK])

    report = sender_for(outbox, receiver).deliver_due("alice", URL)

    assert report.requests == 4 and report.delivered == 3
    assert len(receiver.event_ids(0)) == 3
    assert sorted(receiver.event_ids(1) + receiver.event_ids(2) + receiver.event_ids(3)) == sorted(
        d.id for d in owed
    )


def test_a_group_the_receiver_could_not_be_reached_for_is_retried_later_not_at_once() -> None:
    outbox = Outbox(Clock())
    for _ in range(3):
        outbox.owe(finished_task())
    receiver = Receiver([PostResult(error="connection refused")])
    report = sender_for(outbox, receiver).deliver_due("alice", URL)
    assert report.requests == 1 and report.next_due is not None


def test_a_batch_event_carries_every_task_of_the_batch() -> None:
    outbox = Outbox(Clock())
    batch_id = str(uuid.uuid4())
    items = [finished_task(batch_id=batch_id) for _ in range(3)]
    for t in items:
        outbox.tasks[t.id] = t
    owed = Delivery(
        id=str(uuid.uuid4()),
        user_id="alice",
        url=URL,
        event_type=EventType.BATCH_COMPLETED,
        created_at=START,
        batch_id=batch_id,
        next_attempt_at=START,
    )
    outbox.rows[owed.id] = owed
    receiver = Receiver([OK])
    sender_for(outbox, receiver).deliver_due("alice", URL)
    (event,) = parse_webhook(receiver.requests[0][1])
    assert (event.type, event.batch.batch_id) == ("batch.completed", batch_id)
    assert [t.id for t in event.batch.tasks] == [t.id for t in items]


def test_the_request_continues_the_trace_of_the_transition_that_owed_it() -> None:
    outbox = Outbox(Clock())
    owed = outbox.owe(finished_task())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    outbox.rows[owed.id] = replace(owed, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    receiver = Receiver([OK])
    sender_for(outbox, receiver).deliver_due("alice", URL)
    assert receiver.requests[0][0]["traceparent"].split("-")[1] == trace_id


def test_during_a_rotation_every_active_secret_signs() -> None:
    outbox = Outbox(Clock())
    outbox.owe(finished_task())
    receiver = Receiver([OK])
    sender = sender_for(outbox, receiver)
    newer = "whsec_" + "WllaMDEyMzQ1Njc4OUFCQ0RFRkdISUpLTE1OT1BRUlM="
    outbox.secrets.insert(0, WebhookSecret("s2", "alice", newer, START))
    sender.deliver_due("alice", URL)
    headers, body = receiver.requests[0]
    assert len(headers["webhook-signature"].split()) == 2  # a rotation: old and new both sign
    verify_webhook(SECRET, headers, body)
    verify_webhook(newer, headers, body)
