"""Alembic migrations of the task store, run by
`imageeditor.core.adapters.sql.engine.upgrade_database`."""
