"""The composition root of embedded mode: one process, the grpc.aio server plus an in-process
worker and callback sender, SQLite and local disk under the data directory, in-process
events, cache and limits.

Everything is built here, by plain constructor calls, from one Settings object.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from imageeditor.core.adapters.embedded import EmbeddedAdapters
from imageeditor.core.apikeys import create_api_key, hash_api_key
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.metrics import serve_metrics
from imageeditor.core.ports import ApiKeyStore, BlobStore, WebhookSecretStore
from imageeditor.core.sampling import GaugeSampler
from imageeditor.core.settings import Settings
from imageeditor.core.telemetry import setup_tracing
from imageeditor.core.webhook_secrets import ensure_webhook_secret
from imageeditor.server.app import build_servicer, start_server
from imageeditor.server.process import configure_logging, stop_on_signals
from imageeditor.server.servicer import ImageEditorServicer
from imageeditor.workers.callback_sender import CallbackSender
from imageeditor.workers.callback_worker import EmbeddedCallbackWorker
from imageeditor.workers.embedded import EmbeddedWorker, Slot
from imageeditor.workers.pipeline_process import ProcessSlot, forkserver_context
from imageeditor.workers.runner import TaskRunner
from imageeditor.workers.styles import create_style_generator

log = logging.getLogger("imageeditor")


@dataclass
class EmbeddedApp:
    settings: Settings
    adapters: EmbeddedAdapters
    worker: EmbeddedWorker
    callbacks: EmbeddedCallbackWorker
    servicer: ImageEditorServicer


def build(settings: Settings) -> EmbeddedApp:
    adapters = EmbeddedAdapters.build(settings)
    sender = CallbackSender.over(adapters, settings)
    callbacks = EmbeddedCallbackWorker(sender, adapters.deliveries, settings)
    lifecycle = Lifecycle(adapters.tasks, adapters.cache, adapters.events, callbacks)
    # Checked before anything listens: a misconfigured style backend stops the start (the
    # pipeline processes build their own).
    create_style_generator(settings)
    slots = pipeline_slots(settings, lifecycle, adapters.blobs)
    worker = EmbeddedWorker(slots, lifecycle, settings.max_dispatched_per_user)
    servicer = build_servicer(adapters, dispatcher=worker, lifecycle=lifecycle, settings=settings)
    return EmbeddedApp(settings, adapters, worker, callbacks, servicer)


def pipeline_slots(settings: Settings, lifecycle: Lifecycle, blobs: BlobStore) -> list[Slot]:
    """A runner per worker thread, each with a pipeline process of its own (started, and its
    rembg model loaded, in the background once the worker starts)."""
    context = forkserver_context()
    slots = []
    for n in range(settings.embedded_workers):
        process = ProcessSlot(settings, context, name=f"imageeditor-pipeline-{n}")
        runner = TaskRunner(lifecycle, blobs, process, settings.max_attempts)
        slots.append(Slot(runner, process))
    return slots


def ensure_dev_key(keys: ApiKeyStore, secrets: WebhookSecretStore, settings: Settings) -> None:
    """Embedded mode's development key and the secret that signs its callbacks: made on first
    start, kept in the data directory (mode 0600) where the CLI, the SDK and a developer's
    callback receiver find them without a flag."""
    path = settings.dev_key_path
    key = path.read_text().strip() if path.exists() else ""
    if not key or keys.find_api_key(hash_api_key(key)) is None:
        key, _ = create_api_key(keys, "dev", user_id="dev")
        _write_private(path, key)
        log.info("created a development API key in %s", path)
    secret_path = settings.dev_webhook_secret_path
    newest = ensure_webhook_secret(secrets, "dev")[0].secret
    if not secret_path.exists() or secret_path.read_text().strip() != newest:
        _write_private(secret_path, newest)
        log.info("kept the development webhook secret in %s", secret_path)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def keep_private(settings: Settings) -> None:
    """Whatever this process (and its pipeline processes) writes is its own: files 0600 and
    folders 0700 (umask 077), and the data folder is made 0700 if it was not, so tasks,
    results and keys of an existing install are closed to other users of the machine too."""
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    for suffix in ("", "-wal", "-shm"):
        database = settings.database_path.with_name(settings.database_path.name + suffix)
        if database.exists():
            database.chmod(0o600)


async def serve(settings: Settings) -> None:
    keep_private(settings)
    tracing = setup_tracing("imageeditor")
    app = build(settings)
    ensure_dev_key(app.adapters.api_keys, app.adapters.webhook_secrets, settings)
    app.worker.start()
    app.callbacks.start()
    metrics = serve_metrics(settings.ops_host, settings.metrics_port, "embedded")
    stop = stop_on_signals()  # before serving: a SIGTERM right after start still drains
    if metrics is not None:
        gauges = GaugeSampler(app.adapters.tasks, app.adapters.deliveries)
        sampling = asyncio.create_task(
            gauges.sample_until(stop, settings.reconcile_interval_seconds), name="gauges"
        )
    running = await start_server(app.servicer, settings, traced=tracing.enabled)
    host = settings.listen_address.rsplit(":", 1)[0]
    print(
        f"imageeditor serving on {host}:{running.port} (embedded mode, "
        f"{settings.embedded_workers} worker processes, data in {settings.data_dir})",
        flush=True,
    )
    await stop.wait()
    log.info("stopping: draining calls for %.0fs", settings.shutdown_grace_seconds)
    await running.stop(settings.shutdown_grace_seconds)
    await asyncio.to_thread(app.worker.stop, settings.shutdown_grace_seconds)
    await asyncio.to_thread(app.callbacks.stop, settings.shutdown_grace_seconds)
    if metrics is not None:
        await sampling  # its last pass done before the store closes
        metrics.close()
    app.adapters.close()
    await asyncio.to_thread(tracing.shutdown)


def run(settings: Settings) -> None:
    """`imageeditor serve` in embedded mode: serve until SIGINT or SIGTERM."""
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))
