"""One leader among the server processes, by a PostgreSQL session-level advisory lock.

The reconciler runs in every server process but does its work only where this lock is held,
so its per-task backoff lives in one place and N servers do not publish N duplicates. The
lock belongs to one dedicated connection: when the holder dies or its connection drops,
PostgreSQL releases the lock and another server takes it at its next try. Correctness does
not depend on it (every change is a compare-and-set), only the amount of duplicate work.

On SQLite (one machine, one server) the lock is always held.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

RECONCILER_LOCK_KEY = 7_310_002  # any fixed number; 7_310_001 serialises migrations


class LeaderLock:
    """`held()` tries to take the lock if it is not held yet, and checks it still is."""

    def __init__(self, url: str, key: int = RECONCILER_LOCK_KEY) -> None:
        self._key = key
        self._engine: Engine | None = None
        if make_url(url).get_backend_name() == "postgresql":
            # NullPool: closing the connection must really end the session (and its lock),
            # never hand a locked session back to a pool.
            self._engine = create_engine(
                url, poolclass=NullPool, connect_args={"connect_timeout": 5}
            )
        self._connection: Connection | None = None

    def held(self) -> bool:
        """True when this process is the leader (taking the lock if it is free)."""
        if self._engine is None:
            return True
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except DBAPIError:
                log.warning("lost the leader lock's connection; trying to take the lock again")
                self._drop()
        try:
            connection = self._engine.connect()
        except DBAPIError:
            return False
        try:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
            connection.commit()  # the session-level lock outlives the transaction
        except DBAPIError:
            connection.close()
            return False
        if not taken:
            connection.close()
            return False
        log.info("this process now holds the reconciler's leader lock")
        self._connection = connection
        return True

    def release(self) -> None:
        """Give the lock up (at shutdown), so another server takes over at once."""
        self._drop()
        if self._engine is not None:
            self._engine.dispose()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()  # ends the session, and so releases the lock
            self._connection = None
