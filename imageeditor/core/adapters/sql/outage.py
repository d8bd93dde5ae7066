"""Database outages as domain errors: the store's callers see `Unavailable`, never SQLAlchemy.

A refused or dropped connection, an invalidated one, a pool with no connection to give, a
server shutting down or out of connections, a deadlock or a busy SQLite file means "try again
shortly": the server answers UNAVAILABLE with RetryInfo, and a worker puts the message back on
the broker. Every other database error (a constraint, a statement the database refuses, such
as SQLite's "expression tree too large") passes through unchanged: retrying would not help,
and a caller told UNAVAILABLE would retry it forever.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from imageeditor.core.errors import Unavailable
from imageeditor.core.metrics import STORE_ERRORS

STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
RETRY_AFTER_SECONDS = 1.0

C = TypeVar("C", bound=type)


# PostgreSQL SQLSTATE classes and codes that mean "not now": connection exceptions, not
# enough resources (too many connections), operator intervention (shutting down, starting
# up; but not 57014, a statement cancelled or out of time, which would be again), and the
# two a retry resolves (serialization failure, deadlock).
_RETRYABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_FINAL_SQLSTATES = frozenset({"57014"})
# What SQLite says when its file cannot be used right now (rather than of a statement).
_SQLITE_OUTAGES = ("locked", "busy", "unable to open", "disk i/o", "readonly")


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be used just now (rather than refused a
    statement, which would refuse it again)."""
    if isinstance(exc, (InterfaceError, PoolTimeoutError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    original = exc.orig
    if isinstance(original, sqlite3.OperationalError):
        text = str(original).lower()
        return any(words in text for words in _SQLITE_OUTAGES)
    sqlstate = getattr(original, "sqlstate", None)
    if not sqlstate:  # no answer from the server at all: the connection failed
        return True
    if sqlstate in _FINAL_SQLSTATES:
        return False
    return sqlstate[:2] in _RETRYABLE_SQLSTATE_CLASSES or sqlstate in _RETRYABLE_SQLSTATES


def store_unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(
        f"the task store is unreachable: {type(exc).__name__}",
        reason=STORE_UNAVAILABLE,
        retry_after=RETRY_AFTER_SECONDS,
    )


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (DBAPIError, PoolTimeoutError) as exc:
            if is_outage(exc):
                STORE_ERRORS.labels(method.__name__).inc()
                raise store_unavailable(exc) from exc
            raise

    return call


def translate_outages(cls: C) -> C:
    """Class decorator: every public method of `cls` raises `Unavailable` on an outage."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translated(member))
    return cls
