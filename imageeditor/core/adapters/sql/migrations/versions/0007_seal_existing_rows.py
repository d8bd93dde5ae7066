"""Encryption at rest: seal the URLs, prompts and secrets already stored.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

No schema change: sealed values go where the clear ones were (imageeditor.core.sealing). The rows
written before this revision are sealed here when the migrating process has the keys (the
server does: it migrates at start); otherwise they stay readable in clear until `imageeditor
db reencrypt` seals them.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from alembic import context, op

from imageeditor.core.adapters.sql.reseal import reseal
from imageeditor.core.sealing import Sealer

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

log = logging.getLogger(__name__)


def upgrade() -> None:
    sealer = context.config.attributes.get("sealer")
    if not isinstance(sealer, Sealer) or not sealer.enabled:
        log.warning("no encryption keys: stored values stay in clear until `db reencrypt`")
        return
    connection = op.get_bind()
    changed = reseal(lambda: nullcontext(connection), sealer)
    log.info("sealed existing values: %s", changed)


def downgrade() -> None:
    """Values stay sealed: reading them needs the keys, whatever the revision."""
