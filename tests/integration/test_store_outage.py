"""A database outage reaches the store's callers as `Unavailable`, quickly, from every method."""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from editcore.adapters.sql.callback_store import SqlCallbackStore
from editcore.adapters.sql.engine import create_engine_for
from editcore.adapters.sql.outage import STORE_UNAVAILABLE, is_outage
from editcore.adapters.sql.task_store import SqlTaskStore
from editcore.errors import Unavailable
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
