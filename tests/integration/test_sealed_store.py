"""Encryption at rest in the store, on SQLite and PostgreSQL: what a task reveals and the
webhook secrets are sealed in every table, found and read back as they were, across a key
rotation and after `db reencrypt`; rows written in clear are sealed by migration 0007."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, create_engine, insert, select, text

from imageeditor.core.adapters.sql import reseal as reseal_module
from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import alembic_config, create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.rows import batch_to_row, task_to_row
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.callbacks import DeliveryState, task_key
from imageeditor.core.ports import WebhookSecret
from imageeditor.core.sealing import NO_SEALING, Sealer, new_key
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskError, utcnow
from tests.integration.store_parts import BASE_TIME, make_batch

OLD, NEW = new_key(), new_key()
TOKENS = ("IMG-TOKEN-1", "HOOK-TOKEN-2", "BATCH-TOKEN-3", "PROMPT-TOKEN-4", "whsec_SECRET5")


def sensitive_task(batch_id: str = "") -> Task:
    spec = TaskSpec(
        image_url=f"https://images.example.com/a.png?sig={TOKENS[0]}",
        callback_url=f"https://hooks.example.com/in?token={TOKENS[1]}",
        style_prompt=f"a watercolour {TOKENS[3]}",
    )
    return Task(
        id=str(uuid.uuid4()),
        user_id="alice",
        spec=spec,
        batch_id=batch_id,
        created_at=BASE_TIME,
        updated_at=BASE_TIME,
    )


def everything_stored(engine: Engine) -> str:
    """Every row of every table, as text: what someone holding a copy of the database sees
    (the tables as the database has them: an older revision lacks later columns)."""
    stored = MetaData()
    stored.reflect(engine)
    with engine.connect() as connection:
        return "\n".join(
            str(row) for table in stored.sorted_tables for row in connection.execute(select(table))
        )


class Stores:
    def __init__(self, url: str, sealer: Sealer) -> None:
        self.engine = create_engine_for(url)
        self.tasks = SqlTaskStore(self.engine, sealer)
        self.callbacks = SqlCallbackStore(self.engine, sealer=sealer)


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


@pytest.fixture
def stores(url: str) -> Iterator[Stores]:
    made = Stores(url, Sealer.from_texts([OLD]))
    yield made
    made.engine.dispose()


def fill(stores: Stores) -> tuple[Task, str]:
    """A finished task with a callback, a batch of one with its own callback, a 410'd URL
    and a webhook secret: every place a revealing value is kept."""
    task, _ = stores.tasks.create_task(sensitive_task())
    stores.tasks.save_transition(task.start())
    running = stores.tasks.get_task(task.id)
    assert running is not None
    stores.tasks.save_transition(running.fail(TaskError("INTERNAL", "X", "x")))
    batch, items = make_batch(size=1)
    item = replace(sensitive_task(batch.id), id=items[0].id)
    batch = replace(batch, callback_url=f"https://hooks.example.com/b?t={TOKENS[2]}")
    stores.tasks.create_batch(batch, [item])
    stores.tasks.save_transition(item.start())
    stored_item = stores.tasks.get_task(item.id)
    assert stored_item is not None
    stores.tasks.save_transition(stored_item.fail(TaskError("INTERNAL", "X", "x")))
    stores.callbacks.disable_endpoint("alice", task.spec.callback_url, "GONE", utcnow())
    secret = WebhookSecret(str(uuid.uuid4()), "alice", TOKENS[4], utcnow())
    stores.callbacks.add_webhook_secret(secret)
    return task, batch.id


def test_nothing_revealing_is_stored_in_clear(stores: Stores) -> None:
    task, _ = fill(stores)

    dump = everything_stored(stores.engine)
    assert "enc1." in dump
    for token in TOKENS:
        assert token not in dump, token

    assert stores.tasks.get_task(task.id).spec == task.spec  # type: ignore[union-attr]
    events = stores.tasks.list_events(task.id, 0)
    assert {e.spec for e in events} == {task.spec}
    deliveries = stores.callbacks.deliveries([task_key(task.id)])
    assert deliveries[task_key(task.id)].url == task.spec.callback_url
    assert stores.callbacks.endpoint_disabled("alice", task.spec.callback_url)
    assert stores.callbacks.webhook_secrets("alice", utcnow())[0].secret == TOKENS[4]


def test_the_outbox_is_found_by_url_across_a_key_rotation(url: str, stores: Stores) -> None:
    task, _ = fill(stores)
    rotated = Stores(url, Sealer.from_texts([NEW, OLD]))
    try:
        hook = task.spec.callback_url
        assert rotated.callbacks.endpoint_disabled("alice", hook)
        targets = rotated.callbacks.due_targets(utcnow(), 10)
        assert ("alice", hook) in targets
        later = utcnow().replace(year=2100)
        _, claimed = rotated.callbacks.claim_deliveries("alice", hook, utcnow(), later, 10)
        assert task.id in {d.task_id for d in claimed}  # (the batch item's own event too)
        assert {d.state for d in claimed} == {DeliveryState.PENDING}
    finally:
        rotated.engine.dispose()


def test_reencrypt_moves_everything_to_the_newest_key(url: str, stores: Stores) -> None:
    task, batch_id = fill(stores)
    rotated = Stores(url, Sealer.from_texts([NEW, OLD]))
    try:
        changed = rotated.tasks.reseal()
        assert all(changed[name] > 0 for name in ("tasks", "task_events", "webhook_secrets"))
        assert rotated.tasks.reseal() == dict.fromkeys(changed, 0)  # idempotent
    finally:
        rotated.engine.dispose()

    only_new = Stores(url, Sealer.from_texts([NEW]))  # the old key can go now
    try:
        assert only_new.tasks.get_task(task.id).spec == task.spec  # type: ignore[union-attr]
        assert only_new.tasks.get_batch(batch_id).callback_url.endswith(TOKENS[2])  # type: ignore[union-attr]
        assert only_new.callbacks.endpoint_disabled("alice", task.spec.callback_url)
        assert only_new.callbacks.webhook_secrets("alice", utcnow())[0].secret == TOKENS[4]
        assert len(only_new.tasks.list_events(task.id, 0)) == 3
    finally:
        only_new.engine.dispose()


def test_reencrypt_walks_pages_of_its_own_and_keeps_what_it_did_when_stopped(
    url: str, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reseal_module, "PAGE", 2)
    for _ in range(5):
        stores.tasks.create_task(sensitive_task())
    rotated = Stores(url, Sealer.from_texts([NEW, OLD]))
    try:

        def stop_after_one_page(table: str, walked: int, total: int) -> None:
            raise KeyboardInterrupt  # the operator's ^C, after the first page's commit

        with pytest.raises(KeyboardInterrupt):
            rotated.tasks.reseal(stop_after_one_page)
        seen: list[tuple[str, int, int]] = []
        changed = rotated.tasks.reseal(lambda *report: seen.append(report))
        assert changed["tasks"] == 3  # the first page of two stayed sealed under NEW
        assert [r for r in seen if r[0] == "tasks"] == [
            ("tasks", 2, 5),
            ("tasks", 4, 5),
            ("tasks", 5, 5),
        ]
    finally:
        rotated.engine.dispose()


def test_the_migration_seals_rows_stored_in_clear(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0006")
    engine = create_engine(empty_database_url)
    task = sensitive_task()
    batch, _ = make_batch(size=0)
    batch = replace(batch, callback_url=f"https://hooks.example.com/b?t={TOKENS[2]}")
    try:
        with engine.begin() as connection:
            connection.execute(insert(tables.batches).values(batch_to_row(batch, NO_SEALING)))
            row = task_to_row(task, NO_SEALING)
            for later in ("stage_timings", "content_key", "reused_from"):  # later revisions
                del row[later]
            connection.execute(insert(tables.tasks).values(row))
        assert TOKENS[0] in everything_stored(engine)

        sealer = Sealer.from_texts([NEW])
        upgrade_database(empty_database_url, sealer)

        dump = everything_stored(engine)
        assert TOKENS[0] not in dump and TOKENS[2] not in dump
        store = SqlTaskStore(engine, sealer)
        assert store.get_task(task.id).spec == task.spec  # type: ignore[union-attr]
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM tasks")).scalar() == 1
    finally:
        engine.dispose()
