"""The SQLAlchemy task and callback stores (SQLite and PostgreSQL, same code), their tables,
the callback outbox and the Alembic migrations."""
