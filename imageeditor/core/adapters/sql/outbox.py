"""The outbox write: the callbacks a terminal transition owes, recorded in its own transaction.

`SqlTaskStore` calls these inside the transaction that commits the transition (or creates the
batch), so an event is owed exactly when the change that owes it is committed: a crash
either loses both or keeps both. Senders find the rows later (callback_store.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.rows import delivery_to_row
from imageeditor.core.callbacks import Delivery, EventType, event_type_for
from imageeditor.core.ports import Batch
from imageeditor.core.sealing import Sealer
from imageeditor.core.task import Task
from imageeditor.core.telemetry import current_traceparent


def record_terminal_transition(connection: Connection, task: Task, sealer: Sealer) -> None:
    """Owe the callbacks of `task`'s terminal transition: its own event when it has a
    callback_url, and its batch's when it was the batch's last unfinished task."""
    if task.spec.callback_url:
        _owe(
            connection,
            sealer,
            Delivery(
                id=str(uuid.uuid4()),
                user_id=task.user_id,
                url=task.spec.callback_url,
                event_type=event_type_for(task.state),
                created_at=task.updated_at,
                task_id=task.id,
                next_attempt_at=task.updated_at,  # due at once
                traceparent=current_traceparent(),
            ),
        )
    if task.batch_id:
        _count_down(connection, uuid.UUID(task.batch_id), task.updated_at, sealer)


def record_empty_batch(connection: Connection, batch: Batch, sealer: Sealer) -> None:
    """A batch created without tasks is complete at once: owe its event now."""
    if not batch.task_ids and batch.callback_url:
        _owe_batch_completed(
            connection, sealer, batch.id, batch.user_id, batch.callback_url, batch.created_at
        )


def _count_down(connection: Connection, batch_id: uuid.UUID, now: datetime, sealer: Sealer) -> None:
    b = tables.batches
    # The UPDATE takes the batch row's lock until this transaction ends. When two of its
    # tasks finish at once on PostgreSQL, the second UPDATE waits for the first transaction,
    # then decrements the value it committed; each transaction reads back its own result,
    # so exactly one of them sees 0. (SQLite serialises writers: the same holds.) Reading
    # first and writing `read - 1` would let both see 1 and neither owe the event.
    connection.execute(update(b).where(b.c.id == batch_id).values(unfinished=b.c.unfinished - 1))
    row = connection.execute(
        select(b.c.unfinished, b.c.user_id, b.c.callback_url).where(b.c.id == batch_id)
    ).one_or_none()
    if row is not None and row.unfinished == 0 and row.callback_url:
        url = sealer.open(row.callback_url)
        _owe_batch_completed(connection, sealer, str(batch_id), row.user_id, url, now)


def _owe_batch_completed(
    connection: Connection, sealer: Sealer, batch_id: str, user_id: str, url: str, now: datetime
) -> None:
    _owe(
        connection,
        sealer,
        Delivery(
            id=str(uuid.uuid4()),
            user_id=user_id,
            url=url,
            event_type=EventType.BATCH_COMPLETED,
            created_at=now,
            batch_id=batch_id,
            next_attempt_at=now,
            traceparent=current_traceparent(),
        ),
    )


def _owe(connection: Connection, sealer: Sealer, delivery: Delivery) -> None:
    # The dedupe_key's unique constraint backs the state machine up: one event per task and
    # per batch (a second one would fail the transition instead of being sent twice).
    connection.execute(insert(tables.callback_deliveries), [delivery_to_row(delivery, sealer)])
