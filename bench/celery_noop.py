"""The reference of bench/service.py's round-trip case: a Celery no-op, run by a worker of
its own on the same Redis (`celery -A bench.celery_noop worker`), its result sent back
through a Redis result backend. BENCH_CELERY_URL names the Redis."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("BENCH_CELERY_URL", "redis://127.0.0.1:6379/14")

app = Celery("bench-noop", broker=URL, backend=URL)
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True, broker_connection_retry=True)


@app.task(name="bench.noop")
def noop() -> None:
    """Nothing: the round trip alone."""
