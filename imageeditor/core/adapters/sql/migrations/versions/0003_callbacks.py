"""Callbacks: the delivery outbox, endpoints that answered 410, webhook secrets, and a count of
each batch's unfinished tasks.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-07

`batches.unfinished` lets the transition that finishes a batch's last task know it did, with
one row-locked UPDATE instead of counting the batch's tasks. Existing batches get the number
of their tasks still QUEUED or RUNNING, so a batch in flight during the upgrade still owes its
batch.completed event. The column keeps its server default: SQLite adds a NOT NULL column
only with a default, and dropping it afterwards would mean rebuilding `batches`, which tasks
refer to.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "batches", sa.Column("unfinished", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE batches SET unfinished = (SELECT count(*) FROM tasks"
        " WHERE tasks.batch_id = batches.id AND tasks.state IN ('queued', 'running'))"
    )
    op.create_table(
        "callback_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dedupe_key", sa.String(80), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        _timestamp("next_attempt_at", nullable=True),
        _timestamp("delivered_at", nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=False, server_default=sa.text("''")),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=sa.text("''")),
        _timestamp("created_at"),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        _timestamp("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callback_deliveries"),
        sa.UniqueConstraint("dedupe_key", name="uq_callback_deliveries_dedupe_key"),
    )
    op.create_index(
        "ix_callback_deliveries_state_next_attempt_at",
        "callback_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_callback_deliveries_user_id_url_state_next_attempt_at",
        "callback_deliveries",
        ["user_id", "url", "state", "next_attempt_at"],
    )
    op.create_table(
        "callback_endpoints",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        _timestamp("disabled_at"),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "url", name="pk_callback_endpoints"),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_secrets"),
    )
    op.create_index("ix_webhook_secrets_user_id", "webhook_secrets", ["user_id"])


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    op.drop_table("callback_endpoints")
    op.drop_table("callback_deliveries")
    # In place on SQLite too (3.35+): batch mode would rebuild `batches`, which tasks refer to.
    op.drop_column("batches", "unfinished")
