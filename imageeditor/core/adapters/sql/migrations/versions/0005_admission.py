"""Fairness between users: a task is dispatched only once admitted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

At most IMAGEEDITOR_MAX_DISPATCHED_PER_USER tasks of one user are admitted (in the broker, or
running) at once; the rest wait in the store, oldest first, and are admitted as earlier ones
finish. Rows from before this revision count as admitted (they were all dispatched). The
index serves the count of a user's admitted tasks and the choice of the waiting ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("admitted", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.create_index("ix_tasks_user_id_state", "tasks", ["user_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_tasks_user_id_state", table_name="tasks")
    # In place on SQLite too (3.35+): batch mode would rebuild a table others refer to.
    op.drop_column("tasks", "admitted")
