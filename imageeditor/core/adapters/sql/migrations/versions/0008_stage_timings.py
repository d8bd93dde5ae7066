"""Per-stage timings: each task keeps when its run entered each stage and how long it stayed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

A JSON list, [{stage, started_at, ms}], written with every transition of a run; NULL for the
rows of runs from before this revision (and for tasks that never started).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("stage_timings", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # In place on SQLite too (3.35+): batch mode would rebuild a table others refer to.
    op.drop_column("tasks", "stage_timings")
