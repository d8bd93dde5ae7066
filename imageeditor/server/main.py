"""The composition root of a production server process: a stateless gRPC edge.

PostgreSQL holds the tasks, Redis the status cache, the rate limits and the transition
events, a Celery broker carries dispatch messages to the worker processes (`imageeditor
worker`), and results go to the blob store the storage URL names. Run as many of these as
you like behind a load balancer: any of them answers for any task, and WatchTask on one sees
what workers do for tasks accepted by another.

Each process also runs the reconciler (imageeditor.core.reconciler) and the callback sweep
(imageeditor.core.callback_sweep) every reconcile_interval_seconds; only the one holding the
PostgreSQL leader lock does the work. Callbacks themselves are sent by the workers of the
`callbacks` queue (`imageeditor worker --queues callbacks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from imageeditor.core.adapters.celery.config import create_celery
from imageeditor.core.adapters.production import ProductionAdapters
from imageeditor.core.adapters.sql.leader_lock import LeaderLock
from imageeditor.core.callback_sweep import CallbackSweep
from imageeditor.core.errors import Unavailable
from imageeditor.core.metrics import serve_metrics
from imageeditor.core.reconciler import Reconciler
from imageeditor.core.sampling import GaugeSampler
from imageeditor.core.settings import Settings
from imageeditor.core.task import utcnow
from imageeditor.core.telemetry import instrument_celery, setup_tracing
from imageeditor.server.app import build_servicer, start_server
from imageeditor.server.process import configure_logging, stop_on_signals
from imageeditor.server.servicer import ImageEditorServicer

log = logging.getLogger("imageeditor")


@dataclass
class ProductionServer:
    settings: Settings
    adapters: ProductionAdapters
    servicer: ImageEditorServicer
    reconciler: Reconciler
    sweep: CallbackSweep
    leader: LeaderLock
    gauges: GaugeSampler

    async def reconcile_until(self, stop: asyncio.Event) -> None:
        """A reconciler pass and a sample of the gauges (imageeditor.core.sampling) every
        reconcile_interval_seconds where the leader lock is held, until `stop` is set (a pass
        under way is finished, not abandoned in its thread)."""
        while not stop.is_set():
            try:
                if await asyncio.to_thread(self.leader.held):
                    await asyncio.to_thread(self.reconciler.run_once, utcnow())
                    await asyncio.to_thread(self.sweep.run_once, utcnow())
                    await asyncio.to_thread(self.gauges.sample)
                else:
                    self.gauges.clear()
            except Unavailable as exc:  # the store is away: one line, try again next time
                log.warning("reconciler pass skipped: %s", exc.message)
            except Exception:
                log.exception("reconciler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.reconcile_interval_seconds)

    def close(self) -> None:
        self.leader.release()
        self.adapters.close()


def build(settings: Settings) -> ProductionServer:
    # Migrating is safe when replicas start together: one migrates, under a lock.
    adapters = ProductionAdapters.build(
        settings,
        create_celery(settings),
        hot_cache_seconds=settings.hot_cache_seconds,
        migrate=True,
    )
    servicer = build_servicer(
        adapters, dispatcher=adapters.dispatcher, lifecycle=adapters.lifecycle, settings=settings
    )
    reconciler = Reconciler(adapters.tasks, adapters.lifecycle, adapters.dispatcher, settings)
    grace = timedelta(seconds=settings.reconcile_interval_seconds)
    sweep = CallbackSweep(adapters.deliveries, adapters.callbacks, grace)
    leader = LeaderLock(settings.effective_database_url)
    gauges = GaugeSampler(adapters.tasks, adapters.deliveries, adapters.publisher.queue_depths)
    return ProductionServer(settings, adapters, servicer, reconciler, sweep, leader, gauges)


async def serve(settings: Settings) -> None:
    if settings.running_lease_seconds <= settings.task_hard_time_limit_seconds:
        log.warning(
            "IMAGEEDITOR_RUNNING_LEASE_SECONDS (%s) should exceed the hard time limit (%s): "
            "a task still running may be requeued and started again",
            settings.running_lease_seconds,
            settings.task_hard_time_limit_seconds,
        )
    tracing = setup_tracing("imageeditor-server")
    if tracing.enabled:
        instrument_celery()  # the producer side: its span's context goes into each message
    app = build(settings)
    metrics = serve_metrics(settings.ops_host, settings.metrics_port, "server")
    stop = stop_on_signals()  # before serving: a SIGTERM right after start still drains
    running = await start_server(app.servicer, settings, traced=tracing.enabled)
    reconciling = asyncio.create_task(app.reconcile_until(stop), name="reconciler")
    host = settings.listen_address.rsplit(":", 1)[0]
    print(f"imageeditor serving on {host}:{running.port} (production mode)", flush=True)
    await stop.wait()
    log.info("stopping: draining calls for %.0fs", settings.shutdown_grace_seconds)
    await running.stop(settings.shutdown_grace_seconds)
    await reconciling
    await app.adapters.events.aclose()
    await asyncio.to_thread(app.close)
    if metrics is not None:
        metrics.close()
    await asyncio.to_thread(tracing.shutdown)


def run(settings: Settings) -> None:
    """`imageeditor serve` in production mode: serve until SIGINT or SIGTERM."""
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))
