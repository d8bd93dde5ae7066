"""The relational schema of the task store, as SQLAlchemy Core tables.

The Alembic migrations in `migrations/versions/` beside this module create exactly this schema
(a test compares them). Image bytes never go in here: a task row names its input and result blobs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
    true,
)

# Deterministic constraint names, so later migrations can alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back in UTC.

    SQLite keeps no offset (it would silently drop a non-UTC one), and PostgreSQL answers in
    the session's time zone; converting on the way in and out makes both behave the same.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Batches come first: tasks refer to them.
batches = Table(
    "batches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(255), nullable=False),
    # NULL when the client sent none, so the unique constraint binds only real request ids.
    Column("request_id", String(255), nullable=True),
    Column("callback_url", String(2048), nullable=False),
    # The batch's task ids in submission order: replies list results in that order.
    Column("task_ids", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # How many of its tasks are not terminal yet: the transition that brings it to 0 owes the
    # batch.completed callback (imageeditor/core/adapters/sql/outbox.py). Every insert sets it; the
    # server
    # default exists because SQLite adds a NOT NULL column only with one (migration 0003).
    Column("unfinished", Integer, nullable=False, server_default="0"),
    # AIP-155: the digest of the request (a different one under the same request_id is
    # refused), and the items it refused at submit, [{position, code, reason, message,
    # field_violations}], so that a retry answers as the first call did. NULL before 0004.
    Column("request_digest", String(64), nullable=True),
    Column("rejected", JSON(none_as_null=True), nullable=True),
    UniqueConstraint("user_id", "request_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("request_id", String(255), nullable=True),  # NULL when empty, as in batches
    Column("batch_id", Uuid, ForeignKey("batches.id"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("spec", JSON, nullable=False),
    # none_as_null: a missing error or result is SQL NULL, not the JSON value null.
    Column("error", JSON(none_as_null=True), nullable=True),
    Column("result", JSON(none_as_null=True), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("processing_ms", Integer, nullable=True),
    Column("request_digest", String(64), nullable=True),  # as batches.request_digest
    # Fairness: whether the task may be dispatched yet
    # (imageeditor.core.ports.TaskStore.admit_waiting).
    Column("admitted", Boolean, nullable=False, server_default=true()),
    # The stages of the current (or last) run: [{stage, started_at, ms}] (NULL: none yet).
    Column("stage_timings", JSON(none_as_null=True), nullable=True),
    # Result reuse (imageeditor.core.reuse): the digest identical tasks share, and the task
    # whose result this one took (or, while QUEUED, waits for).
    Column("content_key", String(64), nullable=True),
    Column("reused_from", Uuid, nullable=True),
    UniqueConstraint("user_id", "request_id"),
    Index("ix_tasks_created_at", "created_at"),
    # The reconciler's query (stale_tasks); also serves any query on state alone.
    Index("ix_tasks_state_updated_at", "state", "updated_at"),
    Index("ix_tasks_user_id_created_at", "user_id", "created_at"),
    Index("ix_tasks_batch_id", "batch_id"),
    # A user's dispatched tasks are counted, and their waiting ones taken oldest first.
    Index("ix_tasks_user_id_state", "user_id", "state"),
    Index("ix_tasks_content_key_state", "content_key", "state"),
    Index("ix_tasks_reused_from", "reused_from"),
)

task_labels = Table(
    "task_labels",
    metadata,
    Column("task_id", Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", String(255), nullable=False),
    Index("ix_task_labels_key_value", "key", "value"),
)

# The event log WatchTask replays: the whole task as of each version.
task_events = Table(
    "task_events",
    metadata,
    Column("task_id", Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("snapshot", JSON, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),  # kept to the minute
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_api_keys_key_hash", "key_hash", unique=True),
)

# The callback outbox (imageeditor.core.callbacks.Delivery): written in the transaction of the
# terminal
# transition that owes the event, then claimed, posted and updated by the senders.
callback_deliveries = Table(
    "callback_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),  # the event id receivers deduplicate on
    # task_key / batch_key: one event per task and per batch, whatever retries the transition.
    Column("dedupe_key", String(80), nullable=False, unique=True),
    Column("user_id", String(255), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("task_id", Uuid, nullable=True),
    Column("batch_id", Uuid, nullable=True),
    Column("state", String(16), nullable=False),
    Column("attempts", JSON, nullable=False),  # [{at, http_status, error, duration_ms}, ...]
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("failure_reason", String(64), nullable=False, server_default=text("''")),
    Column("traceparent", String(64), nullable=False, server_default=text("''")),
    Column("created_at", UtcDateTime, nullable=False),
    # Set while a sender holds the delivery; a lease that ran out may be taken over.
    Column("claim_token", Uuid, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    # The sweep's query (due_targets): due PENDING rows across every target.
    Index("ix_callback_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    # A sender's query (claim_deliveries): one target's due PENDING rows, earliest first.
    Index(
        "ix_callback_deliveries_user_id_url_state_next_attempt_at",
        "user_id",
        "url",
        "state",
        "next_attempt_at",
    ),
)

# URLs that answered 410 Gone: nothing more is sent to them for that user.
callback_endpoints = Table(
    "callback_endpoints",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("url", String(2048), primary_key=True),
    Column("disabled_at", UtcDateTime, nullable=False),
    Column("reason", String(64), nullable=False),
)

# The secrets that sign a user's callbacks; kept in the clear, because signing needs them.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),  # NULL: signs until the next rotation
    Index("ix_webhook_secrets_user_id", "user_id"),
)
