"""The task store and API key store on SQLAlchemy Core: SQLite embedded, PostgreSQL in production.

Every write is one transaction. Races are settled by the database, not by locks in here:
idempotent creates by the (user_id, request_id) unique constraints, transitions by a
compare-and-set on the task's version. A database outage leaves every public method as
`Unavailable` (imageeditor/core/adapters/sql/outage.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    RowMapping,
    Select,
    and_,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.outage import translate_outages
from imageeditor.core.adapters.sql.outbox import record_empty_batch, record_terminal_transition
from imageeditor.core.adapters.sql.reseal import Progress, reseal
from imageeditor.core.adapters.sql.rows import (
    api_key_from_row,
    api_key_to_row,
    batch_from_row,
    batch_to_row,
    event_row,
    label_rows,
    parse_uuid,
    task_from_row,
    task_to_row,
    transition_values,
)
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.ports import ApiKey, Batch, PageCursor, TaskQuery
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.snapshot import task_from_dict
from imageeditor.core.task import UNFINISHED_STATES, Task, TaskState

# Stays well under SQLite's limit on bound parameters in one statement.
_IN_CHUNK = 500


@translate_outages
class SqlTaskStore:
    """`TaskStore` and `ApiKeyStore` over a SQLAlchemy engine (see imageeditor/core/ports.py)."""

    def __init__(self, engine: Engine, sealer: Sealer = NO_SEALING) -> None:
        """`sealer` seals what tasks reveal (URLs, prompts) in every row and snapshot."""
        self._engine = engine
        self._sealer = sealer

    def close(self) -> None:
        """Close the engine's pooled connections (at shutdown)."""
        self._engine.dispose()

    def reseal(self, progress: Progress | None = None) -> dict[str, int]:
        """Seal every stored value again under the newest key
        (imageeditor/core/adapters/sql/reseal.py),
        a transaction per page of rows; how many rows changed, by table."""
        return reseal(self._engine.begin, self._sealer, progress)

    # -- tasks -----------------------------------------------------------------------------

    def create_task(self, task: Task) -> tuple[Task, bool]:
        """Insert the task, or return the user's task with the same request id."""
        return self.create_tasks([task])[0]

    def create_tasks(self, tasks: Sequence[Task]) -> list[tuple[Task, bool]]:
        """Insert the tasks in one transaction (a group commit); each comes back as stored
        and whether it was created now: a task whose (user, request id) exists already,
        stored before or earlier in `tasks`, is not inserted and comes back as the stored one."""
        if not tasks:
            return []
        with self._engine.begin() as connection:
            created = _insert_tasks(connection, tasks, self._sealer)
            outcomes: list[tuple[Task, bool]] = []
            for task in tasks:
                if task.id in created:
                    outcomes.append((task, True))
                    continue
                existing = self._task_by_request(task.user_id, task.request_id, connection)
                if existing is None:  # only a duplicate request id is ever skipped
                    raise RuntimeError(f"task {task.id} was neither inserted nor found")
                outcomes.append((existing, False))
        return outcomes

    def get_task(self, task_id: str, user_id: str | None = None) -> Task | None:
        """The task, or None when the id is unknown, malformed or someone else's."""
        key = parse_uuid(task_id)
        if key is None:
            return None
        statement = select(tables.tasks).where(tables.tasks.c.id == key)
        if user_id is not None:
            statement = statement.where(tables.tasks.c.user_id == user_id)
        found = self._load_tasks(statement)
        return found[0] if found else None

    def save_transition(self, task: Task) -> bool:
        """Compare-and-set: store `task` only if the stored version is `task.version - 1`;
        a terminal transition records the callbacks it owes in the same transaction."""
        t = tables.tasks
        with self._engine.begin() as connection:
            result = connection.execute(
                update(t)
                .where(t.c.id == uuid.UUID(task.id), t.c.version == task.version - 1)
                .values(transition_values(task, self._sealer))
            )
            if result.rowcount == 0:
                return False
            connection.execute(insert(tables.task_events), [event_row(task, self._sealer)])
            if task.state.terminal:
                record_terminal_transition(connection, task, self._sealer)
        return True

    def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        """The tasks with these ids that exist, in the order given (malformed ids find none)."""
        keys = [key for key in map(parse_uuid, task_ids) if key is not None]
        t = tables.tasks
        found: dict[uuid.UUID, Task] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            for task in self._load_tasks(select(t).where(t.c.id.in_(chunk))):
                found[uuid.UUID(task.id)] = task
        return [found[key] for key in keys if key in found]

    def list_tasks(
        self, query: TaskQuery, limit: int, after: PageCursor | None = None
    ) -> list[Task]:
        """A page of the user's matching tasks, newest first, after `after`."""
        t = tables.tasks
        statement = select(t).where(*_matching(query))
        if after is not None:
            statement = statement.where(_after(after))
        statement = statement.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        return self._load_tasks(statement)

    def list_events(self, task_id: str, after_version: int) -> list[Task]:
        """The task as of each version above `after_version`, oldest first."""
        key = parse_uuid(task_id)
        if key is None:
            return []
        e = tables.task_events
        statement = (
            select(e.c.snapshot)
            .where(e.c.task_id == key, e.c.version > after_version)
            .order_by(e.c.version)
        )
        with self._engine.connect() as connection:
            return [
                task_from_dict(snapshot, self._sealer) for snapshot in connection.scalars(statement)
            ]

    def unfinished_tasks(self) -> list[Task]:
        """Every QUEUED or RUNNING task, oldest first."""
        t = tables.tasks
        statement = (
            select(t)
            .where(t.c.state.in_(sorted(s.value for s in UNFINISHED_STATES)))
            .order_by(t.c.created_at, t.c.id)
        )
        return self._load_tasks(statement)

    def stale_tasks(self, state: TaskState, updated_before: datetime, limit: int) -> list[Task]:
        """Admitted tasks in `state` not changed since before `updated_before`, oldest change
        first (a task waiting for its admission is not stale: it waits by design)."""
        t = tables.tasks
        statement = (
            select(t)
            .where(t.c.state == state.value, t.c.updated_at < updated_before, t.c.admitted)
            .order_by(t.c.updated_at, t.c.id)
            .limit(limit)
        )
        return self._load_tasks(statement)

    def count_unfinished(self) -> dict[TaskState, int]:
        """QUEUED and RUNNING counts, one indexed GROUP BY (ix_tasks_state_updated_at)."""
        t = tables.tasks
        statement = (
            select(t.c.state, func.count())
            .where(t.c.state.in_(sorted(s.value for s in UNFINISHED_STATES)))
            .group_by(t.c.state)
        )
        with self._engine.connect() as connection:
            counts: dict[str, int] = {state: n for state, n in connection.execute(statement)}
        return {state: counts.get(state.value, 0) for state in sorted(UNFINISHED_STATES)}

    # -- result reuse ----------------------------------------------------------------------

    def reusable(self, content_keys: Sequence[str], finished_after: datetime) -> dict[str, Task]:
        """For each key, the task whose result an identical new task may take: the newest
        that SUCCEEDED after `finished_after`, else the oldest still QUEUED or RUNNING (to
        wait for). Two queries (ix_tasks_content_key_state), each reading at most one row a
        key however many identical tasks there are: a caller who submits the same job
        thousands of times makes no submit slower."""
        keys = sorted(set(content_keys))
        if not keys:
            return {}
        t = tables.tasks
        unfinished = sorted(s.value for s in UNFINISHED_STATES)
        succeeded = (t.c.state == TaskState.SUCCEEDED.value) & (t.c.finished_at >= finished_after)
        found: dict[str, Task] = {}
        with self._engine.connect() as connection:
            for condition, order in (
                (succeeded, (t.c.finished_at.desc(), t.c.id)),
                (t.c.state.in_(unfinished), (t.c.created_at, t.c.id)),
            ):
                rank = func.row_number().over(partition_by=t.c.content_key, order_by=order)
                ranked = (
                    select(t, rank.label("rank"))
                    .where(t.c.content_key.in_(keys), condition)
                    .subquery()
                )
                first = select(*(ranked.c[column.name] for column in t.c)).where(ranked.c.rank == 1)
                for task in self._load_tasks(first, connection):
                    if _better_source(task, found.get(task.content_key)):
                        found[task.content_key] = task
        return found

    def waiting_for(self, task_id: str) -> list[Task]:
        """The QUEUED tasks that wait for this task's result, oldest first."""
        key = parse_uuid(task_id)
        if key is None:
            return []
        t = tables.tasks
        statement = (
            select(t)
            .where(t.c.reused_from == key, t.c.state == TaskState.QUEUED.value)
            .order_by(t.c.created_at, t.c.id)
        )
        return self._load_tasks(statement)

    # -- admission -------------------------------------------------------------------------

    def admit_waiting(self, user_id: str, cap: int) -> list[Task]:
        """Admit the user's oldest waiting tasks while fewer than `cap` of theirs are admitted
        and unfinished; returns the tasks admitted now, oldest first.

        One statement, so SQLite holds its write lock throughout; on PostgreSQL, two at once
        pick the same rows in the same order and the second finds them admitted already."""
        t = tables.tasks
        unfinished = sorted(s.value for s in UNFINISHED_STATES)
        active = (
            select(func.count())
            .select_from(t)
            .where(t.c.user_id == user_id, t.c.admitted, t.c.state.in_(unfinished))
            .scalar_subquery()
        )
        place = func.row_number().over(order_by=(t.c.created_at, t.c.id)).label("place")
        waiting = (
            select(t.c.id, place)
            .where(t.c.user_id == user_id, t.c.state == TaskState.QUEUED.value, ~t.c.admitted)
            .subquery()
        )
        chosen = select(waiting.c.id).where(waiting.c.place <= cap - active)
        statement = (
            update(t).where(t.c.id.in_(chosen), ~t.c.admitted).values(admitted=True).returning(*t.c)
        )
        with self._engine.begin() as connection:  # the rows come back with the UPDATE
            found = self._with_labels(connection, connection.execute(statement).mappings().all())
        return sorted(found, key=lambda task: (task.created_at, task.id))

    def users_waiting(self, limit: int) -> list[str]:
        """Up to `limit` users with tasks waiting for their admission."""
        t = tables.tasks
        statement = (
            select(t.c.user_id)
            .where(t.c.state == TaskState.QUEUED.value, ~t.c.admitted)
            .distinct()
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return list(connection.scalars(statement))

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, batch: Batch, tasks: Sequence[Task]) -> tuple[Batch, bool]:
        """Insert the batch and its tasks, or return the user's batch with the same request id."""
        if batch.task_ids != tuple(task.id for task in tasks) or any(
            task.batch_id != batch.id for task in tasks
        ):
            raise ValueError("a batch's task_ids must list its tasks, in order")
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(tables.batches), [batch_to_row(batch, self._sealer)])
                _insert_tasks(connection, tasks, self._sealer)
                record_empty_batch(connection, batch, self._sealer)
        except IntegrityError:
            existing = self._batch_by_request(batch.user_id, batch.request_id)
            if existing is None:
                raise
            return existing, False
        return batch, True

    def get_batch(self, batch_id: str, user_id: str | None = None) -> Batch | None:
        """The batch, or None when the id is unknown, malformed or someone else's."""
        key = parse_uuid(batch_id)
        if key is None:
            return None
        statement = select(tables.batches).where(tables.batches.c.id == key)
        if user_id is not None:
            statement = statement.where(tables.batches.c.user_id == user_id)
        with self._engine.connect() as connection:
            row = connection.execute(statement).mappings().first()
        return batch_from_row(row, self._sealer) if row is not None else None

    # -- API keys --------------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> None:
        with self._engine.begin() as connection:
            connection.execute(insert(tables.api_keys), [api_key_to_row(key)])

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        statement = select(tables.api_keys).where(tables.api_keys.c.key_hash == key_hash)
        with self._engine.connect() as connection:
            row = connection.execute(statement).mappings().first()
        return api_key_from_row(row) if row is not None else None

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        k = tables.api_keys
        statement = select(k).order_by(k.c.created_at, k.c.id)
        if user_id is not None:
            statement = statement.where(k.c.user_id == user_id)
        with self._engine.connect() as connection:
            return [api_key_from_row(row) for row in connection.execute(statement).mappings()]

    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        key = parse_uuid(key_id)
        if key is None:
            return None
        k = tables.api_keys
        with self._engine.begin() as connection:
            connection.execute(
                update(k).where(k.c.id == key, k.c.revoked_at.is_(None)).values(revoked_at=at)
            )
            row = connection.execute(select(k).where(k.c.id == key)).mappings().first()
        return api_key_from_row(row) if row is not None else None

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        key = parse_uuid(key_id)
        if key is None:
            return
        k = tables.api_keys
        with self._engine.begin() as connection:
            connection.execute(update(k).where(k.c.id == key).values(last_used_at=at))

    # -- helpers ---------------------------------------------------------------------------

    def _task_by_request(
        self, user_id: str, request_id: str, connection: Connection | None = None
    ) -> Task | None:
        if not request_id:
            return None
        t = tables.tasks
        found = self._load_tasks(
            select(t).where(t.c.user_id == user_id, t.c.request_id == request_id), connection
        )
        return found[0] if found else None

    def _batch_by_request(self, user_id: str, request_id: str) -> Batch | None:
        if not request_id:
            return None
        b = tables.batches
        statement = select(b).where(b.c.user_id == user_id, b.c.request_id == request_id)
        with self._engine.connect() as connection:
            row = connection.execute(statement).mappings().first()
        return batch_from_row(row, self._sealer) if row is not None else None

    def _load_tasks(
        self, statement: Select[tuple[object, ...]], connection: Connection | None = None
    ) -> list[Task]:
        """Run a `select(tasks)` and attach each task's labels, keeping the row order (on
        `connection`, inside its transaction, when given)."""
        with contextlib.nullcontext(connection) if connection else self._engine.connect() as c:
            return self._with_labels(c, c.execute(statement).mappings().all())

    def _with_labels(self, connection: Connection, rows: Sequence[RowMapping]) -> list[Task]:
        """The tasks of these rows of `tasks`, their labels read (a query, if there are any)."""
        labels = _labels_of(connection, [row["id"] for row in rows]) if rows else {}
        return [task_from_row(row, labels[row["id"]], self._sealer) for row in rows]


def _matching(query: TaskQuery) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a listing: every given filter must hold."""
    t, labels = tables.tasks, tables.task_labels
    conditions = [t.c.user_id == query.user_id]
    if query.states:
        conditions.append(t.c.state.in_(sorted(state.value for state in query.states)))
    if query.batch_id:
        batch_key = parse_uuid(query.batch_id)
        # A malformed batch id names no batch: the listing is empty, not an error.
        conditions.append(t.c.batch_id == batch_key if batch_key is not None else false())
    for key, value in sorted(query.labels.items()):
        # One EXISTS per label keeps the filter in SQL, so LIMIT and the cursor stay exact.
        conditions.append(
            exists().where(labels.c.task_id == t.c.id, labels.c.key == key, labels.c.value == value)
        )
    if query.created_after is not None:
        conditions.append(t.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(t.c.created_at < query.created_before)
    return conditions


def _after(cursor: PageCursor) -> ColumnElement[bool]:
    """Keyset pagination: strictly after the cursor in (created_at, id) descending order."""
    cursor_id = parse_uuid(cursor.task_id)
    if cursor_id is None or cursor.created_at.tzinfo is None:
        # The cursor came from a client's page token; a forged one is their error, not ours.
        raise InvalidArgument(
            "page_token is not a token this service issued",
            field_violations={"page_token": "malformed page token"},
            reason="PAGE_TOKEN_INVALID",
        )
    t = tables.tasks
    return or_(
        t.c.created_at < cursor.created_at,
        and_(t.c.created_at == cursor.created_at, t.c.id < cursor_id),
    )


def _insert_tasks(connection: Connection, tasks: Sequence[Task], sealer: Sealer) -> set[str]:
    """Insert tasks with their labels and first events (in the caller's transaction),
    skipping any whose (user, request id) is taken; returns the ids inserted.

    Each table takes one executemany: psycopg sends it in pipeline mode (one round trip, a
    statement parsed once), SQLite runs it in-process. Tasks with a request id go through
    INSERT … ON CONFLICT DO NOTHING RETURNING, to learn which were taken; the others cannot
    conflict, and a batch's items never have one."""
    if not tasks:
        return set()
    deduplicated = [task for task in tasks if task.request_id]
    inserted = {task.id for task in tasks if not task.request_id}
    if deduplicated:
        statement = _insert_ignoring_conflicts(connection).returning(tables.tasks.c.id)
        rows = [task_to_row(task, sealer) for task in deduplicated]
        inserted |= {str(key) for key in connection.scalars(statement, rows)}
    plain = [task_to_row(task, sealer) for task in tasks if not task.request_id]
    if plain:
        connection.execute(insert(tables.tasks), plain)
    new = [task for task in tasks if task.id in inserted]
    labels = [row for task in new for row in label_rows(task)]
    if labels:
        connection.execute(insert(tables.task_labels), labels)
    if new:
        connection.execute(insert(tables.task_events), [event_row(t, sealer) for t in new])
    return inserted


def _insert_ignoring_conflicts(connection: Connection) -> Insert:
    """INSERT INTO tasks … ON CONFLICT (user_id, request_id) DO NOTHING, in the connection's
    dialect (any other conflict, such as a taken primary key, still raises)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    conflict = [tables.tasks.c.user_id, tables.tasks.c.request_id]
    statement: Insert = dialect.insert(tables.tasks).on_conflict_do_nothing(index_elements=conflict)
    return statement


def _labels_of(
    connection: Connection, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Each task's labels, in one query per chunk of ids rather than one per task."""
    found: dict[uuid.UUID, dict[str, str]] = {task_id: {} for task_id in task_ids}
    labels = tables.task_labels
    for start in range(0, len(task_ids), _IN_CHUNK):
        chunk = task_ids[start : start + _IN_CHUNK]
        statement = select(labels.c.task_id, labels.c.key, labels.c.value).where(
            labels.c.task_id.in_(chunk)
        )
        for task_id, key, value in connection.execute(statement):
            found[task_id][key] = value
    return found


def _better_source(candidate: Task, best: Task | None) -> bool:
    """Whether `candidate` beats `best` as the task to reuse: a result over a wait, the
    newest result, the oldest wait (the one most likely to finish first)."""
    if best is None:
        return True
    done, best_done = candidate.state is TaskState.SUCCEEDED, best.state is TaskState.SUCCEEDED
    if done != best_done:
        return done
    if done:
        return candidate.finished_at is not None and (
            best.finished_at is None or candidate.finished_at > best.finished_at
        )
    return (candidate.created_at, candidate.id) < (best.created_at, best.id)
