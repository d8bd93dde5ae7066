"""The callback outbox and webhook secrets on SQLAlchemy Core: SQLite embedded, PostgreSQL in
production (the tables are in imageeditor/core/adapters/sql/tables.py; the rows are written by the
task
store's terminal transitions, imageeditor/core/adapters/sql/outbox.py).

Senders on several processes may ask for the same target at once. A claim is one transaction
that leases the rows it takes with a fresh token; its UPDATE re-checks that they are still
free, so two claims never both hold a delivery, and a finish writes only rows still held by
its token. A database outage leaves every public method as `Unavailable`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from imageeditor.core.adapters.sql import tables
from imageeditor.core.adapters.sql.outage import translate_outages
from imageeditor.core.adapters.sql.rows import (
    delivery_from_row,
    delivery_progress_values,
    parse_uuid,
    webhook_secret_from_row,
    webhook_secret_to_row,
)
from imageeditor.core.callbacks import Delivery, DeliveryState
from imageeditor.core.ports import WebhookSecret
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.task import utcnow

# Stays well under SQLite's limit on bound parameters in one statement.
_IN_CHUNK = 500

_d = tables.callback_deliveries


@translate_outages
class SqlCallbackStore:
    """`DeliveryStore` and `WebhookSecretStore` over a SQLAlchemy engine (see
    imageeditor/core/ports.py).

    `clock` tells when a lease has run out (tests move it instead of sleeping).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] = utcnow,
        *,
        sealer: Sealer = NO_SEALING,
    ) -> None:
        """`sealer` seals the URLs (for lookups) and the webhook secrets."""
        self._engine = engine
        self._clock = clock
        self._sealer = sealer

    # -- deliveries ------------------------------------------------------------------------

    def claim_deliveries(
        self, user_id: str, url: str, due_by: datetime, lease_until: datetime, limit: int
    ) -> tuple[str, list[Delivery]]:
        """Lease the target's next group: the earliest due delivery alone if it was tried
        before, else up to `limit` never-tried ones."""
        token = uuid.uuid4()
        now = self._clock()
        candidates = (
            select(_d)
            .where(
                _d.c.user_id == user_id,
                _d.c.url.in_(self._sealer.lookups(url)),
                _d.c.state == DeliveryState.PENDING.value,
                _d.c.next_attempt_at <= due_by,
                _unleased(now),
            )
            .order_by(_d.c.next_attempt_at, _d.c.created_at, _d.c.id)
            .limit(limit)
            # PostgreSQL: a concurrent claim passes over these rows instead of waiting for
            # them. SQLite has no row locks (it serialises writers); the guarded UPDATE below
            # keeps claims apart there.
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(candidates).mappings().all()
            if not rows:
                return str(token), []
            if rows[0]["attempts"]:
                chosen = [rows[0]["id"]]
            else:
                chosen = [row["id"] for row in rows if not row["attempts"]]
            connection.execute(
                update(_d)
                .where(
                    _d.c.id.in_(chosen),
                    _d.c.state == DeliveryState.PENDING.value,
                    _unleased(now),
                )
                .values(claim_token=token, lease_until=lease_until)
            )
            claimed = connection.execute(
                select(_d)
                .where(_d.c.claim_token == token)
                .order_by(_d.c.next_attempt_at, _d.c.created_at, _d.c.id)
            ).mappings()
            return str(token), [delivery_from_row(row, self._sealer) for row in claimed]

    def finish_deliveries(self, token: str, deliveries: Sequence[Delivery]) -> int:
        """Write the deliveries still held by `token` and release them; how many were."""
        key = parse_uuid(token)
        if key is None or not deliveries:
            return 0
        written = 0
        with self._engine.begin() as connection:
            for delivery in deliveries:
                result = connection.execute(
                    update(_d)
                    .where(_d.c.id == uuid.UUID(delivery.id), _d.c.claim_token == key)
                    .values(
                        **delivery_progress_values(delivery), claim_token=None, lease_until=None
                    )
                )
                written += result.rowcount
        return written

    def due_targets(self, due_by: datetime, limit: int) -> list[tuple[str, str]]:
        """Targets with an unleased PENDING delivery due by `due_by`, the longest due first."""
        statement = (
            select(_d.c.user_id, _d.c.url)
            .where(
                _d.c.state == DeliveryState.PENDING.value,
                _d.c.next_attempt_at <= due_by,
                _unleased(self._clock()),
            )
            .group_by(_d.c.user_id, _d.c.url)
            .order_by(func.min(_d.c.next_attempt_at), _d.c.user_id, _d.c.url)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            found = [(user, self._sealer.open(url)) for user, url in connection.execute(statement)]
        # One URL sealed under an older key and under the newest groups twice: once is enough.
        return list(dict.fromkeys(found))

    def count_pending(self) -> int:
        statement = select(func.count()).where(_d.c.state == DeliveryState.PENDING.value)
        with self._engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def release_claims(self) -> int:
        """Drop every lease; how many deliveries were held."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(_d)
                .where(_d.c.claim_token.is_not(None))
                .values(claim_token=None, lease_until=None)
            )
        return result.rowcount

    def deliveries(self, keys: Sequence[str]) -> dict[str, Delivery]:
        """The deliveries with these outbox keys, by key (unknown keys are left out)."""
        unique = sorted(set(keys))
        found: dict[str, Delivery] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                rows = connection.execute(select(_d).where(_d.c.dedupe_key.in_(chunk)))
                for row in rows.mappings():
                    found[row["dedupe_key"]] = delivery_from_row(row, self._sealer)
        return found

    def redeliver(self, event_id: str, now: datetime) -> Delivery | None:
        """Make a delivered or failed event PENDING again, due at `now` (Delivery.again);
        a pending one is left as it is. None when there is no such event."""
        key = parse_uuid(event_id)
        if key is None:
            return None
        with self._engine.begin() as connection:
            row = connection.execute(select(_d).where(_d.c.id == key)).mappings().first()
            if row is None:
                return None
            delivery = delivery_from_row(row, self._sealer)
            if delivery.state is DeliveryState.PENDING:
                return delivery
            again = delivery.again(now)
            connection.execute(
                update(_d).where(_d.c.id == key).values(**delivery_progress_values(again))
            )
        return again

    def enable_endpoint(self, user_id: str, url: str) -> bool:
        """Send to `url` for this user again after a 410 disabled it; False if it was not."""
        e = tables.callback_endpoints
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(e).where(e.c.user_id == user_id, e.c.url.in_(self._sealer.lookups(url)))
            )
        return result.rowcount > 0

    def disable_endpoint(self, user_id: str, url: str, reason: str, now: datetime) -> None:
        """Stop sending to `url` for this user; the first disabling's time and reason stay."""
        sealed = self._sealer.seal_lookup(url)
        row = {"user_id": user_id, "url": sealed, "disabled_at": now, "reason": reason}
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(tables.callback_endpoints), [row])
        except IntegrityError:
            if not self.endpoint_disabled(user_id, url):
                raise

    def endpoint_disabled(self, user_id: str, url: str) -> bool:
        e = tables.callback_endpoints
        statement = select(e.c.user_id).where(
            e.c.user_id == user_id, e.c.url.in_(self._sealer.lookups(url))
        )
        with self._engine.connect() as connection:
            return connection.execute(statement).first() is not None

    # -- webhook secrets -------------------------------------------------------------------

    def add_webhook_secret(self, secret: WebhookSecret) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(tables.webhook_secrets), [webhook_secret_to_row(secret, self._sealer)]
            )

    def webhook_secrets(self, user_id: str, now: datetime) -> list[WebhookSecret]:
        """The user's secrets not expired at `now`, newest first."""
        w = tables.webhook_secrets
        statement = (
            select(w)
            .where(w.c.user_id == user_id, or_(w.c.expires_at.is_(None), w.c.expires_at > now))
            .order_by(w.c.created_at.desc(), w.c.id.desc())
        )
        with self._engine.connect() as connection:
            return [
                webhook_secret_from_row(row, self._sealer)
                for row in connection.execute(statement).mappings()
            ]

    def expire_webhook_secrets(self, user_id: str, at: datetime) -> None:
        """Let every secret of the user expire at `at`; one that expires sooner keeps its time."""
        w = tables.webhook_secrets
        with self._engine.begin() as connection:
            connection.execute(
                update(w)
                .where(w.c.user_id == user_id, or_(w.c.expires_at.is_(None), w.c.expires_at > at))
                .values(expires_at=at)
            )


def _unleased(now: datetime) -> ColumnElement[bool]:
    """Held by no sender, or by one whose lease ran out before `now`."""
    return or_(_d.c.lease_until.is_(None), _d.c.lease_until < now)
