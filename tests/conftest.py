"""Fixtures shared by the test suites, one section per thing they provide."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from editcore.store import tables
from editcore.store.engine import create_engine_for, upgrade_database
from editcore.store.sql_store import SqlStore

# -- Databases: the task store on SQLite and on PostgreSQL --------------------------------------

DEFAULT_POSTGRES_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_unavailable(reason: str) -> NoReturn:
    # CI must prove the PostgreSQL adapter; a developer without the server can still run the rest.
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the test PostgreSQL server, for creating and dropping databases.

    The server is IMAGEEDITOR_TEST_POSTGRES_URL (any database on it), else the local one.
    """
    server_url = make_url(
        os.environ.get("IMAGEEDITOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_SERVER_URL)
    )
    admin = create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        _postgres_unavailable(f"PostgreSQL unreachable at {server_url!r}: {exc.orig}")
    yield admin
    admin.dispose()


@contextmanager
def _throwaway_database(admin: Engine) -> Iterator[str]:
    name = f"imageeditor_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # FORCE: a test that leaked a connection must not keep the database alive.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres_server: Engine) -> Iterator[str]:
    """A throwaway, empty PostgreSQL database for this session, dropped at its end."""
    with _throwaway_database(postgres_server) as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_server: Engine) -> Iterator[str]:
    """A throwaway, empty PostgreSQL database for one test (slower: prefer `postgres_url`)."""
    with _throwaway_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database, migrated to head once."""
    upgrade_database(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database migrated to head, on each backend: a new SQLite file, or the
    session's PostgreSQL database with every table emptied (faster than a new database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'imageeditor.db'}"
        upgrade_database(url)
        return url
    url = str(request.getfixturevalue("migrated_postgres_url"))
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            names = ", ".join(table.name for table in tables.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names}"))
    finally:
        engine.dispose()
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A `SqlStore` on an empty, migrated database (run once per backend)."""
    sql_store = SqlStore(create_engine_for(database_url))
    yield sql_store
    sql_store.close()
