"""Engines for the task store, and the migrations that bring a database to the current schema.

SQLite (embedded mode) and PostgreSQL (`postgresql+psycopg://`) are the supported backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from imageeditor.core.sealing import Sealer

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 5000
# An unreachable PostgreSQL host fails a call within seconds (UNAVAILABLE), not a TCP timeout.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5


def create_engine_for(url: str) -> Engine:
    """An engine for `url`, tuned for its backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # Connections in the pool die when PostgreSQL restarts or a proxy drops them: the ping
    # finds a dead one, the pool drops it (and every older one) and connects afresh, so the
    # store recovers by itself once the database is back.
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    )


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # The server's threads and the embedded workers share the pool.
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers (watchers, listings) proceed while a worker writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Writers wait for each other instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # SQLite enforces foreign keys only when asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at `url`, built without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The config is a ConfigParser: a literal % (as in an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, sealer: Sealer | None = None) -> None:
    """Apply every pending migration to the database at `url` (a no-op when it is current);
    `sealer` seals what is stored in clear, when a migration asks (0007)."""
    config = alembic_config(url)
    config.attributes["sealer"] = sealer
    command.upgrade(config, "head")
