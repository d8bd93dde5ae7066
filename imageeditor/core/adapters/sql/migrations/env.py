"""Alembic's entry point: runs the migrations against the URL that `alembic_config` set.

Configured from code (imageeditor/core/adapters/sql/engine.py), so no alembic.ini is needed at run
time.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from imageeditor.core.adapters.sql.engine import create_engine_for
from imageeditor.core.adapters.sql.tables import metadata

# Any fixed number: the PostgreSQL advisory lock that serialises concurrent upgrades.
_MIGRATION_LOCK_KEY = 7_310_001


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the rest wait, then find nothing to do.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_migrations() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported; run them online")
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("the Alembic config has no sqlalchemy.url; use alembic_config(url)")
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


run_migrations()
