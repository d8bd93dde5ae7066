"""Fixtures shared by the test suites, one section per thing they provide."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.task_store import SqlTaskStore

# -- Fuzzing: the budget of the property-based suite (tests/unit/test_fuzz.py) ------------------

# `make test` runs "default"; `pytest --hypothesis-profile=long` a hundred times more examples.
# No wall-clock deadline: the suite bounds each example's CPU time itself.
for _name, _examples in (("default", 150), ("long", 15_000)):
    hypothesis_settings.register_profile(
        _name, max_examples=_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


# -- Databases: the task store on SQLite and on PostgreSQL --------------------------------------

DEFAULT_POSTGRES_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def service_unavailable(reason: str) -> NoReturn:
    # CI must prove the production adapters; a developer without the servers can run the rest.
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
        service_unavailable(f"PostgreSQL unreachable at {server_url!r}: {exc.orig}")
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


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server: Engine) -> Iterator[str]:
    """A throwaway, empty PostgreSQL database for one test module (e.g. its server and
    worker processes), dropped at its end."""
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, not migrated: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'imageeditor.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[SqlTaskStore]:
    """A `SqlTaskStore` on an empty, migrated database (run once per backend)."""
    sql_store = SqlTaskStore(create_engine_for(database_url))
    yield sql_store
    sql_store.close()


# -- Redis: the production status cache, rate limiter and event bus ----------------------------

# Database 15, and keys and channels named after fresh uuids: nothing to clash with other users.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (IMAGEEDITOR_TEST_REDIS_URL, else the local one): skipped when it is
    unreachable, failed when CI=true."""
    url = os.environ.get("IMAGEEDITOR_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis unreachable at {url!r}: {exc}")
    finally:
        client.close()
    return url


# -- RabbitMQ: the other Celery broker ----------------------------------------------------------

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The test RabbitMQ (IMAGEEDITOR_TEST_RABBITMQ_URL, else the local one): skipped when it
    is unreachable, failed when CI=true."""
    from kombu import Connection

    url = os.environ.get("IMAGEEDITOR_TEST_RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        service_unavailable(f"RabbitMQ unreachable at {url!r}: {exc!r}")
    return url


# -- Object storage: moto's standalone S3-compatible server on loopback ------------------------


class MotoServer:
    """`python -m moto.server` as a child process on a free loopback port: a real HTTP S3
    endpoint, as MinIO or AWS would be, with nothing of moto loaded into the test process."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not start listening within 30s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The endpoint URL of an S3-compatible server shared by the session (any credentials)."""
    server = MotoServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def moto_server() -> Iterator[MotoServer]:
    """A private S3-compatible server, for a test that stops it."""
    server = MotoServer().start()
    yield server
    server.stop()
