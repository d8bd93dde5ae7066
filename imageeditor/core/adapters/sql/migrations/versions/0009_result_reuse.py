"""Result reuse: the digest identical tasks share, and the task whose result one took.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Both NULL for the rows from before this revision: their results are not offered for reuse.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("content_key", sa.String(64), nullable=True))
    op.add_column("tasks", sa.Column("reused_from", sa.Uuid(), nullable=True))
    op.create_index("ix_tasks_content_key_state", "tasks", ["content_key", "state"])
    op.create_index("ix_tasks_reused_from", "tasks", ["reused_from"])


def downgrade() -> None:
    # In place on SQLite too (3.35+): batch mode would rebuild a table others refer to.
    op.drop_index("ix_tasks_reused_from", table_name="tasks")
    op.drop_index("ix_tasks_content_key_state", table_name="tasks")
    op.drop_column("tasks", "reused_from")
    op.drop_column("tasks", "content_key")
