"""`imageeditor worker`: a Celery worker process for some of the queues.

A thin wrapper over `celery worker`: it builds the app from Settings and starts the worker
programmatically with the options production wants. Scale each queue on its own: start
workers with `--queues edits` (cheap Pillow work, one process per core) and others with
`--queues models` (rembg, ~600 MB per process: fewer, bigger machines).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from imageeditor.core.queues import EDITS_QUEUE, MODELS_QUEUE
from imageeditor.core.settings import Settings
from imageeditor.workers.celery_app import create_celery_app

DEFAULT_QUEUES = (EDITS_QUEUE, MODELS_QUEUE)


def worker_argv(queues: Sequence[str], concurrency: int | None, loglevel: str) -> list[str]:
    """The `celery worker` arguments."""
    argv = [
        "worker",
        f"--queues={','.join(queues)}",
        f"--loglevel={loglevel}",
        # Unique per process, so several workers on one machine do not clash.
        f"--hostname=imageeditor-{os.getpid()}@%h",
        # Cancels and results live in the store, not in worker-to-worker broadcasts: skip
        # the start-up sync and the gossip, two sources of broker traffic we do not use.
        "--without-mingle",
        "--without-gossip",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    return argv


def run(
    settings: Settings,
    queues: Sequence[str] = DEFAULT_QUEUES,
    concurrency: int | None = None,
    loglevel: str = "INFO",
) -> None:
    """Run a worker until SIGTERM (warm shutdown: running tasks finish) or SIGINT."""
    app = create_celery_app(settings)
    app.worker_main(worker_argv(queues, concurrency, loglevel))
