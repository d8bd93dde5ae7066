"""Request digests (AIP-155) and the items a batch refused at submit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

A request_id used again must be a retry of the same request: `tasks.request_digest` and
`batches.request_digest` keep a digest of the request that created them, and a different
request under the same id is refused (REQUEST_ID_REUSED). `batches.rejected` keeps the items
refused at submit with their errors, so a retried batch answers exactly as the first call
did. Rows from before this revision have no digest: their retries are not compared.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("request_digest", sa.String(64), nullable=True))
    op.add_column("batches", sa.Column("request_digest", sa.String(64), nullable=True))
    op.add_column("batches", sa.Column("rejected", sa.JSON(), nullable=True))


def downgrade() -> None:
    # In place on SQLite too (3.35+): batch mode would rebuild tables others refer to.
    op.drop_column("batches", "rejected")
    op.drop_column("batches", "request_digest")
    op.drop_column("tasks", "request_digest")
