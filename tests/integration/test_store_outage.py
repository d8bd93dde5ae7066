"""A database outage reaches the store's callers as `Unavailable`, quickly, from every method."""

from __future__ import annotations

import inspect
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.outage import STORE_UNAVAILABLE, is_outage
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.errors import Unavailable
from imageeditor.core.ports import TaskQuery
from tests.e2e.harness import free_port


@pytest.fixture
def unreachable_store() -> Iterator[SqlTaskStore]:
    # A closed loopback port: PostgreSQL stopped, or not started yet.
    store = SqlTaskStore(
        create_engine_for(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    )
    yield store
    store.close()


def test_a_call_to_a_stopped_database_is_unavailable_at_once(
    unreachable_store: SqlTaskStore,
) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        unreachable_store.get_task(str(uuid.uuid4()))
    assert time.monotonic() - started < 2
    assert refused.value.reason == STORE_UNAVAILABLE
    assert refused.value.retry_after == 1.0
    assert isinstance(refused.value.__cause__, OperationalError)

    with pytest.raises(Unavailable):
        unreachable_store.find_api_key("0" * 64)


@pytest.mark.parametrize("store_class", [SqlTaskStore, SqlCallbackStore])
def test_every_public_store_method_translates_outages(store_class: type) -> None:
    public = [
        member
        for name, member in vars(store_class).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]
    assert len(public) > 10
    assert all(hasattr(member, "__wrapped__") for member in public)


def test_a_refused_statement_is_not_an_outage() -> None:
    assert not is_outage(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert is_outage(OperationalError("SELECT 1", {}, Exception("connection refused")))


def test_a_query_sqlite_refuses_is_not_an_outage(tmp_path: Path) -> None:
    """1,000 label filters: SQLite's "expression tree too large" would refuse every retry, so
    it must not be reported as UNAVAILABLE (which callers retry)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_database(url)
    store = SqlTaskStore(create_engine_for(url))
    query = TaskQuery("alice", labels={f"k{i}": "v" for i in range(1_000)})
    with pytest.raises(OperationalError) as refused:
        store.list_tasks(query, 10)
    store.close()
    assert "too large" in str(refused.value)


def test_what_says_not_now_is_an_outage() -> None:
    def operational(original: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, original)

    assert is_outage(operational(sqlite3.OperationalError("database is locked")))
    assert is_outage(operational(sqlite3.OperationalError("unable to open database file")))
    assert not is_outage(operational(sqlite3.OperationalError("Expression tree is too large")))
    assert is_outage(operational(psycopg.errors.AdminShutdown()))
    assert is_outage(operational(psycopg.errors.TooManyConnections()))
    assert is_outage(operational(psycopg.errors.DeadlockDetected()))
    assert not is_outage(operational(psycopg.errors.QueryCanceled()))
    assert not is_outage(operational(psycopg.errors.ProgramLimitExceeded()))
