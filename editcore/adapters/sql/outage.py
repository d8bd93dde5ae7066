"""Database outages as domain errors: the store's callers see `Unavailable`, never SQLAlchemy.

A refused or dropped connection, an invalidated one, or a pool with no connection to give
means "try again shortly": the server answers UNAVAILABLE with RetryInfo, and a worker puts
the message back on the broker. Every other database error (a constraint, a bug in a
statement) passes through unchanged: retrying would not help.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from editcore.errors import Unavailable

STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
RETRY_AFTER_SECONDS = 1.0

C = TypeVar("C", bound=type)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (rather than refused a statement)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


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
                raise store_unavailable(exc) from exc
            raise

    return call


def translate_outages(cls: C) -> C:
    """Class decorator: every public method of `cls` raises `Unavailable` on an outage."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translated(member))
    return cls
