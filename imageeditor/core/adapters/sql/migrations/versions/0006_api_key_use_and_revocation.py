"""API keys: when each was last used, and revocation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

`imageeditor keys list` shows both; `imageeditor keys revoke ID` sets revoked_at, and a
revoked key is refused (servers cache a key's record for a few seconds only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "revoked_at")
    op.drop_column("api_keys", "last_used_at")
