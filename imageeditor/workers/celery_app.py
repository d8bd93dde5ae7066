"""The worker's Celery app: the shared configuration, the task, and per-process set-up.

`create_celery_app(settings)` builds an app and connects nothing. Each worker process builds
its WorkerContext after the fork (`worker_process_init`), so no connection crosses a fork;
pools without child processes (`-P solo`, threads) build it on the first task instead. A
process serving the `models` queue also loads the rembg model then, on a thread, so the
first background removal does not pay for it.

For `celery -A imageeditor.workers.celery_main worker`, imageeditor.workers.celery_main builds the
app from the
environment; `imageeditor worker` (imageeditor.workers.main) builds it from its own Settings.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, signals

from imageeditor.core.adapters.celery.config import create_celery
from imageeditor.core.errors import FailedPrecondition
from imageeditor.core.logs import configure_logging
from imageeditor.core.metrics import MetricsEndpoint, process_exited, serve_worker_metrics
from imageeditor.core.queues import MODELS_QUEUE
from imageeditor.core.settings import Settings
from imageeditor.core.telemetry import Tracing, instrument_celery, setup_tracing
from imageeditor.workers.celery_tasks import (
    CallbackHandler,
    TaskHandler,
    register_deliver_callbacks,
    register_run_task,
)
from imageeditor.workers.worker_context import WorkerContext

log = logging.getLogger(__name__)

WARM_UP_JOIN_SECONDS = 30.0


class WorkerProcess:
    """This process's WorkerContext, built once, after the fork."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self._settings = settings
        self._app = app
        self._lock = threading.Lock()
        self._context: WorkerContext | None = None
        self._warm_up: threading.Thread | None = None
        self._tracing: Tracing | None = None
        self._metrics: MetricsEndpoint | None = None
        self.serves_models = True  # until the worker says which queues it consumes

    def context(self) -> WorkerContext:
        with self._lock:
            if self._context is None:
                self._context = WorkerContext.build(self._settings, self._app)
            return self._context

    def handler(self) -> TaskHandler:
        context = self.context()
        adapters = context.adapters
        return TaskHandler(
            context.runner,
            adapters.lifecycle,
            adapters.dispatcher,
            context.admission,
            adapters.sealer,
        )

    def callback_handler(self) -> CallbackHandler:
        context = self.context()
        adapters = context.adapters
        return CallbackHandler(context.sender, adapters.callbacks, adapters.sealer)

    # -- Celery signal receivers -------------------------------------------------------------

    def setup_logging(self, loglevel: Any = None, **_: Any) -> None:
        """Our log format in place of Celery's (`setup_logging`: Celery then sets up none)."""
        configure_logging(self._settings.log_format, loglevel or self._settings.log_level)

    def worker_init(self, **_: Any) -> None:
        """In the main process, before the pool forks (`worker_init`): the metrics endpoint,
        which serves what every pool process counts."""
        s = self._settings
        self._metrics = serve_worker_metrics(s.ops_host, s.worker_metrics_port, "worker")

    def worker_shutdown(self, **_: Any) -> None:
        if self._metrics is not None:
            self._metrics.close()

    def after_setup(self, sender: Any = None, instance: Any = None, **_: Any) -> None:
        """In the main process, once the queues are known (`celeryd_after_setup`)."""
        consumed = instance.app.amqp.queues.consume_from if instance is not None else None
        # None means every declared queue, `models` among them.
        self.serves_models = consumed is None or MODELS_QUEUE in consumed

    def process_init(self, **_: Any) -> None:
        """In each pool process, just after the fork (`worker_process_init`)."""
        # Tracing starts here, after the fork: the exporter's thread and connection are ours.
        self._tracing = setup_tracing("imageeditor-worker")
        if self._tracing.enabled:
            instrument_celery()
        context = self.context()
        if self.serves_models:
            self._warm_up = threading.Thread(
                target=context.remover.warm_up, name="rembg-warm-up", daemon=True
            )
            self._warm_up.start()

    def process_shutdown(self, **_: Any) -> None:
        """In each pool process, as it exits (`worker_process_shutdown`)."""
        if self._warm_up is not None and self._warm_up.is_alive():
            # onnxruntime aborts the process when it exits in the middle of loading a model.
            self._warm_up.join(WARM_UP_JOIN_SECONDS)
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.close()
        if self._tracing is not None:
            self._tracing.shutdown()  # flushes: the spans of the last tasks would die with us
        process_exited(os.getpid())


def create_celery_app(settings: Settings) -> Celery:
    """A worker's Celery app for `settings` (production mode: Redis and a broker)."""
    if settings.is_embedded:
        raise FailedPrecondition(
            "a Celery worker needs production mode: set IMAGEEDITOR_REDIS_URL (and a "
            "PostgreSQL IMAGEEDITOR_DATABASE_URL shared with the servers)",
            reason="BAD_SETTING",
        )
    app = create_celery(settings)
    process = WorkerProcess(settings, app)
    register_run_task(app, process.handler)
    register_deliver_callbacks(app, process.callback_handler)
    # Signals are process-wide; weak=False because nothing else keeps `process` alive.
    signals.celeryd_after_setup.connect(process.after_setup, weak=False)
    signals.worker_process_init.connect(process.process_init, weak=False)
    signals.worker_process_shutdown.connect(process.process_shutdown, weak=False)
    signals.setup_logging.connect(process.setup_logging, weak=False)
    signals.worker_init.connect(process.worker_init, weak=False)
    signals.worker_shutdown.connect(process.worker_shutdown, weak=False)
    return app
