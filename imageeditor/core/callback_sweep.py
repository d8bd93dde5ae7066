"""The callback sweep: no owed callback waits for a nudge that never comes.

A terminal transition records its callbacks in the store and then nudges a sender
(imageeditor.core.adapters.celery.dispatch.CeleryCallbackNotifier). The nudge can be lost (the
broker was
down, the worker holding it died), and retries hours away are never held in the broker at all.
So the reconciler's leader also asks the outbox, every pass, which (user, URL) pairs have a
delivery overdue by more than `grace` and not leased to a live sender, and nudges each again.
A duplicate nudge costs one query: deliveries are claimed under a lease, never sent twice at
once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from imageeditor.core.ports import DeliveryStore

log = logging.getLogger(__name__)

TARGETS_PER_PASS = 1000


class Nudger(Protocol):
    def notify_in(self, user_id: str, url: str, countdown: float) -> bool: ...


class CallbackSweep:
    def __init__(self, deliveries: DeliveryStore, nudger: Nudger, grace: timedelta) -> None:
        self._deliveries = deliveries
        self._nudger = nudger
        self._grace = grace

    def run_once(self, now: datetime) -> int:
        """Nudge every URL with an overdue delivery; returns how many were nudged."""
        targets = self._deliveries.due_targets(now - self._grace, TARGETS_PER_PASS)
        nudged = sum(self._nudger.notify_in(user, url, 0.0) for user, url in targets)
        if targets:
            log.info("callback sweep: %d URL(s) with overdue callbacks nudged", nudged)
        return nudged
