"""Alembic migrations of the task store; `editcore.store.engine.upgrade_database` runs them."""
