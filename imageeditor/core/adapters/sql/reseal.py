"""Sealing again, under the newest key, every value the store keeps sealed
(imageeditor.core.sealing):
the URLs and prompts in tasks and their event snapshots, batch and outbox URLs, endpoints
disabled by a 410, and webhook secrets. A value still in clear (written before encryption)
is sealed; one already under the newest key is left alone, so a pass can be repeated, or
stopped and started again.

Tables are walked by key, a page of rows at a time, each page in a transaction of its own
when the caller gives one per page (`imageeditor db reencrypt`, so a large database is never
held in one long transaction and an interrupted run keeps what it did), or all in the
caller's (migration 0007, when the migrating process has keys). Run the command after a new
key has been put first in IMAGEEDITOR_ENCRYPTION_KEYS; the older keys can be dropped once it
has run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, func, select, tuple_, update

from imageeditor.core.adapters.sql import tables
from imageeditor.core.sealing import Sealer
from imageeditor.core.snapshot import SEALED_SPEC_FIELDS, spec_from_dict, spec_to_dict

PAGE = 500


Transaction = Callable[[], AbstractContextManager[Connection]]
Progress = Callable[[str, int, int], None]  # table, rows walked, rows in the table
Rewrite = Callable[[Any], Any | None]  # the new value, or None when it is current already


def reseal(
    transaction: Transaction, sealer: Sealer, progress: Progress | None = None
) -> dict[str, int]:
    """Seal everything again under the newest key, each page of rows in a `transaction()`;
    how many rows changed, by table. `progress` hears of every page."""
    changed: dict[str, int] = {}
    for column in _columns(sealer):
        with transaction() as connection:
            total = column.count(connection)
        changed[column.name], walked, after = 0, 0, None
        while True:
            with transaction() as connection:
                read, rewritten, after = column.page(connection, after)
            walked += read
            changed[column.name] += rewritten
            if progress is not None:
                progress(column.name, walked, max(total, walked))
            if after is None:
                break
    return changed


@dataclass(frozen=True)
class _Column:
    """A sealed column, walked by its table's key."""

    table: Table
    key: list[Column[Any]]
    column: Column[Any]
    rewrite: Rewrite

    @property
    def name(self) -> str:
        return self.table.name

    def count(self, connection: Connection) -> int:
        return connection.execute(select(func.count()).select_from(self.table)).scalar_one()

    def page(self, connection: Connection, after: tuple[Any, ...] | None) -> tuple[int, int, Any]:
        """Rewrite the page of rows after key `after`: rows read, rows changed, and the key
        the next page starts after (None: this was the last)."""
        statement = select(*self.key, self.column).order_by(*self.key).limit(PAGE)
        if after is not None:
            statement = statement.where(_after(self.key, after))
        rows = connection.execute(statement).all()
        changed = 0
        for row in rows:
            value = self.rewrite(row[-1])
            if value is not None:
                match = [k == row[i] for i, k in enumerate(self.key)]
                connection.execute(
                    update(self.table).where(*match).values({self.column.name: value})
                )
                changed += 1
        last = tuple(rows[-1][: len(self.key)]) if len(rows) == PAGE else None
        return len(rows), changed, last


def _columns(sealer: Sealer) -> list[_Column]:
    if not sealer.enabled:
        return []
    t, e, b = tables.tasks, tables.task_events, tables.batches
    d, w, p = tables.callback_deliveries, tables.webhook_secrets, tables.callback_endpoints
    return [
        _Column(t, [t.c.id], t.c.spec, _spec(sealer)),
        _Column(e, [e.c.task_id, e.c.version], e.c.snapshot, _snapshot(sealer)),
        _Column(b, [b.c.id], b.c.callback_url, _lookup(sealer)),
        _Column(d, [d.c.id], d.c.url, _lookup(sealer)),
        _Column(w, [w.c.id], w.c.secret, _secret(sealer)),
        _Column(p, [p.c.user_id, p.c.url], p.c.url, _lookup(sealer)),
    ]


def _after(key: list[Column[Any]], values: tuple[Any, ...]) -> Any:
    return tuple_(*key) > tuple_(*values)


def _spec(sealer: Sealer) -> Rewrite:
    def rewrite(data: dict[str, Any]) -> dict[str, Any] | None:
        if all(sealer.is_current(data.get(name, "")) for name in SEALED_SPEC_FIELDS):
            return None
        return spec_to_dict(spec_from_dict(data, sealer), sealer)

    return rewrite


def _snapshot(sealer: Sealer) -> Rewrite:
    spec = _spec(sealer)

    def rewrite(data: dict[str, Any]) -> dict[str, Any] | None:
        sealed = spec(data["spec"])
        return None if sealed is None else {**data, "spec": sealed}

    return rewrite


def _lookup(sealer: Sealer) -> Rewrite:
    def rewrite(value: str | None) -> str | None:
        if not value or sealer.is_current(value):
            return None
        return sealer.seal_lookup(sealer.open(value))

    return rewrite


def _secret(sealer: Sealer) -> Rewrite:
    def rewrite(value: str) -> str | None:
        return None if sealer.is_current(value) else sealer.seal(sealer.open(value))

    return rewrite
