"""What a Celery worker process holds for the tasks it runs: built once per process.

The composition root of a worker process. It is built after the fork (in
`worker_process_init`, see imageeditor.workers.celery_app): database and Redis connections made
before
a fork would be shared by parent and children, and their protocols interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from imageeditor.core.adapters.production import ProductionAdapters
from imageeditor.core.admission import Admission
from imageeditor.core.settings import Settings
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.callback_sender import CallbackSender
from imageeditor.workers.runner import TaskRunner, build_runner


@dataclass
class WorkerContext:
    """The production adapters (the store, the publishing side of cache and events, the
    dispatcher), the pipeline's runner, and the callback sender (a process of the
    `callbacks` queue uses only that)."""

    adapters: ProductionAdapters
    remover: BackgroundRemover
    runner: TaskRunner
    sender: CallbackSender
    admission: Admission

    @classmethod
    def build(cls, settings: Settings, app: Celery) -> WorkerContext:
        """Plain constructor calls; nothing connects until first used."""
        # A worker only writes the cache (every transition), it never reads it: no hot layer.
        adapters = ProductionAdapters.build(settings, app, hot_cache_seconds=0.0)
        remover = BackgroundRemover(settings)  # loads its model on first use or warm-up
        runner = build_runner(
            settings,
            adapters.lifecycle,
            adapters.blobs,
            remover,
            time_limit_errors=(SoftTimeLimitExceeded,),
        )
        admission = Admission(adapters.tasks, adapters.dispatcher, settings.max_dispatched_per_user)
        return cls(adapters, remover, runner, CallbackSender.over(adapters, settings), admission)

    def close(self) -> None:
        """Close the connections (when the process exits)."""
        self.adapters.close()
