"""Production mode's adapters, built in one place for every process that holds them.

A server (imageeditor/server/main.py) and a Celery worker process
(imageeditor/workers/worker_context.py) hold the
same core: the task and callback stores on PostgreSQL, the blob store and its download
links, Redis for the status cache, rate limits and transition events, the Celery publisher
behind the dispatcher and the callback notifier, and the lifecycle that commits every
transition through them. Adding a port means adding it here. Plain constructor calls:
nothing connects until first used, so a worker may build this after its fork.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from imageeditor.core.adapters.celery.dispatch import (
    BrokerPublisher,
    CeleryCallbackNotifier,
    CeleryDispatcher,
)
from imageeditor.core.adapters.redis.connection import redis_client
from imageeditor.core.adapters.redis.event_bus import RedisEventBus
from imageeditor.core.adapters.redis.rate_limiter import RedisRateLimiter
from imageeditor.core.adapters.redis.status_cache import RedisStatusCache
from imageeditor.core.adapters.storage import StorageAdapters, open_storage
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.settings import Settings


@dataclass
class ProductionAdapters(StorageAdapters):
    """The ports of a production process (imageeditor.core.ports.ProcessAdapters), plus the Redis
    client, the broker publisher, the Celery dispatcher and callback notifier, and the
    lifecycle over them."""

    redis: redis.Redis
    events: RedisEventBus
    cache: RedisStatusCache
    limiter: RedisRateLimiter
    publisher: BrokerPublisher
    dispatcher: CeleryDispatcher
    callbacks: CeleryCallbackNotifier
    lifecycle: Lifecycle

    @classmethod
    def build(
        cls, settings: Settings, app: Celery, *, hot_cache_seconds: float, migrate: bool = False
    ) -> ProductionAdapters:
        """`app` publishes dispatch and callback messages; `hot_cache_seconds` is the status
        cache's in-process layer (0 for a process that only writes the cache); with
        `migrate`, the database schema is brought up to date first (servers do)."""
        storage = open_storage(settings, migrate=migrate)
        sealer = storage.sealer
        client = redis_client(settings.redis_url)
        events = RedisEventBus(settings.redis_url, sealer=sealer)
        cache = RedisStatusCache(client, hot_seconds=hot_cache_seconds, sealer=sealer)
        publisher = BrokerPublisher(app)
        callbacks = CeleryCallbackNotifier(
            publisher, settings.callback_window_seconds, sealer=sealer
        )
        return cls(
            storage.tasks,
            storage.deliveries,
            storage.blobs,
            storage.links,
            sealer,
            redis=client,
            events=events,
            cache=cache,
            limiter=RedisRateLimiter(client),
            publisher=publisher,
            dispatcher=CeleryDispatcher(publisher, sealer),
            callbacks=callbacks,
            lifecycle=Lifecycle(storage.tasks, cache, events, callbacks),
        )

    def close(self) -> None:
        """Close the connections (the event bus's, Redis's, the database pool)."""
        self.events.close()
        self.redis.close()
        super().close()
