"""What a Celery worker process holds for the tasks it runs: built once per process.

The composition root of a worker process. It is built after the fork (in
`worker_process_init`, see workers.celery_app): database and Redis connections made before
a fork would be shared by parent and children, and their protocols interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from editcore.adapters.blobs.factory import ResultLinks, blob_store_from_settings
from editcore.adapters.celery.dispatch import (
    BrokerPublisher,
    CeleryCallbackNotifier,
    CeleryDispatcher,
)
from editcore.adapters.redis.connection import redis_client
from editcore.adapters.redis.event_bus import RedisEventBus
from editcore.adapters.redis.status_cache import RedisStatusCache
from editcore.adapters.sql.callback_store import SqlCallbackStore
from editcore.adapters.sql.engine import create_engine_for
from editcore.adapters.sql.task_store import SqlTaskStore
from editcore.lifecycle import Lifecycle
from editcore.settings import Settings
from workers.background import BackgroundRemover
from workers.callback_sender import CallbackSender
from workers.pipeline import Pipeline
from workers.runner import TaskRunner
from workers.styles import create_style_generator


@dataclass
class WorkerContext:
    """The store, the publishing side of cache and events, the pipeline and its runner, and
    the callback sender (a process of the `callbacks` queue uses only that)."""

    store: SqlTaskStore
    redis: redis.Redis
    events: RedisEventBus
    lifecycle: Lifecycle
    remover: BackgroundRemover
    runner: TaskRunner
    dispatcher: CeleryDispatcher
    callbacks: CeleryCallbackNotifier
    sender: CallbackSender

    @classmethod
    def build(cls, settings: Settings, app: Celery) -> WorkerContext:
        """Plain constructor calls; nothing connects until first used."""
        engine = create_engine_for(settings.effective_database_url)
        store = SqlTaskStore(engine)
        callback_store = SqlCallbackStore(engine)
        blobs = blob_store_from_settings(settings)
        client = redis_client(settings.redis_url)
        events = RedisEventBus(settings.redis_url)
        # A worker only writes the cache (every transition), it never reads it: no hot layer.
        cache = RedisStatusCache(client, hot_seconds=0.0)
        publisher = BrokerPublisher(app)
        callbacks = CeleryCallbackNotifier(publisher, settings.callback_window_seconds)
        lifecycle = Lifecycle(store, cache, events, callbacks)
        remover = BackgroundRemover(settings)  # loads its model on first use or warm-up
        pipeline = Pipeline(
            blobs, settings, styles=create_style_generator(settings), remover=remover
        )
        runner = TaskRunner(
            lifecycle,
            blobs,
            pipeline,
            settings.max_attempts,
            time_limit_errors=(SoftTimeLimitExceeded,),
        )
        sender = CallbackSender(
            store,
            callback_store,
            callback_store,
            settings,
            links=ResultLinks.for_store(blobs, settings),
        )
        dispatcher = CeleryDispatcher(publisher)
        return cls(store, client, events, lifecycle, remover, runner, dispatcher, callbacks, sender)

    def close(self) -> None:
        """Close the connections (when the process exits)."""
        self.events.close()
        self.redis.close()
        self.store.close()
