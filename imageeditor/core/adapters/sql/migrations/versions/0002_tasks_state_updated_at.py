"""Index tasks by (state, updated_at) for the reconciler; it replaces the index on state alone.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-30

The reconciler asks every few seconds for tasks left QUEUED or RUNNING since before some
time (TaskStore.stale_tasks). The composite index answers that with a range scan, and any
query on state alone uses its first column, so the single-column index is dropped rather
than kept as a second index for every transition to update.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_state_updated_at", "tasks", ["state", "updated_at"])
    op.drop_index("ix_tasks_state", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.drop_index("ix_tasks_state_updated_at", table_name="tasks")
