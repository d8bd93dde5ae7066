"""Alembic migrations of the task store, run by `editcore.adapters.sql.engine.upgrade_database`."""
