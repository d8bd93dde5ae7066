"""The callback outbox and webhook secrets: every test runs on SQLite and on PostgreSQL.

Deliveries are only ever created by the task store's terminal transitions, so these tests make
them the same way: by finishing tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from alembic import command
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy import Engine, func, insert, select

from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import alembic_config, create_engine_for
from imageeditor.core.adapters.sql.rows import task_to_row
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.callbacks import (
    REJECTED,
    Attempt,
    Delivery,
    DeliveryState,
    EventType,
    batch_key,
    task_key,
)
from imageeditor.core.ports import Batch, WebhookSecret
from imageeditor.core.sealing import NO_SEALING
from imageeditor.core.task import Task, TaskError
from imageeditor.core.webhook_secrets import ensure_webhook_secret, rotate_webhook_secret
from tests.integration.store_parts import (
    BASE_TIME,
    RESULT,
    SPEC,
    make_batch,
    make_task,
    run_concurrently,
)

HOOK = SPEC.callback_url
LATER = BASE_TIME + timedelta(hours=1)  # when the tests look: every delivery made is due


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Stores:
    tasks: SqlTaskStore
    callbacks: SqlCallbackStore
    clock: Clock
    engine: Engine

    def all_deliveries(self) -> list[Delivery]:
        with self.engine.connect() as connection:
            keys = list(connection.scalars(select(tables.callback_deliveries.c.dedupe_key)))
        return list(self.callbacks.deliveries(keys).values())


@pytest.fixture
def stores(database_url: str) -> Iterator[Stores]:
    engine = create_engine_for(database_url)
    clock = Clock(LATER)
    yield Stores(SqlTaskStore(engine), SqlCallbackStore(engine, clock), clock, engine)
    engine.dispose()


def started(stores: Stores, task: Task) -> Task:
    """A new task, stored and RUNNING."""
    assert stores.tasks.create_task(task)[1]
    return started_item(stores, task)


def started_item(stores: Stores, task: Task) -> Task:
    """A stored task (a batch's item) RUNNING."""
    following = task.start(task.created_at + timedelta(seconds=1))
    assert stores.tasks.save_transition(following)
    return following


def finished(stores: Stores, task: Task, at: datetime | None = None) -> Task:
    """`task` (RUNNING) SUCCEEDED, stored."""
    done = task.succeed(RESULT, at or task.updated_at + timedelta(seconds=1))
    assert stores.tasks.save_transition(done)
    return done


def owed(stores: Stores, url: str = HOOK, user_id: str = "alice", at: datetime = BASE_TIME) -> Task:
    """A task of `user_id` that finished at `at`, owing a delivery to `url`."""
    task = make_task(user_id, created_at=at - timedelta(seconds=2))
    return finished(
        stores, started(stores, replace(task, spec=replace(SPEC, callback_url=url))), at
    )


def claim(
    stores: Stores, url: str = HOOK, lease: timedelta = timedelta(seconds=30), limit: int = 10
) -> tuple[str, list[Delivery]]:
    now = stores.clock.now
    return stores.callbacks.claim_deliveries("alice", url, now, now + lease, limit)


def attempt(status: int = 500) -> Attempt:
    return Attempt(
        at=LATER, http_status=status, error="" if status < 300 else "boom", duration_ms=7
    )


# -- the outbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "event"),
    [
        (lambda t, at: t.succeed(RESULT, at), EventType.TASK_SUCCEEDED),
        (lambda t, at: t.fail(TaskError("INTERNAL", "BOOM", "boom"), at), EventType.TASK_FAILED),
        (lambda t, at: t.cancel(at), EventType.TASK_CANCELLED),
    ],
)
def test_a_terminal_transition_owes_one_pending_delivery(
    stores: Stores, finish: Callable[[Task, datetime], Task], event: EventType
) -> None:
    running = started(stores, make_task("alice"))
    done = finish(running, BASE_TIME + timedelta(seconds=9))
    assert stores.tasks.save_transition(done)

    (delivery,) = stores.all_deliveries()
    assert delivery == Delivery(
        id=delivery.id,
        user_id="alice",
        url=HOOK,
        event_type=event,
        created_at=done.updated_at,
        task_id=done.id,
        state=DeliveryState.PENDING,
        next_attempt_at=done.updated_at,
    )
    assert uuid.UUID(delivery.id)
    assert stores.callbacks.deliveries([task_key(done.id)]) == {task_key(done.id): delivery}


def test_non_terminal_transitions_owe_nothing(stores: Stores) -> None:
    running = started(stores, make_task())
    for change in (lambda t: t.request_cancel(), lambda t: t.requeue(), lambda t: t.start()):
        running = change(running)
        assert stores.tasks.save_transition(running)

    assert stores.all_deliveries() == []


def test_a_task_without_a_callback_url_owes_nothing(stores: Stores) -> None:
    finished(stores, started(stores, replace(make_task(), spec=replace(SPEC, callback_url=""))))

    assert stores.all_deliveries() == []


def test_a_lost_compare_and_set_owes_nothing(stores: Stores) -> None:
    running = started(stores, make_task())
    finished(stores, running)

    late = running.fail(TaskError("INTERNAL", "X", "x"), running.updated_at)
    assert not stores.tasks.save_transition(late)
    assert [d.event_type for d in stores.all_deliveries()] == [EventType.TASK_SUCCEEDED]


def test_the_delivery_carries_the_trace_of_the_transition(stores: Stores) -> None:
    running = started(stores, make_task())
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        finished(stores, running)

    (delivery,) = stores.all_deliveries()
    assert delivery.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_batch_owes_its_event_when_its_last_item_finishes(stores: Stores) -> None:
    batch, items = make_batch(size=3)
    stores.tasks.create_batch(batch, items)
    running = [started_item(stores, task) for task in items]

    for task in running[:2]:
        finished(stores, task)
        assert stores.callbacks.deliveries([batch_key(batch.id)]) == {}
    last = finished(stores, running[2])

    owed_now = stores.callbacks.deliveries([batch_key(batch.id)])
    assert list(owed_now) == [batch_key(batch.id)]
    delivery = owed_now[batch_key(batch.id)]
    assert (delivery.event_type, delivery.batch_id, delivery.task_id) == (
        EventType.BATCH_COMPLETED,
        batch.id,
        "",
    )
    assert (delivery.user_id, delivery.url, delivery.state) == (
        "alice",
        batch.callback_url,
        DeliveryState.PENDING,
    )
    assert delivery.next_attempt_at == last.updated_at
    # The items' own events, plus the batch's: four in all.
    assert len(stores.all_deliveries()) == 4


def test_a_batch_without_a_callback_url_owes_no_batch_event(stores: Stores) -> None:
    batch, items = make_batch(size=1)
    batch = replace(batch, callback_url="")
    stores.tasks.create_batch(batch, items)
    finished(stores, started_item(stores, items[0]))

    assert [d.event_type for d in stores.all_deliveries()] == [EventType.TASK_SUCCEEDED]


def test_an_empty_batch_owes_its_event_at_once(stores: Stores) -> None:
    batch = Batch(str(uuid.uuid4()), "alice", "", "https://hooks.example.com/b", (), BASE_TIME)

    stores.tasks.create_batch(batch, [])

    (delivery,) = stores.all_deliveries()
    assert (delivery.event_type, delivery.batch_id, delivery.next_attempt_at) == (
        EventType.BATCH_COMPLETED,
        batch.id,
        BASE_TIME,
    )


def test_items_finishing_at_once_owe_exactly_one_batch_event(stores: Stores) -> None:
    for _ in range(8):
        batch, items = make_batch(size=2)
        stores.tasks.create_batch(batch, items)
        running = [started_item(stores, task) for task in items]
        done = [task.succeed(RESULT, BASE_TIME + timedelta(seconds=5)) for task in running]

        saved = run_concurrently(
            [lambda task=task: stores.tasks.save_transition(task) for task in done]
        )

        assert saved == [True, True]
        assert list(stores.callbacks.deliveries([batch_key(batch.id)])) == [batch_key(batch.id)]


# -- claiming, finishing, releasing -----------------------------------------------------------


def test_never_tried_deliveries_are_claimed_together_up_to_the_limit(stores: Stores) -> None:
    tasks = [owed(stores, at=BASE_TIME + timedelta(seconds=i)) for i in range(4)]
    owed(stores, url="https://hooks.example.com/other")

    _, first = claim(stores, limit=3)
    _, second = claim(stores, limit=3)
    _, third = claim(stores, limit=3)

    assert [d.task_id for d in first] == [t.id for t in tasks[:3]]
    assert [d.task_id for d in second] == [tasks[3].id]
    assert third == []


def test_a_delivery_tried_before_goes_alone(stores: Stores) -> None:
    tasks = [owed(stores, at=BASE_TIME + timedelta(seconds=i)) for i in range(3)]
    token, group = claim(stores)
    retried = group[0].retry_at(attempt(), BASE_TIME)  # still the earliest due
    assert stores.callbacks.finish_deliveries(token, [retried, *group[1:]]) == 3

    token, alone = claim(stores)
    assert alone == [retried]
    stores.callbacks.finish_deliveries(token, [retried.delivered(attempt(200))])
    _, rest = claim(stores)
    assert [d.task_id for d in rest] == [t.id for t in tasks[1:]]


def test_a_group_leaves_out_a_delivery_tried_before(stores: Stores) -> None:
    tasks = [owed(stores, at=BASE_TIME + timedelta(seconds=i)) for i in range(3)]
    token, group = claim(stores)
    retried = group[0].retry_at(attempt(), BASE_TIME + timedelta(minutes=5))  # due last now
    stores.callbacks.finish_deliveries(token, [retried, *group[1:]])

    _, fresh = claim(stores)
    _, alone = claim(stores)

    assert [d.task_id for d in fresh] == [t.id for t in tasks[1:]]
    assert alone == [retried]


def test_a_leased_delivery_is_not_claimed_again_until_its_lease_runs_out(stores: Stores) -> None:
    owed(stores)
    old_token, (held,) = claim(stores, lease=timedelta(seconds=30))

    assert claim(stores)[1] == []
    assert stores.callbacks.due_targets(LATER, 10) == []

    stores.clock.now = LATER + timedelta(seconds=31)
    new_token, (taken_over,) = claim(stores)
    assert taken_over == held and new_token != old_token

    # The first sender comes back late: its finish writes nothing.
    assert stores.callbacks.finish_deliveries(old_token, [held.delivered(attempt(200))]) == 0
    assert stores.callbacks.deliveries([held.key])[held.key].state is DeliveryState.PENDING
    failed = taken_over.failed(attempt(400), REJECTED)
    assert stores.callbacks.finish_deliveries(new_token, [failed]) == 1
    assert stores.callbacks.deliveries([held.key])[held.key] == failed


def test_racing_claims_never_hold_one_delivery_twice(stores: Stores) -> None:
    for _ in range(5):
        for _ in range(3):
            owed(stores)

        claims = run_concurrently([lambda: claim(stores, lease=timedelta(hours=1))] * 4)

        claimed = [d.id for _, group in claims for d in group]
        assert len(claimed) == len(set(claimed)) > 0
        stores.callbacks.release_claims()
        while (held := claim(stores))[1]:  # deliver them: out of the next round's way
            stores.callbacks.finish_deliveries(
                held[0], [d.delivered(attempt(200)) for d in held[1]]
            )


def test_finishing_round_trips_the_attempts_and_state(stores: Stores) -> None:
    for _ in range(3):
        owed(stores)
    token, (a, b, c) = claim(stores)
    retry = a.retry_at(attempt(503), LATER + timedelta(seconds=5))
    delivered = b.delivered(attempt(204))
    failed = c.failed(Attempt(at=LATER, error="refused", duration_ms=3), REJECTED)

    assert stores.callbacks.finish_deliveries(token, [retry, delivered, failed]) == 3

    stored = stores.callbacks.deliveries([a.key, b.key, c.key])
    assert stored == {a.key: retry, b.key: delivered, c.key: failed}
    assert stored[a.key].attempts[0].at == LATER
    # Released: the retry is claimable again once due.
    stores.clock.now = LATER + timedelta(seconds=5)
    assert claim(stores)[1] == [retry]


def test_finishing_with_a_foreign_or_malformed_token_writes_nothing(stores: Stores) -> None:
    owed(stores)
    _, (held,) = claim(stores)
    done = held.delivered(attempt(200))

    assert stores.callbacks.finish_deliveries(str(uuid.uuid4()), [done]) == 0
    assert stores.callbacks.finish_deliveries("not-a-token", [done]) == 0
    assert stores.callbacks.deliveries([held.key])[held.key] == held


def test_release_claims_frees_every_lease(stores: Stores) -> None:
    owed(stores)
    owed(stores, url="https://hooks.example.com/other")
    claim(stores, lease=timedelta(hours=1))
    claim(stores, url="https://hooks.example.com/other", lease=timedelta(hours=1))

    assert stores.callbacks.release_claims() == 2

    assert len(claim(stores)[1]) == 1
    assert stores.callbacks.release_claims() == 1


def test_due_targets_are_the_distinct_targets_with_due_unleased_pending_deliveries(
    stores: Stores,
) -> None:
    owed(stores, url="https://a.example.com", at=BASE_TIME + timedelta(seconds=2))
    owed(stores, url="https://a.example.com", at=BASE_TIME + timedelta(seconds=3))
    owed(stores, url="https://a.example.com", user_id="bob", at=BASE_TIME + timedelta(seconds=1))
    owed(stores, url="https://later.example.com", at=LATER + timedelta(seconds=1))  # not due
    owed(stores, url="https://leased.example.com")
    claim(stores, url="https://leased.example.com")
    owed(stores, url="https://done.example.com")
    token, (done,) = claim(stores, url="https://done.example.com")
    stores.callbacks.finish_deliveries(token, [done.delivered(attempt(200))])

    assert stores.callbacks.due_targets(LATER, 10) == [
        ("bob", "https://a.example.com"),  # the longest due first
        ("alice", "https://a.example.com"),
    ]
    assert stores.callbacks.due_targets(LATER, 1) == [("bob", "https://a.example.com")]


def test_nothing_due_claims_nothing(stores: Stores) -> None:
    owed(stores, at=LATER + timedelta(minutes=1))

    token, claimed = claim(stores)

    assert claimed == [] and uuid.UUID(token)


# -- lookups ----------------------------------------------------------------------------------


def test_deliveries_are_found_by_their_keys(stores: Stores) -> None:
    batch = Batch(str(uuid.uuid4()), "alice", "", "https://hooks.example.com/b", (), BASE_TIME)
    stores.tasks.create_batch(batch, [])
    task = owed(stores)
    owed(stores)

    found = stores.callbacks.deliveries(
        [task_key(task.id), batch_key(batch.id), task_key(str(uuid.uuid4()))]
    )

    assert sorted(found) == sorted([task_key(task.id), batch_key(batch.id)])
    assert found[task_key(task.id)].task_id == task.id
    assert found[batch_key(batch.id)].batch_id == batch.id
    assert stores.callbacks.deliveries([]) == {}


def test_an_endpoint_is_disabled_per_user(stores: Stores) -> None:
    assert not stores.callbacks.endpoint_disabled("alice", HOOK)

    stores.callbacks.disable_endpoint("alice", HOOK, "ENDPOINT_GONE", LATER)
    stores.callbacks.disable_endpoint("alice", HOOK, "ENDPOINT_GONE", LATER)  # again: no error

    assert stores.callbacks.endpoint_disabled("alice", HOOK)
    assert not stores.callbacks.endpoint_disabled("bob", HOOK)
    assert not stores.callbacks.endpoint_disabled("alice", HOOK + "/other")


def test_an_operator_can_enable_a_disabled_endpoint_again(stores: Stores) -> None:
    stores.callbacks.disable_endpoint("alice", HOOK, "ENDPOINT_GONE", LATER)

    assert stores.callbacks.enable_endpoint("alice", HOOK)

    assert not stores.callbacks.endpoint_disabled("alice", HOOK)
    assert not stores.callbacks.enable_endpoint("alice", HOOK)  # nothing left to enable


def test_a_finished_delivery_can_be_sent_again_keeping_its_attempts(stores: Stores) -> None:
    owed(stores)
    owed(stores)
    token, (failed, delivered) = claim(stores)
    gave_up = failed.failed(attempt(410), "ENDPOINT_GONE")
    stores.callbacks.finish_deliveries(token, [gave_up, delivered.delivered(attempt(204))])
    later = LATER + timedelta(minutes=5)

    again = stores.callbacks.redeliver(failed.id, later)

    assert again is not None
    assert (again.state, again.next_attempt_at, again.failure_reason) == (
        DeliveryState.PENDING,
        later,
        "",
    )
    assert again.attempts == gave_up.attempts and again.id == failed.id
    assert stores.callbacks.deliveries([failed.key])[failed.key] == again
    resent = stores.callbacks.redeliver(delivered.id, later)
    assert resent is not None and resent.delivered_at is None
    assert resent.state is DeliveryState.PENDING
    assert stores.callbacks.redeliver(failed.id, LATER) == again  # pending: left as it is
    assert stores.callbacks.redeliver(str(uuid.uuid4()), later) is None
    assert stores.callbacks.redeliver("not-an-id", later) is None
    stores.clock.now = later
    assert [d.id for d in claim(stores)[1]] == [failed.id]  # tried before: alone


# -- webhook secrets --------------------------------------------------------------------------


def secret(user_id: str, minutes: int, expires_in: int | None = None) -> WebhookSecret:
    created = BASE_TIME + timedelta(minutes=minutes)
    expires = None if expires_in is None else created + timedelta(minutes=expires_in)
    return WebhookSecret(str(uuid.uuid4()), user_id, f"whsec_{minutes}", created, expires)


def test_active_secrets_come_newest_first_and_expired_ones_not_at_all(stores: Stores) -> None:
    old, expiring, new = secret("alice", 0), secret("alice", 1, expires_in=10), secret("alice", 2)
    for record in (new, secret("bob", 3), old, expiring):
        stores.callbacks.add_webhook_secret(record)

    assert stores.callbacks.webhook_secrets("alice", BASE_TIME + timedelta(minutes=5)) == [
        new,
        expiring,
        old,
    ]
    assert stores.callbacks.webhook_secrets("alice", BASE_TIME + timedelta(minutes=11)) == [
        new,
        old,
    ]
    assert stores.callbacks.webhook_secrets("carol", BASE_TIME) == []


def test_expiring_keeps_an_earlier_expiry(stores: Stores) -> None:
    soon, forever = secret("alice", 0, expires_in=5), secret("alice", 1)
    stores.callbacks.add_webhook_secret(soon)
    stores.callbacks.add_webhook_secret(forever)
    stores.callbacks.add_webhook_secret(secret("bob", 2))

    stores.callbacks.expire_webhook_secrets("alice", BASE_TIME + timedelta(minutes=30))

    at_ten = stores.callbacks.webhook_secrets("alice", BASE_TIME + timedelta(minutes=10))
    assert at_ten == [replace(forever, expires_at=BASE_TIME + timedelta(minutes=30))]
    assert stores.callbacks.webhook_secrets("bob", BASE_TIME + timedelta(days=9)) != []


def test_ensure_makes_a_secret_only_when_there_is_none(stores: Stores) -> None:
    (made,) = ensure_webhook_secret(stores.callbacks, "alice", BASE_TIME)

    assert made.secret.startswith("whsec_")
    assert ensure_webhook_secret(stores.callbacks, "alice", LATER) == [made]


def test_a_rotation_keeps_the_old_secret_signing_for_the_overlap(stores: Stores) -> None:
    (old,) = ensure_webhook_secret(stores.callbacks, "alice", BASE_TIME)

    new = rotate_webhook_secret(stores.callbacks, "alice", timedelta(hours=2), LATER)

    old_until = replace(old, expires_at=LATER + timedelta(hours=2))
    assert ensure_webhook_secret(stores.callbacks, "alice", LATER) == [new, old_until]
    after = LATER + timedelta(hours=2)
    assert ensure_webhook_secret(stores.callbacks, "alice", after) == [new]


def test_a_rotation_without_overlap_stops_the_old_secret_at_once(stores: Stores) -> None:
    ensure_webhook_secret(stores.callbacks, "alice", BASE_TIME)

    new = rotate_webhook_secret(stores.callbacks, "alice", timedelta(0), LATER)

    assert stores.callbacks.webhook_secrets("alice", LATER) == [new]


# -- the migration ------------------------------------------------------------------------------


LATER_COLUMNS = ("request_digest", "admitted", "stage_timings", "content_key", "reused_from")


def test_the_migration_counts_each_batchs_unfinished_tasks(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0002")
    engine = create_engine_for(empty_database_url)
    batch, items = make_batch(size=3)
    states = ["queued", "running", "succeeded"]
    try:
        with engine.begin() as connection:
            row = {
                "id": uuid.UUID(batch.id),
                "user_id": batch.user_id,
                "callback_url": batch.callback_url,
                "task_ids": list(batch.task_ids),
                "created_at": batch.created_at,
            }
            connection.execute(insert(tables.batches).values(row))
            for task, state in zip(items, states, strict=True):
                row = {**task_to_row(task, NO_SEALING), "state": state}
                for later in LATER_COLUMNS:  # what revisions after 0002 added
                    del row[later]
                connection.execute(insert(tables.tasks).values(row))
        command.upgrade(config, "head")
        b = tables.batches
        with engine.connect() as connection:
            assert connection.scalar(select(b.c.unfinished)) == 2

        command.downgrade(config, "0002")  # the downgrade leaves the older schema working
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(tables.tasks)) == 3
        command.upgrade(config, "head")
    finally:
        engine.dispose()


def test_the_backlog_counts_pending_deliveries_only(stores: Stores) -> None:
    assert stores.callbacks.count_pending() == 0
    owed(stores)
    owed(stores, url=HOOK + "/other")
    assert stores.callbacks.count_pending() == 2
    token, claimed = claim(stores)
    delivered = [d.delivered(attempt(204)) for d in claimed]
    stores.callbacks.finish_deliveries(token, delivered)
    assert stores.callbacks.count_pending() == 1
