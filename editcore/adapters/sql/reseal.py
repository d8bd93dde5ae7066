"""Sealing again, under the newest key, every value the store keeps sealed (editcore.sealing):
the URLs and prompts in tasks and their event snapshots, batch and outbox URLs, endpoints
disabled by a 410, and webhook secrets. A value still in clear (written before encryption)
is sealed; one already under the newest key is left alone, so a pass can be repeated, or
stopped and started again.

Run by migration 0007 (when the migrating process has keys) and by `imageeditor db
reencrypt`, after a new key has been put first in IMAGEEDITOR_ENCRYPTION_KEYS; the older keys
can be dropped once it has run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, Table, select, tuple_, update

from editcore.adapters.sql import tables
from editcore.sealing import Sealer
from editcore.snapshot import SEALED_SPEC_FIELDS, spec_from_dict, spec_to_dict

PAGE = 500


def reseal(connection: Connection, sealer: Sealer) -> dict[str, int]:
    """Seal everything again under the newest key; how many rows changed, by table."""
    if not sealer.enabled:
        return {}
    t, e, b = tables.tasks, tables.task_events, tables.batches
    d, w = tables.callback_deliveries, tables.webhook_secrets
    changed = {
        "tasks": _rewrite(connection, t, [t.c.id], t.c.spec, _spec(sealer)),
        "task_events": _rewrite(
            connection, e, [e.c.task_id, e.c.version], e.c.snapshot, _snapshot(sealer)
        ),
        "batches": _rewrite(connection, b, [b.c.id], b.c.callback_url, _lookup(sealer)),
        "callback_deliveries": _rewrite(connection, d, [d.c.id], d.c.url, _lookup(sealer)),
        "webhook_secrets": _rewrite(connection, w, [w.c.id], w.c.secret, _secret(sealer)),
    }
    endpoints = tables.callback_endpoints
    changed["callback_endpoints"] = _rewrite(
        connection,
        endpoints,
        [endpoints.c.user_id, endpoints.c.url],
        endpoints.c.url,
        _lookup(sealer),
    )
    return changed


Rewrite = Callable[[Any], Any | None]  # the new value, or None when it is current already


def _rewrite(
    connection: Connection,
    table: Table,
    key: list[Column[Any]],
    column: Column[Any],
    rewrite: Rewrite,
) -> int:
    """Walk `table` by its key, writing `rewrite(value)` where it gives a new value."""
    changed, after = 0, None
    while True:
        statement = select(*key, column).order_by(*key).limit(PAGE)
        if after is not None:
            statement = statement.where(_after(key, after))
        rows = connection.execute(statement).all()
        for row in rows:
            value = rewrite(row[-1])
            if value is not None:
                match = [k == row[i] for i, k in enumerate(key)]
                connection.execute(update(table).where(*match).values({column.name: value}))
                changed += 1
        if len(rows) < PAGE:
            return changed
        after = tuple(rows[-1][: len(key)])


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
